"""fastfeed's AlertStreamer: API, acks, heartbeats with fresh tokens, reconnect replay, invalid /
malformed / unknown / batched notifications, back-pressure, no token in reprs or logs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

import orjson
import pytest

from fastfeed import SubscriptionError
from fastfeed._connection import BackoffConfig
from fastfeed.alerts import (
    AccountBalance,
    InvalidAlert,
    PlacedOrder,
    QuoteAlert,
    Watchlist,
)
from fastfeed.sim.account import AccountStreamerServer, order_data
from fastfeed.tastytrade import AlertStreamer

pytestmark = pytest.mark.timeout(30)
ACCOUNT = "5WT00000"
FAST = BackoffConfig(initial_delay=0.01, min_delay=0.01, max_delay=0.05, factor=1.5)
SECRET = "s3cr3t-token-0"


class RotatingSession:
    """refresh() hands out a new token each time it is told the old one expired."""

    is_test = False
    proxy = None
    client_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(self, token: str = SECRET) -> None:
        self.session_token = token
        self.refreshes = 0
        self.next_token: str | None = None

    async def refresh(self, force: bool = False) -> None:
        self.refreshes += 1
        if self.next_token is not None:
            self.session_token, self.next_token = self.next_token, None


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _requests(srv: AccountStreamerServer) -> list[dict[str, Any]]:
    return [orjson.loads(r.data) for r in srv.received]


def test_construct_outside_loop_and_url_choice() -> None:
    s = RotatingSession()
    st = AlertStreamer(s)
    assert st.base_url == "wss://streamer.tastyworks.com"
    s.is_test = True
    assert AlertStreamer(s).base_url == "wss://streamer.cert.tastyworks.com"
    assert AlertStreamer(s, url="ws://127.0.0.1:1/").base_url == "ws://127.0.0.1:1/"
    assert SECRET not in repr(st)


async def test_await_form_acks_request_ids_and_fresh_tokens(caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    async with AccountStreamerServer(token=SECRET, script="default") as srv:
        s = RotatingSession()
        st = await AlertStreamer(s, url=srv.url, heartbeat_interval=0.05)
        try:
            await st.subscribe_accounts([ACCOUNT])
            assert st.session_id and st.session_id.startswith("sim-")
            # the token expires: the server now wants a new one; refresh() provides it
            srv.set(token="s3cr3t-token-1")
            s.next_token = "s3cr3t-token-1"
            await st.subscribe_quote_alerts()
            await _until(lambda: any(m["action"] == "heartbeat" and
                                     m["auth-token"] == "Bearer s3cr3t-token-1"
                                     for m in _requests(srv)))
            it = st.listen(PlacedOrder)
            statuses = [(await anext(it)).status for _ in range(3)]
            assert statuses == ["Received", "Live", "Filled"]
            qa = await anext(st.listen(QuoteAlert))
            assert qa.symbol == "SPY"
        finally:
            await st.close()
        reqs = _requests(srv)
        assert srv.auth_failures == 0
        assert [m["request-id"] for m in reqs] == list(range(1, len(reqs) + 1))
        assert all(set(m) >= {"auth-token", "action", "request-id", "source"} for m in reqs)
        assert reqs[0]["action"] == "connect" and reqs[0]["value"] == [ACCOUNT]
        assert s.refreshes >= 3
    assert SECRET not in caplog.text and "s3cr3t-token-1" not in caplog.text


async def test_subscription_errors_are_typed() -> None:
    async with AccountStreamerServer(token=SECRET, script=None) as srv:
        async with AlertStreamer(RotatingSession(), url=srv.url) as st:
            with pytest.raises(SubscriptionError, match="connect-not-completed"):
                await st.subscribe_quote_alerts()
            assert "quote-alerts-subscribe" not in st.protocol.topics  # not replayed later
            srv.set(ack_delay=0.5)
            st.ack_timeout = 0.1
            with pytest.raises(SubscriptionError, match="no acknowledgement"):
                await st.subscribe_accounts([ACCOUNT])


async def test_reconnect_replays_connect_and_subscriptions_then_reconnect_fn() -> None:
    events: list[str] = []

    async def on_reconnect(st: Any, tag: str) -> None:
        events.append(f"reconnect:{tag}")

    async def on_disconnect(st: Any, tag: str) -> None:
        events.append(f"disconnect:{tag}")

    async with AccountStreamerServer(token=SECRET, script=None) as srv:
        st = AlertStreamer(RotatingSession(), reconnect_fn=on_reconnect, reconnect_args=("R",),
                           disconnect_fn=on_disconnect, disconnect_args=("D",), url=srv.url,
                           backoff_config=FAST)
        async with st:
            it = st.listen(PlacedOrder)
            await st.subscribe_accounts([ACCOUNT])
            await st.subscribe_public_watchlists()
            srv.push("Order", order_data(ACCOUNT, 1, "Live"))
            assert (await anext(it)).id == 1
            srv.inject("close", code=1012, reason="Reconnection is required")
            await _until(lambda: "reconnect:R" in events)
            srv.push("Order", order_data(ACCOUNT, 2, "Filled"))
            srv.push("PublicWatchlists", {"name": "after"})
            assert (await anext(it)).id == 2
            assert (await anext(st.listen(Watchlist))).name == "after"
        assert events == ["disconnect:D", "reconnect:R", "disconnect:D"]
        second = [orjson.loads(d)["action"] for d in srv.received_from(2)]
        assert second[:2] == ["connect", "public-watchlists-subscribe"]


async def test_invalid_malformed_unknown_and_batches_never_kill_the_streamer(
        caplog: Any) -> None:
    async with AccountStreamerServer(token=SECRET, script=None, batch_size=4) as srv:
        async with AlertStreamer(RotatingSession(), url=srv.url) as st:
            await st.subscribe_accounts([ACCOUNT])
            orders = st.listen(PlacedOrder)
            raw = st.listen(dict)
            srv.push("Order", order_data(ACCOUNT, 1))
            srv.push("Order", {"id": "x", "account-number": ACCOUNT, "status": "Filled"})
            for _ in range(3):
                srv.push("Mystery", {"account-number": ACCOUNT, "n": 1})
            srv.push("Order", order_data(ACCOUNT, 3))
            srv.inject("raw", data=b'{"type": "Order", "data": {')  # malformed JSON
            srv.push("Order", order_data(ACCOUNT, 4))
            got = [await asyncio.wait_for(anext(orders), 5) for _ in range(4)]
            assert [type(g) for g in got] == [PlacedOrder, InvalidAlert, PlacedOrder,
                                              PlacedOrder]
            bad = got[1]
            assert isinstance(bad, InvalidAlert)
            assert bad.status == "Filled" and bad.id == "x" and bad.validation_error
            assert [g.id for g in got if isinstance(g, PlacedOrder)] == [1, 3, 4]
            unknown = [await asyncio.wait_for(anext(raw), 5) for _ in range(3)]
            assert all(u["type"] == "Mystery" for u in unknown)
            assert st.n_malformed == 1
            assert any(b'"results"' in r.data for r in srv.sent)  # batches were used
            assert st.ready
    assert caplog.text.count("unknown type 'Mystery'") == 1  # once per type


async def test_own_classes_convert_like_tastytrade() -> None:
    from fastfeed.sim.account import balance_data

    b = AccountBalance.from_data(balance_data(ACCOUNT, cash="12.5"))
    assert str(b.cash_balance) == "12.5" and b.pending_cash < 0  # Debit effect
    o = PlacedOrder.from_data(order_data(ACCOUNT, 9, "Filled"))
    assert o.legs[0].fills and str(o.legs[0].fills[0].fill_price) == "150.25"
    assert o.price is not None and o.price < 0
    with pytest.raises(ValueError):
        PlacedOrder.from_data({"id": 1})


async def test_back_pressure_pauses_reading_and_drops_nothing() -> None:
    async with AccountStreamerServer(token=SECRET, script=None) as srv:
        async with AlertStreamer(RotatingSession(), url=srv.url, queue_size=20) as st:
            await st.subscribe_accounts([ACCOUNT])
            for i in range(1, 501):
                srv.push("Order", order_data(ACCOUNT, i))
            await _until(lambda: st._listener is not None and st._listener.paused)
            assert len(st._queues["Order"].items) < 20 + 200
            ids = []
            async for o in st.listen(PlacedOrder):
                ids.append(o.id)
                if len(ids) == 500:
                    break
            assert ids == list(range(1, 501))
            assert not st._listener.paused
