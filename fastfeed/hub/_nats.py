"""The hub over NATS (layer 7): the same messages as shared memory, to other machines.

Subjects (core NATS, at most once): ``ff.<hub>.<feed>.<event type>`` carries the data messages
(envelope + records, exactly the shared-memory bytes), ``ff.<hub>.<feed>.sym`` the symbol
messages, both published by the hub's one connection in stream order (NATS keeps a
publisher's order for a subscriber, so a consumer of ``ff.<hub>.<feed>.>`` sees the stream as
the hub sent it; lost messages show as sequence gaps and are counted). Requests go to
``ff.<hub>.ctl`` (request-reply): ``info``, ``hello``, ``subscribe``, ``unsubscribe`` as on the
control socket, plus ``lease`` (every ``lease_interval`` seconds: a consumer silent for
the hub's lease (``NATS_LEASE`` seconds by default) is dropped and its subscriptions released) and ``bye``.

Nothing crossing NATS carries credentials: records, symbols, counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from fastfeed.errors import ConnectionClosedError
from fastfeed.hub._client import HubStreamer

__all__ = ["NATS_LEASE", "NatsHubStreamer", "NatsSink", "subject_prefix"]

log = logging.getLogger("fastfeed.hub")


async def leave_hub(nc: Any, prefix: str, consumer_id: str) -> None:
    """A NATS consumer's goodbye: tell the hub it leaves (its subscriptions are released at
    once instead of when its lease expires), then close the NATS connection. Never raises."""
    try:
        await nc.request(prefix + "ctl", orjson.dumps({"op": "bye", "consumer": consumer_id}),
                         timeout=1)
    except Exception as exc:  # noqa: BLE001 - the lease expires anyway
        log.debug("hub bye: %s", exc)
    try:
        await asyncio.wait_for(nc.close(), 5)
    except Exception as exc:  # noqa: BLE001 - closing
        log.debug("NATS close: %s", exc)

#: seconds without a lease renewal after which the hub drops a NATS consumer
NATS_LEASE = 5.0
_PENDING = 64 * 1024 * 1024
#: the hub writes its messages to the NATS socket at once while less than this waits in the
#: socket's write buffer (more: nats-py's publish path, which waits for the buffer to drain)
_WRITE_NOW_MAX = 1024 * 1024


def subject_prefix(hub: str) -> str:
    if not hub or any(c in hub for c in ".*> \t\r\n"):
        raise ValueError(f"hub name {hub!r} cannot be a NATS subject token")
    return f"ff.{hub}."


_DIRECT_CLIENT: type | None = None


def _direct_client() -> Any:
    """A nats-py client whose ``direct`` subscriptions (sid -> function of the payload) get
    their messages as the socket's bytes arrive (``_feed``) or in its read loop, as the parser
    hands them over: nats-py otherwise builds a ``Msg`` and queues it for a task of the
    subscription, one more event-loop turn per message. Were nats-py's internals to change
    (``_process_msg``, its TCP transport's reader), the subscriptions' own callbacks still
    receive everything."""
    global _DIRECT_CLIENT
    if _DIRECT_CLIENT is None:
        from nats.aio.client import Client

        class DirectClient(Client):
            direct: dict[int, Callable[[bytes], None]]

            async def _read_loop(self) -> None:
                """nats-py's read loop (one per connection), its reader's ``feed_data`` first
                given :meth:`_feed` (the socket's bytes, in the transport's callback)."""
                reader = getattr(self._transport, "_io_reader", None)   # TCP: a StreamReader
                if reader is not None and not hasattr(reader, "_ff_feed"):
                    reader._ff_feed = reader.feed_data
                    reader.feed_data = lambda data: self._feed(reader, data)
                await super()._read_loop()

            def _feed(self, reader: Any, data: bytes) -> None:
                """Bytes from the server. While nats-py's read loop waits for bytes (nothing
                read before them is still being handled), bytes that are only whole ``MSG``
                of direct subscriptions go to their functions here: the read loop would take
                them a task switch and an event-loop turn later, then parse them alike.
                Anything else (a PING, a reply, a message split across reads) is nats-py's."""
                if getattr(reader, "_waiter", None) is None or not self._deliver(data):
                    reader._ff_feed(data)

            def _deliver(self, data: bytes) -> bool:
                direct = self.direct
                found: list[tuple[Callable[[bytes], None], bytes]] = []
                pos, end = 0, len(data)
                try:
                    while pos < end:
                        eol = data.find(b"\r\n", pos)
                        head = data[pos:eol].split() if eol > 0 else ()
                        if len(head) != 4 or head[0] != b"MSG":   # a reply subject: nats-py
                            return False
                        fn = direct.get(int(head[2]))
                        stop = eol + 2 + int(head[3])
                        if fn is None or data[stop:stop + 2] != b"\r\n":
                            return False
                        found.append((fn, data[eol + 2:stop]))
                        pos = stop + 2
                except ValueError:   # not numbers: nats-py's parser reports it
                    return False
                for fn, payload in found:
                    self._direct_msg(fn, payload)
                return True

            def _direct_msg(self, fn: Callable[[bytes], None], data: bytes) -> None:
                self.stats["in_msgs"] += 1
                self.stats["in_bytes"] += len(data)
                try:
                    fn(data)
                except Exception:
                    log.exception("hub: NATS message handling failed")

            async def _process_msg(self, sid: int, *args: Any, **kw: Any) -> None:
                # nats-py 2.x: (sid, subject, reply, data, headers); any other shape -> nats-py
                fn = self.direct.get(sid) if len(args) == 4 and not kw and not args[3] else None
                if fn is None:
                    await super()._process_msg(sid, *args, **kw)
                    return
                self._direct_msg(fn, args[2])

        _DIRECT_CLIENT = DirectClient
    nc = _DIRECT_CLIENT()
    nc.direct = {}
    return nc


