"""AlertStreamer (tastytrade account streamer) against independent, misbehaving servers.

Each server is a plain ``websockets`` server scripted per connection (``_servers_account``).
Every test is bounded in time, synchronised on what the server received, counts every
notification, and checks that nothing the streamer created is left after ``close()``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from _servers_account import (
    ACCOUNT,
    TOKEN,
    Conn,
    LoopErrors,
    Server,
    Session,
    client_ssl_context,
    no_task_left,
    order,
    take,
)

from fastfeed._connection import BackoffConfig
from fastfeed.alerts import PlacedOrder
from fastfeed.errors import (
    AuthenticationError,
    EventLoopError,
    FastFeedError,
    StreamerClosedError,
    SubscriptionError,
)
from fastfeed.tastytrade import AlertStreamer

pytestmark = pytest.mark.timeout(30)

FAST = BackoffConfig(initial_delay=0.01, min_delay=0.01, max_delay=0.05, factor=1.5)


def _streamer(srv: Server, session: Session | None = None, **kw: Any) -> AlertStreamer:
    st = AlertStreamer(session or Session(), url=srv.url, backoff_config=FAST, **kw)
    st.auth_retry_delay = 0.01
    return st


async def _serve_account(conn: Conn, first: int, count: int) -> None:
    """Ack connect (and later subscriptions), then send Orders ``first .. first+count-1``."""
    connect = await conn.wait_action("connect")
    await conn.ack(connect)
    for seq in range(first, first + count):
        await conn.notify("Order", order(seq))


async def _ack_everything(conn: Conn) -> None:
    """Ack every request of this connection, heartbeats included, until it ends."""
    done = 0
    while True:
        try:
            await conn.wait_for(lambda m, seen=done: len(conn.received) > seen, 30)
        except (ConnectionError, TimeoutError):
            return
        for m in conn.received[done:]:
            await conn.ack(m)
        done = len(conn.received)


# ------------------------------------------------------------------------- refused token


@pytest.mark.parametrize("refusal", ["invalid-token", "Unauthorized", "token has expired"])
async def test_refused_token_raises_authentication_error(refusal: str) -> None:
    async def handler(conn: Conn) -> None:
        m = await conn.wait_action("connect")
        await conn.ack(m, "error", refusal)

    session = Session()
    async with no_task_left():
        async with Server(handler) as srv:
            st = _streamer(srv, session)
            async with st:
                with pytest.raises(AuthenticationError) as info:
                    await asyncio.wait_for(st.subscribe_accounts([ACCOUNT]), 10)
                assert not isinstance(info.value, SubscriptionError)
                assert TOKEN not in str(info.value)
                # retried once on a new connection with fresh credentials, then given up
                assert len(srv.conns) == 2
                assert session.refreshes >= 2
                assert isinstance(st.error, AuthenticationError)
                with pytest.raises(AuthenticationError):
                    await take(st.listen(PlacedOrder), 1, 5)


async def test_refused_token_then_fresh_token_accepted() -> None:
    """A refusal is retried with the session's refreshed token; the stream then works."""
    good = "fresh-token"
    session = Session("stale-token")

    async def handler(conn: Conn) -> None:
        m = await conn.wait_action("connect")
        if m["auth-token"] != f"Bearer {good}":
            session.next_token = good    # the token service has a new one from now on
            await conn.ack(m, "error", "invalid-token")
            await conn.ws.wait_closed()
            return
        await conn.ack(m)
        await conn.notify("Order", order(1))

    async with no_task_left():
        async with Server(handler) as srv:
            async with _streamer(srv, session) as st:
                await st.subscribe_accounts([ACCOUNT])
                got = await take(st.listen(PlacedOrder), 1)
                assert [o.id for o in got] == [1]
                assert st.error is None and len(srv.conns) == 2


