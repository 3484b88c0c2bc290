"""The account stream over the hub (layer 7): order fills, balances, positions through
NATS JetStream, so that none is lost and a consumer that starts late catches up.

Hub side (:class:`AccountFeed`): one :class:`AccountUpstream` (an ``AlertStreamer`` holding
the session token) receives the notifications; each is published, in arrival order, to the
JetStream stream ``FF_<hub>_ACCOUNT`` on subject ``ff.<hub>.account.<type>`` and the hub waits
for JetStream's acknowledgement before the next (a failed publish is retried with the same
``Nats-Msg-Id``, which JetStream de-duplicates; while NATS is away the notifications wait in
the hub and, past ``hold_limit`` of them, the upstream socket is no longer read: back-pressure
up to the account streamer's server, nothing dropped). Headers: ``Ff-Publisher`` (the hub's
publisher id), ``Ff-Account`` (the notification's account number) or ``Ff-Topic`` (its
subscription action, for quote alerts and public watchlists). The payload is the notification
``{"type", "data", "timestamp"}`` as received: no token, no session id.

Subscriptions: ``subscribe_accounts`` / the topic subscriptions of every consumer are merged
and reference-counted; the first consumer of an account makes the hub send ``connect`` with it
upstream. The account-streamer protocol has no way to leave an account: when its last consumer
leaves, the account is dropped from what the hub replays after a reconnect (``released`` in
``stats``) and its notifications still published meanwhile reach nobody.

Consumer side (:class:`HubAlertStreamer`): :class:`fastfeed.tastytrade.AlertStreamer`'s API
(``subscribe_accounts``, ``subscribe_quote_alerts``, ``subscribe_public_watchlists``,
``subscribe_user_messages``, ``listen``, ``stats``, ``close``) over a JetStream pull consumer:

* it reads the stream from its start (``catch_up=True``, the default: everything the stream
  still holds for its accounts, so a consumer that starts late misses nothing) or only what
  is published after it started (``catch_up=False``); ``durable="NAME"`` resumes where the
  previous consumer of that name stopped (at least once: a notification it had received but
  not yet acknowledged when it died comes again); catch-up covers the accounts subscribed
  before reading starts (an account added later is followed from then on, as a direct
  streamer would);
* back-pressure: it fetches only while every type's queue has room (``queue_size``), so a
  consumer that does not read keeps its backlog in JetStream -- it never slows the hub or the
  other consumers;
* it keeps only its own accounts' and topics' notifications (a direct ``AlertStreamer``
  receives only those); the others are counted in ``stats["filtered"]``;
* a NATS outage or a hub restart ends in resumed streams: the consumer is re-created from the
  last stream sequence it saw when the server lost it; sequences missing from the stream
  (dropped by its limits) are counted in ``stats["gaps"]``, hub restarts in
  ``stats["publisher_restarts"]``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from fastfeed.account import AlertStreamer
from fastfeed.account.session import Notification, UnknownMessage
from fastfeed.errors import ConnectionClosedError, StreamerClosedError, StreamerError
from fastfeed.hub._nats import leave_hub

__all__ = ["AccountFeed", "AccountUpstream", "HubAlertStreamer", "stream_name"]

log = logging.getLogger("fastfeed.hub")

#: notification type -> the subscription action that brings it (the others carry an account)
TOPIC_OF = {"QuoteAlert": "quote-alerts-subscribe",
            "PublicWatchlists": "public-watchlists-subscribe"}
ACCOUNTS = "connect"
TOPICS = ("public-watchlists-subscribe", "quote-alerts-subscribe", "user-message-subscribe")
_BAD_TOKEN = str.maketrans(dict.fromkeys(".*> \t\r\n", "_"))


def stream_name(hub: str) -> str:
    return f"FF_{hub}_ACCOUNT"


def _subject_token(text: str) -> str:
    return text.translate(_BAD_TOKEN) or "_"


class AccountUpstream(AlertStreamer):
    """The hub's account streamer: every notification (known type or not) is held, in arrival
    order, until the hub has it acknowledged by JetStream; reading the socket pauses while
    ``hold_limit`` are held (``AlertStreamer``'s back-pressure, on the hub's queue)."""

    def __init__(self, session: Any, url: str | None = None, *, hold_limit: int = 10_000) -> None:
        super().__init__(session, url=url)
        self.held: deque[dict[str, Any]] = deque()
        self.hold_limit = max(1, int(hold_limit))
        self.arrived = asyncio.Event()

    def _on_event(self, ev: Any) -> None:
        """Notifications (of a known type or not) are held for JetStream, not queued for
        ``listen``; the rest (acks, readiness, refusals) as for any ``AlertStreamer``."""
        if isinstance(ev, (Notification, UnknownMessage)):
            self._hold(ev.message)
        else:
            super()._on_event(ev)

    def _hold(self, msg: dict[str, Any]) -> None:
        self.held.append(msg)
        self.arrived.set()
        listener = self._listener
        if len(self.held) >= self.hold_limit and listener is not None and not listener.paused:
            listener.pause()

    def _under_pressure(self) -> bool:
        return len(self.held) >= self.hold_limit

    def _maybe_resume(self) -> None:
        lst = self._listener
        if lst is not None and lst.paused and len(self.held) <= self.hold_limit // 2:
            lst.resume()

    def _wake_all(self) -> None:
        super()._wake_all()
        self.arrived.set()

    async def subscribe_topic(self, action: str, value: Any) -> None:
        await self._subscribe_topic(action, value)

    def release(self, action: str, values: Iterable[str]) -> None:
        """Not replayed after the next reconnect (the protocol cannot leave an account)."""
        if action == ACCOUNTS:
            self.protocol.unwant_accounts(list(values))
        else:
            self.protocol.desired.clear(action)


class AccountFeed:
    """The hub's account stream (see the module docstring)."""

    #: seconds between attempts to publish a notification JetStream did not acknowledge
    retry_interval: float = 0.2
    #: seconds the stream keeps notifications (late joiners' catch-up window)
    max_age: float = 24 * 3600.0
    #: seconds a stopping hub waits for JetStream to store the notifications it holds
    drain_timeout: float = 5.0

    def __init__(self, hub: str, streamer: AccountUpstream, publisher: int, *,
                 on_fail: Callable[[BaseException], None] | None = None) -> None:
        self.hub = hub
        self.on_fail = on_fail
        self.up = streamer
        self.publisher = publisher
        self.stream = stream_name(hub)
        self.prefix = f"ff.{hub}.account."
        self.refs: dict[tuple[str, str], set[int]] = {}
        self.started = False
        self.lock = asyncio.Lock()
        self.js: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None
        self.n = 0
        self.published = 0
        self.retries = 0
        self.released = 0
        self.failed: BaseException | None = None

    async def start(self, nc: Any) -> None:
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import BadRequestError

        self.js = nc.jetstream()
        cfg = StreamConfig(name=self.stream, subjects=[self.prefix + ">"],
                           storage=StorageType.FILE, max_age=self.max_age,
                           duplicate_window=120.0)
        try:
            await self.js.add_stream(cfg)
        except BadRequestError:   # it exists with other settings (an older hub's)
            await self.js.update_stream(cfg)
        self._pump = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop reading upstream, store what is held (for ``drain_timeout`` s at most)."""
        if self.started:
            await self.up.close()
        pump = self._pump
        if pump is not None:
            if self.up.held and not pump.done():
                self._drained = asyncio.Event()
                try:
                    await asyncio.wait_for(self._drained.wait(), self.drain_timeout)
                except TimeoutError:
                    pass
            if self.up.held:
                log.error("hub: %d account notifications were not stored in JetStream before "
                          "the hub stopped", len(self.up.held))
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    @property
    def stats(self) -> dict[str, Any]:
        return {"notifications": self.up.n_notifications, "published": self.published,
                "held": len(self.up.held), "publish_retries": self.retries,
                "released": self.released,
                "subscriptions": sorted(f"{a}:{v}" for a, v in self.refs)}

    # ------------------------------------------------------------------ publishing

    def _headers(self, msg: dict[str, Any]) -> dict[str, str]:
        self.n += 1
        h = {"Nats-Msg-Id": f"{self.publisher:x}-{self.n}", "Ff-Publisher": str(self.publisher)}
        t = msg.get("type")
        data = msg.get("data")
        topic = TOPIC_OF.get(t) if isinstance(t, str) else None
        if topic is not None:
            h["Ff-Topic"] = topic
        elif isinstance(data, dict) and isinstance(data.get("account-number"), str):
            h["Ff-Account"] = data["account-number"]
        return h

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Until JetStream acknowledges it (same message id: never stored twice)."""
        while True:
            try:
                await self.js.publish(subject, payload, timeout=2.0, stream=self.stream,
                                      headers=headers)
                self.published += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away, timeouts: retried, counted
                self.retries += 1
                if self.retries == 1 or self.retries % 100 == 0:
                    log.warning("hub: account notification not yet stored by JetStream "
                                "(%d retries so far): %s: %s", self.retries,
                                type(exc).__name__, exc)
                await asyncio.sleep(self.retry_interval)

    async def _run(self) -> None:
        up = self.up
        while True:
            if not up.held:
                if up.error is not None:
                    await self._publish_error(up.error)
                    if self.on_fail is not None:
                        self.on_fail(up.error)
                    return
                up.arrived.clear()
                await up.arrived.wait()
                continue
            msg = up.held[0]
            t = msg.get("type")
            subject = self.prefix + (_subject_token(t) if isinstance(t, str) else "_unknown")
            await self._publish(subject, orjson.dumps(msg), self._headers(msg))
            up.held.popleft()
            up._maybe_resume()
            if not up.held and self._drained is not None:
                self._drained.set()

    async def _publish_error(self, exc: BaseException) -> None:
        self.failed = exc
        text = f"{type(exc).__name__}: {exc}"
        h = self._headers({})
        h["Ff-Error"] = text
        await self._publish(self.prefix + "_error", text.encode(), h)

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, cid: int, action: str, values: list[str],
                        value: Any = None) -> list[tuple[str, str]]:
        """Add ``cid``'s interest; returns the keys it now holds."""
        if action != ACCOUNTS and action not in TOPICS:
            raise ValueError(f"unknown account subscription {action!r}")
        keys = [(action, v) for v in (values if action == ACCOUNTS else ["*"])]
        async with self.lock:
            if not self.started:
                await self.up.start()   # raises (to this consumer) when it cannot connect
                self.started = True
            new = []
            for k in keys:
                holders = self.refs.setdefault(k, set())
                if not holders:
                    new.append(k[1])
                holders.add(cid)
            if new:
                if action == ACCOUNTS:
                    await self.up.subscribe_accounts(new)
                else:
                    await self.up.subscribe_topic(action, value)
        return keys

    async def unsubscribe(self, cid: int, keys: Iterable[tuple[str, str]]) -> None:
        async with self.lock:
            for action, v in keys:
                holders = self.refs.get((action, v))
                if holders is None:
                    continue
                holders.discard(cid)
                if not holders:
                    del self.refs[(action, v)]
                    self.up.release(action, [v])
                    self.released += 1