async def _nats_connect(url: str, name: str, direct: bool = False, **kw: Any) -> Any:
    """A NATS connection that reconnects forever (``direct``: see :func:`_direct_client`)."""
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the NATS hub needs nats-py: pip install 'fastfeed[hub]'") from exc

    async def on_error(exc: Exception) -> None:   # reconnect attempts: not worth a traceback
        log.debug("NATS %s: %s: %s", name, type(exc).__name__, exc)

    opts = dict(name=name, allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=0.2, connect_timeout=2, pending_size=_PENDING,
                error_cb=on_error, **kw)
    if not direct:
        return await nats.connect(url, **opts)
    nc = _direct_client()
    await nc.connect(url, **opts)
    return nc


class NatsSink:
    """The hub's NATS side: an ordered publish queue and the request handler."""

    def __init__(self, nc: Any, hub: Any, lease: float = NATS_LEASE) -> None:
        self.nc = nc
        self.hub = hub
        self.lease = lease
        self.prefix = subject_prefix(hub.name)
        self._q: list[tuple[str, bytes]] = []
        self._lock = asyncio.Lock()
        self._consumers: dict[str, Any] = {}
        self._expiry: asyncio.Task[None] | None = None
        self.published = 0
        self.errors = 0
        from nats.protocol.command import pub_cmd  # the nats extra: imported with the sink

        self._pub_cmd = pub_cmd

    @classmethod
    async def connect(cls, url: str, hub: Any, lease: float = NATS_LEASE) -> NatsSink:
        self = cls(await _nats_connect(url, f"fastfeed-hub-{hub.name}"), hub, lease)
        await self.nc.subscribe(self.prefix + "ctl", cb=self._on_request)
        self._expiry = asyncio.get_running_loop().create_task(self._expire())
        return self

    def queue(self, subject: str, payload: bytes) -> None:
        self._q.append((self.prefix + subject, payload))

    @property
    def max_payload(self) -> int:
        """The largest message the server takes (its connection info; 1 MB by default)."""
        return int(self.nc.max_payload)

    @property
    def pending(self) -> bool:
        """Messages queued and not yet published."""
        return bool(self._q)

    def write_now(self) -> bool:
        """Write what is queued to the NATS socket now, in the caller's turn of the event loop,
        and say whether it did. nats-py's ``publish`` only appends to its buffer and hands the
        write to its flusher task (a loop turn later, after a task switch of the hub's own to
        await it): at 10 k messages a second that was most of the hub's part of the latency.
        Only when nothing could be overtaken and nothing needs waiting for — no flush running,
        nats-py's own buffer empty, connected, every message within the server's limit, less
        than ``_WRITE_NOW_MAX`` waiting in the socket's buffer — otherwise
        :meth:`flush_queue` publishes (in order, with nats-py's back-pressure)."""
        nc = self.nc
        tr: Any = getattr(nc, "_transport", None)
        writer = getattr(tr, "_io_writer", None)   # nats-py's TCP transport: a StreamWriter
        if (not self._q or self._lock.locked() or writer is None or not nc.is_connected
                or nc.pending_data_size
                or writer.transport.get_write_buffer_size() > _WRITE_NOW_MAX):
            return False
        q = self._q
        limit = nc.max_payload
        if any(len(data) > limit for _, data in q):
            return False   # nats-py's publish raises for it: counted there
        self._q = []
        pub_cmd = self._pub_cmd
        cmds = [pub_cmd(subject, "", data) for subject, data in q]
        # one write: uvloop sends it before returning (``writelines`` waits for the end of
        # the loop's turn)
        tr.write(cmds[0] if len(cmds) == 1 else b"".join(cmds))
        n = len(q)
        self.published += n
        nc.stats["out_msgs"] += n
        nc.stats["out_bytes"] += sum(len(data) for _, data in q)
        return True

    async def flush_queue(self) -> None:
        """Publish what is queued, in order, until nothing is (what is queued meanwhile too:
        the hub starts no second flush while one runs); a failure is counted, shared memory
        goes on."""
        async with self._lock:
            while self._q:
                q, self._q = self._q, []
                for subject, data in q:
                    try:
                        await self.nc.publish(subject, data)
                        self.published += 1
                    except Exception as exc:  # noqa: BLE001 - e.g. outbound buffer full
                        self.errors += 1
                        if self.errors == 1 or self.errors % 1000 == 0:
                            log.error("hub: NATS publish failed (%d so far): %s",
                                      self.errors, exc)

    async def _on_request(self, msg: Any) -> None:
        try:
            req = orjson.loads(msg.data)
            key = str(req["consumer"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        op = req.get("op")
        c = self._consumers.get(key)
        known = c is not None
        reply: dict[str, Any]
        if op == "bye":
            if c is not None:
                del self._consumers[key]
                await self.hub._remove_consumer(c)
            reply = {"id": req.get("id"), "ok": True}
        else:
            if c is None:
                c = self._consumers[key] = self.hub._new_consumer(None)
                c.feed = req.get("feed")
            c.lease = time.monotonic()
            if op == "lease":
                reply = {"id": req.get("id"), "ok": True}
            else:
                reply = await self.hub._handle(c, req)
        reply["known"] = known
        if msg.reply:
            await msg.respond(orjson.dumps(reply))
        await self.flush_queue()   # a hello may have queued a symbols message

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.lease / 4))
            now = time.monotonic()
            for key, c in list(self._consumers.items()):
                if now - c.lease > self.lease:
                    log.info("hub: NATS consumer %s silent for %.1f s: dropped", key, self.lease)
                    del self._consumers[key]
                    await self.hub._remove_consumer(c)

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        try:
            await self.flush_queue()
            await asyncio.wait_for(self.nc.close(), 5)
        except Exception as exc:  # noqa: BLE001 - closing: nothing left to protect
            log.debug("hub: NATS close: %s", exc)