async def test_token_refused_mid_stream_reconnects_with_fresh_token() -> None:
    """A heartbeat refused for its token (expired) is not fatal: new connection, fresh token,
    subscriptions replayed, notifications go on."""
    fresh = "rotated-token"
    session = Session()

    async def handler(conn: Conn) -> None:
        connect = await conn.wait_action("connect")
        await conn.ack(connect)
        await conn.notify("Order", order(conn.index + 1))
        if conn.index == 0:
            hb = await conn.wait_action("heartbeat")
            session.next_token = fresh
            await conn.ack(hb, "error", "invalid-token")
        await conn.ws.wait_closed()

    async with no_task_left():
        async with Server(handler) as srv:
            async with _streamer(srv, session, heartbeat_interval=0.05) as st:
                await st.subscribe_accounts([ACCOUNT])
                got = await take(st.listen(PlacedOrder), 2)
                assert [o.id for o in got] == [1, 2]
                second = srv.conns[1].received[0]
                assert second["action"] == "connect" and second["auth-token"] == f"Bearer {fresh}"
                assert st.error is None


# ------------------------------------------------------------------------- drop and resume


async def test_drop_mid_stream_every_notification_once_in_order() -> None:
    n_first, n_second = 40, 25
    dropped = asyncio.Event()

    async def handler(conn: Conn) -> None:
        if conn.index == 0:
            await _serve_account(conn, 1, n_first)
            q = await conn.wait_action("quote-alerts-subscribe")
            await conn.ack(q)
            await conn.drop()           # TCP ends without a CLOSE frame
            dropped.set()
        else:
            connect = await conn.wait_action("connect")
            await conn.ack(connect)
            q = await conn.wait_action("quote-alerts-subscribe")  # replayed, after connect
            await conn.ack(q)
            for seq in range(n_first + 1, n_first + n_second + 1):
                await conn.notify("Order", order(seq))
            await conn.ws.wait_closed()

    reconnects: list[Any] = []
    disconnects: list[Any] = []

    async def on_reconnect(st: Any) -> None:
        reconnects.append(st)

    async def on_disconnect(st: Any) -> None:
        disconnects.append(st)

    async with no_task_left():
        async with Server(handler) as srv:
            st = _streamer(srv, reconnect_fn=on_reconnect, disconnect_fn=on_disconnect)
            async with st:
                await st.subscribe_accounts([ACCOUNT])
                await st.subscribe_quote_alerts()
                got = await take(st.listen(PlacedOrder), n_first + n_second, 15)
                await asyncio.wait_for(dropped.wait(), 5)
            ids = [o.id for o in got]
            assert ids == list(range(1, n_first + n_second + 1))   # exactly once, in order
            assert all(isinstance(o, PlacedOrder) for o in got)
            assert len(srv.conns) == 2
            second = srv.conns[1].received
            assert [m["action"] for m in second[:2]] == ["connect", "quote-alerts-subscribe"]
            assert second[0]["value"] == [ACCOUNT]
            first_ids = [m["request-id"] for m in srv.conns[0].received]
            assert min(m["request-id"] for m in second) > max(first_ids)  # fresh request-ids
            assert len(reconnects) == 1 and len(disconnects) >= 1
            assert st.stats["notifications"] == n_first + n_second
            assert st.stats["reconnects"] == 1 and st.stats["malformed"] == 0


# ------------------------------------------------------------------------- heartbeat, silence


async def test_heartbeats_keep_an_acked_connection() -> None:
    async with no_task_left():
        async with Server(_ack_everything) as srv:
            async with _streamer(srv, heartbeat_interval=0.05, liveness_timeout=2.0) as st:
                await st.subscribe_accounts([ACCOUNT])
                conn = await srv.connection(0)

                def heartbeats() -> list[dict[str, Any]]:
                    return [m for m in conn.received if m.get("action") == "heartbeat"]

                await conn.wait_for(lambda m: len(heartbeats()) >= 4, 10)
                hb = heartbeats()
                assert all(m["auth-token"] == f"Bearer {TOKEN}" for m in hb)
                rids = [m["request-id"] for m in hb]
                assert rids == sorted(rids) and len(set(rids)) == len(rids)
                assert len(srv.conns) == 1 and st.ready


async def test_silent_server_connection_is_replaced_and_replayed() -> None:
    async def handler(conn: Conn) -> None:
        connect = await conn.wait_action("connect")
        await conn.ack(connect)
        if conn.index == 0:
            await conn.ws.wait_closed()     # then silence: no ack, no notification, no ping
            return
        await conn.notify("Order", order(2))
        await _ack_everything(conn)

    async with no_task_left():
        async with Server(handler) as srv:
            st = _streamer(srv, heartbeat_interval=0.1, liveness_timeout=0.4)
            async with st:
                await st.subscribe_accounts([ACCOUNT])
                second = await srv.connection(1, 10)
                m = await second.wait_action("connect")
                assert m["value"] == [ACCOUNT]
                got = await take(st.listen(PlacedOrder), 1)
                assert [o.id for o in got] == [2]