# ---------------------------------------------------------------------------------- consumer


class HubAlertStreamer(AlertStreamer):
    """``AlertStreamer`` reading a hub's account stream (see the module docstring). Made by
    ``fastfeed.hub.connect(url, "account")`` or ``AlertStreamer(session, hub=url)``."""

    _is_hub_variant = True
    #: seconds a fetch waits for notifications before it asks again
    fetch_timeout: float = 1.0
    #: seconds between the hub lease's renewals (a silent consumer's accounts are released)
    lease_interval: float = 1.0
    #: seconds to wait for the hub's answer to a request
    request_timeout: float = 10.0

    def __init__(self, session: Any = None, *args: Any, hub: str, catch_up: bool = True,
                 durable: str | None = None, **kwargs: Any) -> None:
        from fastfeed.hub._client import parse_hub_url
        from fastfeed.hub._nats import subject_prefix

        super().__init__(session, *args, **kwargs)
        self._server, self.hub_name = parse_hub_url(hub)
        self._hub_url = hub
        self._prefix = subject_prefix(self.hub_name)
        self.catch_up = bool(catch_up)
        self.durable = durable
        self._consumer_id = f"account-{id(self):x}-{time.monotonic_ns():x}"
        self._nc: Any = None
        self._js: Any = None
        self._psub: Any = None
        self._stream = stream_name(self.hub_name)
        self._tasks: list[asyncio.Task[None]] = []
        self._fetcher: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._started = False
        self.last_seq = 0
        self.publisher = 0
        self.n_gaps = 0
        self.n_restarts = 0
        self.n_filtered = 0
        self.n_nats_errors = 0
        self.n_recreated = 0
        self.n_resubscribes = 0
        self.max_held = 0

    def __repr__(self) -> str:
        state = "ready" if self._ready else ("closed" if self._closed else "connecting")
        return f"<fastfeed.hub.HubAlertStreamer {self._hub_url} {state}>"

    @property
    def url(self) -> str:
        return self._hub_url

    @property
    def stats(self) -> dict[str, Any]:
        """``AlertStreamer``'s counters plus ``gaps`` (stream sequences missing),
        ``publisher_restarts``, ``filtered`` (other accounts' notifications),
        ``nats_errors``, ``consumer_recreated``, ``stream_seq`` (last seen), ``max_held``."""
        out = super().stats
        out.update(gaps=self.n_gaps, publisher_restarts=self.n_restarts,
                   filtered=self.n_filtered, nats_errors=self.n_nats_errors,
                   consumer_recreated=self.n_recreated, stream_seq=self.last_seq,
                   resubscribes=self.n_resubscribes, max_held=self.max_held)
        return out

    # ------------------------------------------------------------------ lifecycle

    async def _nats_url(self) -> str:
        """``ipc://NAME``: the hub tells (over its control socket) where its NATS server is."""
        if self._server is not None:
            return self._server
        from fastfeed.hub._control import FrameReader, encode, socket_path

        try:
            reader, writer = await asyncio.open_unix_connection(socket_path(self.hub_name))
        except OSError as exc:
            raise ConnectionClosedError(None, f"no fastfeed hub at {self._hub_url}: {exc}") from None
        try:
            writer.write(encode({"op": "info", "feed": "account", "id": 1}))
            frames = FrameReader()
            while True:
                data = await asyncio.wait_for(reader.read(65536), self.request_timeout)
                if not data:
                    raise ConnectionClosedError(None, f"the hub at {self._hub_url} went away")
                _, msgs = frames.feed(data)
                for m in msgs:
                    if m.get("id") == 1:
                        if not m.get("ok"):
                            raise ConnectionClosedError(None, str(m.get("error")))
                        return str(m["nats"])
        finally:
            writer.close()

    async def start(self) -> None:
        """Connect to the hub's NATS server and its account stream."""
        self._check_open()
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        try:
            from fastfeed.hub._nats import _nats_connect

            url = await self._nats_url()
            try:
                self._nc = await _nats_connect(url, "fastfeed-account-consumer")
            except Exception as exc:  # noqa: BLE001 - NoServersError, timeouts, refused
                raise ConnectionClosedError(None, f"NATS: {type(exc).__name__}: {exc}") from None
            self._js = self._nc.jetstream()
            info = await self._ctl({"op": "info"})
            if not info.get("ok"):
                raise ConnectionClosedError(None, str(info.get("error")))
            await self._bind(None)
        except BaseException:
            await self.close()
            raise
        self.n_connects += 1
        self._ready = True
        self._tasks = [self._loop.create_task(self._lease())]

    def _ensure_fetching(self) -> None:
        """Reading starts with the first subscription: what the stream holds for it before is
        kept (catch-up), not filtered out as another account's."""
        if self._fetcher is None and self._loop is not None:
            self._fetcher = self._loop.create_task(self._fetch_loop())
            self._tasks.append(self._fetcher)

    async def _bind(self, start_seq: int | None) -> None:
        """A pull consumer on the stream: from its start / now / ``start_seq``."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        if start_seq is not None:
            cfg = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                 opt_start_seq=start_seq, ack_policy=AckPolicy.EXPLICIT)
        else:
            cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL if self.catch_up
                                 else DeliverPolicy.NEW, ack_policy=AckPolicy.EXPLICIT)
        if self.durable is None:
            cfg.inactive_threshold = 60.0
        self._psub = await self._js.pull_subscribe(f"{self._prefix}account.>",
                                                   durable=self.durable, stream=self._stream,
                                                   config=cfg)

    async def close(self) -> None:
        """Leave the hub (its accounts are released) and end every ``listen``."""
        if self._closed:
            return
        self._closing = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        nc, self._nc = self._nc, None
        if nc is not None:
            await leave_hub(nc, self._prefix, self._consumer_id)
        self._closed = True
        self._ready = False
        self._room.set()
        self._wake_all()
        self._fail_waiters(StreamerClosedError("AlertStreamer closed"))

    # ------------------------------------------------------------------ requests to the hub

    async def _ctl(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self._nc is None:
            raise ConnectionClosedError(None, "not connected to the hub")
        msg.update(consumer=self._consumer_id, feed="account")
        try:
            reply = await self._nc.request(self._prefix + "ctl", orjson.dumps(msg),
                                           timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001 - timeouts, no responders, closed
            raise ConnectionClosedError(None, f"hub request failed: {type(exc).__name__}: "
                                        f"{exc}") from None
        out: dict[str, Any] = orjson.loads(reply.data)
        return out

    async def _request(self, action: str) -> None:
        """A subscription the protocol now wants (every desired account, or a topic), asked
        of the hub, which merges it with everyone else's; no credentials are sent."""
        from fastfeed.errors import SubscriptionError

        self._check_open()
        if not self._started:
            await self.start()
        p = self.protocol
        symbols = p.accounts if action == ACCOUNTS else ["*"]
        reply = await self._ctl({"op": "subscribe", "type": action, "symbols": symbols,
                                 "value": p.topics.get(action)})
        if not reply.get("ok"):
            raise SubscriptionError(f"{action} rejected by the hub: {reply.get('error')}")
        self._ensure_fetching()

    async def _resubscribe(self) -> None:
        if self.protocol.accounts:
            await self._request(ACCOUNTS)
        for action in self.protocol.topics:
            await self._request(action)

    async def _lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease_interval)
            try:
                reply = await self._ctl({"op": "lease"})
                if not reply.get("known"):   # a new hub, or it dropped us during an outage
                    self.n_resubscribes += 1
                    await self._resubscribe()
            except ConnectionClosedError as exc:
                log.debug("hub lease not renewed: %s", exc)

    # ------------------------------------------------------------------ receiving

    def _wanted(self, headers: dict[str, str] | None) -> bool:
        h = headers or {}
        topic = h.get("Ff-Topic")
        if topic is not None:
            return bool(self._desired.symbols(topic))
        account = h.get("Ff-Account")
        return account is None or account in self._desired.symbols(ACCOUNTS)

    def _held(self) -> int:
        return max((len(q.items) for q in self._queues.values()), default=0)

    def _maybe_resume(self) -> None:
        if self._held() < self.queue_size:
            self._room.set()

    def _warn_unread(self) -> None:
        """Reading stops at a full queue; say so once per type if nobody listens to it."""
        for key, q in self._queues.items():
            if len(q.items) >= self.queue_size and not q.cursors and not q.warned:
                q.warned = True
                log.warning("hub account stream: reading paused: %d unread %s notifications "
                            "and nobody listens to them (listen() to that type or raise "
                            "queue_size)", len(q.items), key)

    async def _fetch_loop(self) -> None:
        import nats.errors
        from nats.js.errors import NotFoundError

        while not (self._closed or self._closing):
            room = self.queue_size - self._held()
            if room <= 0:   # back-pressure: the backlog stays in JetStream
                self._warn_unread()
                self._room.clear()
                await self._room.wait()
                continue
            try:
                msgs = await self._psub.fetch(batch=min(room, 256), timeout=self.fetch_timeout)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: wait, then check the consumer
                self.n_nats_errors += 1
                log.debug("hub account fetch: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(0.1)
                try:
                    await self._js.consumer_info(self._stream, self._psub._consumer)
                except NotFoundError:   # the server lost it: again, from the next sequence
                    self.n_recreated += 1
                    await self._psub.unsubscribe()
                    await self._bind(self.last_seq + 1)
                except Exception as exc2:  # noqa: BLE001 - still away
                    log.debug("hub account consumer check: %s", exc2)
                continue
            for m in msgs:
                self._take(m)
                await m.ack()
            self.max_held = max(self.max_held, self._held())

    def _take(self, m: Any) -> None:
        seq = int(m.metadata.sequence.stream)
        if seq <= self.last_seq:
            return   # delivered again (an ack lost in an outage): already queued
        if self.last_seq and seq > self.last_seq + 1:
            self.n_gaps += seq - self.last_seq - 1   # removed by the stream's limits
        self.last_seq = seq
        headers = m.headers or {}
        pub = int(headers.get("Ff-Publisher", "0") or 0)
        if pub and pub != self.publisher:
            if self.publisher:
                self.n_restarts += 1
            self.publisher = pub
        err = headers.get("Ff-Error")
        if err is not None:
            self._fail(StreamerError(f"the hub's account upstream failed: {err}"))
            return
        if not self._wanted(headers):
            self.n_filtered += 1
            return
        self.protocol.receive_message(m.data)   # the notification, as if from the socket
        for ev in self.protocol.events_received():
            self._on_event(ev)