class NatsHubStreamer(HubStreamer):
    """A :class:`HubStreamer` fed over NATS (another machine). Use
    ``fastfeed.hub.connect("nats://HOST:PORT/HUBNAME")``."""

    #: seconds between lease renewals (the hub drops a consumer silent for NATS_LEASE)
    lease_interval: float = 1.0

    def __init__(self, server_url: str, name: str, feed: str = "dxlink", **kw: Any) -> None:
        """``kw``: as :class:`HubStreamer` (the idle spin keeps the event loop polling the
        NATS socket after data)."""
        self.server_url = server_url
        super().__init__(name, feed, **kw)

    def _init_hub(self, name: str, feed: str, **kw: Any) -> None:
        super()._init_hub(name, feed, **kw)
        self._hub_url = f"{self.server_url}/{name}"
        self._prefix = subject_prefix(name)
        self._consumer_id = uuid.uuid4().hex
        self._nc: Any = None
        self._nsub: Any = None
        self._early: list[bytes] = []
        self._lease_task: asyncio.Task[None] | None = None
        self.n_resubscribes = 0

    def __repr__(self) -> str:
        state = "ready" if self._ready else ("closed" if self._closed else "connecting")
        return f"<fastfeed.hub.NatsHubStreamer {self.hub_name} {self.feed} {state}>"

    async def _open_control(self) -> None:
        if self._nc is None:
            try:
                self._nc = await _nats_connect(self.server_url, f"fastfeed-consumer-{self.feed}",
                                               direct=True)
            except (TimeoutError, OSError) as exc:
                raise ConnectionClosedError(None, f"NATS: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - nats.errors.NoServersError and co
                raise ConnectionClosedError(None, f"NATS: {type(exc).__name__}: {exc}") from None

    async def _open_stream(self, info: dict[str, Any]) -> None:
        if self._nsub is None:
            self._nsub = await self._nc.subscribe(
                f"{self._prefix}{self.feed}.>", cb=self._on_msg,
                pending_msgs_limit=65536, pending_bytes_limit=_PENDING)
            self._nc.direct[self._nsub._id] = self._on_payload   # in nats-py's read loop

    def _stream_ready(self) -> None:
        early, self._early = self._early, []
        got = 0
        for data in early:
            got += self._take(memoryview(data))
        if got:
            self._on_wake_data()
        if self._lease_task is None:
            self._lease_task = asyncio.get_running_loop().create_task(self._lease())

    async def _on_msg(self, msg: Any) -> None:
        self._on_payload(msg.data)

    def _on_payload(self, data: bytes) -> None:
        if not self._ready:
            self._early.append(data)   # before the snapshot: applied after it
            return
        if self._take(memoryview(data)):
            self._on_wake_data()
        self._keep_polling()

    def _park(self) -> None:
        """Nothing to tell: NATS delivers on its socket, which the event loop watches."""

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        nc = self._nc
        if nc is None:
            raise ConnectionClosedError(None, "not connected to NATS")
        msg["consumer"] = self._consumer_id
        msg.setdefault("feed", self.feed)
        try:
            reply = await nc.request(self._prefix + "ctl", orjson.dumps(msg),
                                     timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001 - timeouts, no responders, closed
            raise ConnectionClosedError(None, f"hub request failed: {type(exc).__name__}: "
                                        f"{exc}") from None
        out: dict[str, Any] = orjson.loads(reply.data)
        return out

    def _resync(self) -> None:
        asyncio.get_running_loop().create_task(self._resync_task())

    async def _resync_task(self) -> None:
        try:
            hello = await self._request({"op": "hello"})
        except ConnectionClosedError as exc:
            log.debug("hub resync failed: %s", exc)
            return
        if hello.get("ok"):
            self._add_symbols((int(i), str(s)) for i, s in hello["symbols"])

    async def _lease(self) -> None:
        """Renew the lease; a hub that does not know this consumer (it restarted, or dropped
        it during an outage) gets the subscriptions again."""
        while not (self._closed or self._closing):
            await asyncio.sleep(self.lease_interval)
            try:
                reply = await self._request({"op": "lease"})
                if not reply.get("known"):
                    self.n_resubscribes += 1
                    hello = await self._request({"op": "hello"})
                    if hello.get("ok"):
                        self._add_symbols((int(i), str(s)) for i, s in hello["symbols"])
                    await self._resubscribe()
            except ConnectionClosedError as exc:
                log.debug("hub lease not renewed: %s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        if self._lease_task is not None:
            self._lease_task.cancel()
        nc, self._nc = self._nc, None
        if nc is not None:
            await leave_hub(nc, self._prefix, self._consumer_id)
        await super().close()

    @property
    def stats(self) -> dict[str, Any]:
        out = super().stats
        nc = self._nc
        out["nats_reconnects"] = int(nc.stats.get("reconnects", 0)) if nc is not None else 0
        out["resubscribes"] = self.n_resubscribes
        return out