# ------------------------------------------------------------------------- oversize


@pytest.mark.parametrize("fragmented", [False, True])
async def test_oversize_message_replaces_the_connection(fragmented: bool) -> None:
    big = '{"type":"Order","data":{"x":"' + "x" * 20_000 + '"}}'

    async def handler(conn: Conn) -> None:
        connect = await conn.wait_action("connect")
        await conn.ack(connect)
        if conn.index == 0:
            await conn.notify("Order", order(1))
            if fragmented:
                await conn.ws.send([big[:3000], big[3000:9000], big[9000:]])
            else:
                await conn.ws.send(big)
            await conn.ws.wait_closed()
            return
        await conn.notify("Order", order(2))
        await conn.ws.wait_closed()

    with LoopErrors() as errors:
        async with no_task_left():
            async with Server(handler) as srv:
                async with _streamer(srv, max_message_size=4096) as st:
                    await st.subscribe_accounts([ACCOUNT])
                    got = await take(st.listen(PlacedOrder), 2, 15)
                    assert [o.id for o in got] == [1, 2]
                    assert srv.conns[0].ws.close_code == 1009   # we closed it: too big
                    assert st.error is None
        assert not [m for m in errors.messages() if "never retrieved" in m]


# ------------------------------------------------------------------------- misuse


async def test_subscribe_and_listen_after_close_raise_streamer_closed() -> None:
    async with no_task_left():
        async with Server(_ack_everything) as srv:
            st = _streamer(srv)
            async with st:
                await st.subscribe_accounts([ACCOUNT])
            for call in (st.subscribe_accounts([ACCOUNT]), st.subscribe_quote_alerts(),
                         st.subscribe_public_watchlists()):
                with pytest.raises(StreamerClosedError):
                    await asyncio.wait_for(call, 2)
            with pytest.raises(StreamerClosedError):
                await take(st.listen(PlacedOrder), 1, 2)
            assert issubclass(StreamerClosedError, FastFeedError)


async def test_pending_subscribe_fails_when_closed() -> None:
    async def handler(conn: Conn) -> None:   # never acknowledges anything
        await conn.ws.wait_closed()

    async with no_task_left():
        async with Server(handler) as srv:
            st = _streamer(srv, ack_timeout=10)
            await st.start()
            pending = asyncio.ensure_future(st.subscribe_quote_alerts())
            conn = await srv.connection(0)
            await conn.wait_action("quote-alerts-subscribe")
            await st.close()
            with pytest.raises(StreamerClosedError):
                await asyncio.wait_for(pending, 2)


async def test_use_from_another_event_loop_says_so() -> None:
    async with no_task_left():
        async with Server(_ack_everything) as srv:
            async with _streamer(srv) as st:
                await st.subscribe_accounts([ACCOUNT])

                async def elsewhere() -> list[str]:
                    out = []
                    for make in (st.subscribe_quote_alerts,
                                 lambda: take(st.listen(PlacedOrder), 1, 1)):
                        try:
                            await asyncio.wait_for(make(), 2)
                        except EventLoopError as exc:
                            out.append(str(exc))
                    return out

                msgs = await asyncio.to_thread(asyncio.run, elsewhere())
                assert len(msgs) == 2 and all("another event loop" in m for m in msgs)
                assert issubclass(EventLoopError, RuntimeError)
                # still usable from its own loop
                await st.subscribe_quote_alerts()


# ------------------------------------------------------------------------- TLS


async def test_ssl_context_is_used() -> None:
    async with no_task_left():
        async with Server(_ack_everything, tls=True) as srv:
            st = _streamer(srv, ssl_context=client_ssl_context())
            async with st:
                await st.subscribe_accounts([ACCOUNT])
                assert srv.url.startswith("wss://")
            # the default context verifies against the system CAs: the test certificate fails
            with pytest.raises((ssl.SSLError, FastFeedError)):
                async with _streamer(srv):
                    pass
