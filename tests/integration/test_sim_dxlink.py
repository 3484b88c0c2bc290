"""Protocol tests of fastfeed.sim.DXLinkServer over real loopback websockets.

A tiny picows client drives the server; the real tastytrade 13.2.3 DXLinkStreamer proves it is
faithful enough for the peer SDK.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

import picows
import pytest

from fastfeed.sim import DXLinkServer, spawn
from fastfeed.sim.generators import (
    DX_FIELDS,
    EF_REMOVE_EVENT,
    EF_SNAPSHOT_BEGIN,
    EF_SNAPSHOT_END,
    TT_FIELDS,
    java_double,
)

pytestmark = pytest.mark.timeout(30)

SETUP = {"type": "SETUP", "channel": 0, "keepaliveTimeout": 60, "acceptKeepaliveTimeout": 60,
         "version": "0.1-test"}


class Client(picows.WSListener):
    """Collects decoded messages; remembers the close code (None = TCP dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []
        self.msgs: list[Any] = []
        self.bad: list[bytes] = []
        self.close_code: int | None = None
        self.pongs = 0
        self.disconnected = asyncio.Event()
        self.transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type == picows.WSMsgType.PONG:
            self.pongs += 1
            return
        data = frame.get_payload_as_bytes()
        self.raw.append(data)
        try:
            self.msgs.append(json.loads(data))
        except ValueError:
            self.bad.append(data)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.disconnected.set()

    def send(self, obj: Any) -> None:
        assert self.transport is not None
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.transport.send(picows.WSMsgType.TEXT, data)

    def of(self, mtype: str) -> list[dict[str, Any]]:
        return [m for m in self.msgs if isinstance(m, dict) and m.get("type") == mtype]

    async def wait(self, pred: Callable[[], Any], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last messages: {self.msgs[-5:]}")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        if self.transport is not None and not self.disconnected.is_set():
            self.transport.send_close(picows.WSCloseCode.OK)
            self.transport.disconnect()


async def connect(srv: DXLinkServer) -> Client:
    _, client = await picows.ws_connect(Client, srv.url)
    return client  # type: ignore[return-value]


async def ready(srv: DXLinkServer, fields: dict[str, list[str]] | None = None,
                subs: list[dict[str, Any]] | None = None, channel: int = 1,
                fmt: str = "COMPACT") -> Client:
    """Connect, SETUP, AUTH, open a channel, FEED_SETUP and subscribe."""
    c = await connect(srv)
    c.send(SETUP)
    if srv.token is not None:
        c.send({"type": "AUTH", "channel": 0, "token": srv.token})
    await c.wait(lambda: any(m.get("state") == "AUTHORIZED" for m in c.of("AUTH_STATE")))
    c.send({"type": "CHANNEL_REQUEST", "channel": channel, "service": "FEED",
            "parameters": {"contract": "AUTO"}})
    await c.wait(lambda: c.of("CHANNEL_OPENED"))
    c.send({"type": "FEED_SETUP", "channel": channel, "acceptAggregationPeriod": 0.1,
            "acceptDataFormat": fmt,
            "acceptEventFields": fields or {"Quote": TT_FIELDS["Quote"]}})
    if subs:
        c.send({"type": "FEED_SUBSCRIPTION", "channel": channel, "add": subs})
    return c


def decode_compact(msgs: list[Any], fields: dict[int, dict[str, list[str]]]
                   ) -> list[tuple[int, str, dict[str, Any]]]:
    """Decode FEED_DATA COMPACT messages with FEED_CONFIG fields; checks value counts."""
    out = []
    for m in msgs:
        if not isinstance(m, dict):
            continue
        if m.get("type") == "FEED_CONFIG" and "eventFields" in m:
            fields.setdefault(m["channel"], {}).update(m["eventFields"])
        if m.get("type") != "FEED_DATA":
            continue
        data = m["data"]
        assert len(data) % 2 == 0
        for i in range(0, len(data), 2):
            etype, values = data[i], data[i + 1]
            names = fields[m["channel"]][etype]
            assert len(values) % len(names) == 0, (etype, len(values), names)
            for j in range(0, len(values), len(names)):
                out.append((m["channel"], etype, dict(zip(names, values[j:j + len(names)], strict=True))))
    return out


# ---------------------------------------------------------------------------------- handshake

async def test_handshake_token_and_bad_token() -> None:
    async with DXLinkServer(token="tok", keepalive_timeout=33) as srv:
        c = await connect(srv)
        c.send(SETUP)
        await c.wait(lambda: len(c.msgs) >= 2)
        assert c.msgs[0]["type"] == "SETUP" and c.msgs[0]["keepaliveTimeout"] == 33
        assert c.msgs[1] == {"type": "AUTH_STATE", "channel": 0, "state": "UNAUTHORIZED"}
        c.send({"type": "AUTH", "channel": 0, "token": "wrong"})
        await c.wait(lambda: len(c.msgs) >= 3)
        assert c.msgs[2]["state"] == "UNAUTHORIZED"
        c.send({"type": "AUTH", "channel": 0, "token": "tok"})
        await c.wait(lambda: len(c.msgs) >= 4)
        assert c.msgs[3]["state"] == "AUTHORIZED" and "userId" in c.msgs[3]
        assert srv.connections == 1
        c.close()


async def test_no_token_authorized_and_auth_before_setup() -> None:
    async with DXLinkServer(token=None) as srv:
        c = await connect(srv)
        c.send(SETUP)
        await c.wait(lambda: len(c.msgs) >= 2)
        assert c.msgs[1]["state"] == "AUTHORIZED"
        c.close()
    async with DXLinkServer(token="tok") as srv:
        c = await connect(srv)
        c.send({"type": "AUTH", "channel": 0, "token": "tok"})  # before SETUP (JS client race)
        c.send(SETUP)
        await c.wait(lambda: len(c.msgs) >= 3)
        states = [m["state"] for m in c.of("AUTH_STATE")]
        assert states[0] == "AUTHORIZED" and states[-1] == "AUTHORIZED"
        c.close()


async def test_auth_on_unauthorized_with_delay() -> None:
    async with DXLinkServer(token="tok", auth_delay=0.1) as srv:
        c = await connect(srv)
        c.send(SETUP)
        await c.wait(lambda: c.of("AUTH_STATE"))
        c.send({"type": "AUTH", "channel": 0, "token": "tok"})
        t0 = time.monotonic()
        await c.wait(lambda: len(c.of("AUTH_STATE")) >= 2)
        assert time.monotonic() - t0 >= 0.09
        assert c.of("AUTH_STATE")[-1]["state"] == "AUTHORIZED"
        c.close()


async def test_strict_order_rejects_early_channel_request() -> None:
    async with DXLinkServer(token="tok", strict_order=True) as srv:
        c = await connect(srv)
        c.send(SETUP)
        c.send({"type": "CHANNEL_REQUEST", "channel": 3, "service": "FEED",
                "parameters": {"contract": "AUTO"}})
        await c.wait(lambda: c.of("ERROR"))
        err = c.of("ERROR")[0]
        assert err["error"] == "UNAUTHORIZED" and err["channel"] == 3
        assert not c.of("CHANNEL_OPENED")
        c.send({"type": "AUTH", "channel": 0, "token": "tok"})
        c.send({"type": "CHANNEL_REQUEST", "channel": 3, "service": "FEED",
                "parameters": {"contract": "AUTO"}})
        await c.wait(lambda: c.of("CHANNEL_OPENED"))
        c.close()


async def test_channel_open_cancel_reuse() -> None:
    async with DXLinkServer(token=None) as srv:
        c = await connect(srv)
        c.send(SETUP)
        req = {"type": "CHANNEL_REQUEST", "channel": 7, "service": "FEED",
               "parameters": {"contract": "AUTO"}}
        c.send(req)
        await c.wait(lambda: c.of("CHANNEL_OPENED"))
        assert c.of("CHANNEL_OPENED")[0] == {"type": "CHANNEL_OPENED", "channel": 7,
                                             "service": "FEED",
                                             "parameters": {"contract": "AUTO",
                                                            "subFormat": "LIST"}}
        c.send({"type": "CHANNEL_CANCEL", "channel": 7})
        await c.wait(lambda: c.of("CHANNEL_CLOSED"))
        assert c.of("CHANNEL_CLOSED")[0] == {"type": "CHANNEL_CLOSED", "channel": 7}
        c.send(req)
        await c.wait(lambda: len(c.of("CHANNEL_OPENED")) == 2)
        c.close()


# ---------------------------------------------------------------------------------- FEED_CONFIG

async def test_feed_config_requested_order_unknown_dropped() -> None:
    async with DXLinkServer(token=None) as srv:
        req = ["askPrice", "eventSymbol", "nonsense", "bidPrice", "eventTime"]
        c = await ready(srv, {"Quote": req, "Candle": ["eventSymbol", "VWAP", "close"]})
        await c.wait(lambda: c.of("FEED_CONFIG"))
        cfg = c.of("FEED_CONFIG")[0]
        assert cfg["dataFormat"] == "COMPACT" and cfg["aggregationPeriod"] == 0.1
        assert cfg["eventFields"]["Quote"] == ["askPrice", "eventSymbol", "bidPrice", "eventTime"]
        assert cfg["eventFields"]["Candle"] == ["eventSymbol", "VWAP", "close"]
        c.close()


async def test_feed_config_server_order_lazy_and_omit() -> None:
    async with DXLinkServer(token=None, server_field_order=True) as srv:
        c = await ready(srv, {"Quote": TT_FIELDS["Quote"]})
        await c.wait(lambda: c.of("FEED_CONFIG"))
        own = c.of("FEED_CONFIG")[0]["eventFields"]["Quote"]
        assert own[0] == "eventType" and own != TT_FIELDS["Quote"]
        assert own == [f for f in DX_FIELDS["Quote"] if f in own]
        c.close()
    async with DXLinkServer(token=None, event_fields_mode="lazy", rate=200) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": "AAPL"}])
        await c.wait(lambda: c.of("FEED_DATA"))
        cfgs = c.of("FEED_CONFIG")
        assert "eventFields" not in cfgs[0] and "eventFields" in cfgs[1]
        assert c.msgs.index(cfgs[1]) < c.msgs.index(c.of("FEED_DATA")[0])
        c.close()
    async with DXLinkServer(token=None, event_fields_mode="omit", rate=200) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": "AAPL"}])
        await c.wait(lambda: len(c.of("FEED_DATA")) >= 3)
        assert all("eventFields" not in m for m in c.of("FEED_CONFIG"))
        # decodable with the requested list
        assert decode_compact(c.msgs, {1: {"Quote": TT_FIELDS["Quote"]}})
        c.close()


# ---------------------------------------------------------------------------------- data

async def test_subscription_filtering_and_multi_pair_frames() -> None:
    fields = {"Quote": TT_FIELDS["Quote"], "Trade": TT_FIELDS["Trade"],
              "Greeks": TT_FIELDS["Greeks"], "Summary": TT_FIELDS["Summary"],
              "Profile": TT_FIELDS["Profile"], "TimeAndSale": TT_FIELDS["TimeAndSale"],
              "TheoPrice": TT_FIELDS["TheoPrice"], "Underlying": TT_FIELDS["Underlying"],
              "TradeETH": TT_FIELDS["TradeETH"]}
    subs = [{"type": t, "symbol": s} for t in fields for s in ("AAPL", "SPX")]
    async with DXLinkServer(token=None, rate=4000, events_per_frame=20, seed=5) as srv:
        c = await ready(srv, fields, subs)
        await c.wait(lambda: len(c.of("FEED_DATA")) >= 30)
        events = decode_compact(c.msgs, {})
        pairs = {(t, e["eventSymbol"]) for _, t, e in events}
        assert pairs <= {(s["type"], s["symbol"]) for s in subs}
        assert {t for t, _ in pairs} == set(fields)
        assert any(len(m["data"]) > 2 for m in c.of("FEED_DATA")), "no multi-pair frame"
        # what the client decoded is exactly what the server recorded as sent
        sent = [json.loads(r.data) for r in srv.sent]
        assert c.msgs == sent[: len(c.msgs)]
        assert srv.subscriptions() == {1: {(s["type"], s["symbol"]) for s in subs}}
        # remove + reset
        c.send({"type": "FEED_SUBSCRIPTION", "channel": 1,
                "remove": [{"type": t, "symbol": "SPX"} for t in fields]})
        await asyncio.sleep(0.05)
        n = len(c.msgs)
        await c.wait(lambda: len(c.msgs) >= n + 10)
        later = decode_compact(c.msgs[n:], {1: fields})
        assert later and all(e["eventSymbol"] == "AAPL" for _, _, e in later)
        c.send({"type": "FEED_SUBSCRIPTION", "channel": 1, "reset": True,
                "add": [{"type": "Quote", "symbol": "MSFT"}]})
        await asyncio.sleep(0.05)
        n = len(c.msgs)
        await c.wait(lambda: len(c.msgs) >= n + 5)
        later = decode_compact(c.msgs[n:], {1: fields})
        assert {(t, e["eventSymbol"]) for _, t, e in later} == {("Quote", "MSFT")}
        c.close()


async def test_edge_encodings_present() -> None:
    async with DXLinkServer(token=None, rate=None, events_per_frame=100, edge_rate=0.3,
                            pool_frames=16) as srv:
        subs = [{"type": "Quote", "symbol": s} for s in ("SPX", "AAPL")] + [
            {"type": "Greeks", "symbol": ".SPXW260320C6000"},
            {"type": "Trade", "symbol": "AAPL"}, {"type": "Profile", "symbol": "AAPL"}]
        c = await ready(srv, {t: TT_FIELDS[t] for t in ("Quote", "Greeks", "Trade", "Profile")},
                        subs)
        await c.wait(lambda: len(c.of("FEED_DATA")) >= 20)
        c.close()
        text = b"".join(c.raw)
        for token in (b'"NaN"', b'"Infinity"', b'"-Infinity"', b'"\\u0000"', b'""', b"null",
                      b"E7", b"E-12", b".0,"):
            assert token in text, token
        events = decode_compact(c.msgs, {})
        assert any(e.get("index", 0) > 2 ** 53 for _, t, e in events if t == "Greeks")
        spx = [e for _, t, e in events if t == "Quote" and e["eventSymbol"] == "SPX"]
        assert spx and all(e["bidSize"] in ("NaN", "Infinity", "-Infinity") for e in spx)
    assert java_double(13743299.0) == "1.3743299E7"
    assert java_double(100.0) == "100.0"
    assert java_double(4.81989763184255e-12) == "4.81989763184255E-12"
    assert java_double(float("nan")) == '"NaN"'


async def test_candle_snapshot_flags_and_empty_snapshot() -> None:
    async with DXLinkServer(token=None, rate=1, snapshot_size=5, events_per_frame=2) as srv:
        c = await ready(srv, {"Candle": TT_FIELDS["Candle"]},
                        [{"type": "Candle", "symbol": "SPY{=5m,tho=true}",
                          "fromTime": 1767300000000}])
        await c.wait(lambda: len(c.of("FEED_DATA")) >= 3)
        snap = [e for _, _, e in decode_compact(c.msgs, {})][:5]
        flags = [e["eventFlags"] for e in snap]
        assert flags[0] & EF_SNAPSHOT_BEGIN and flags[-1] & EF_SNAPSHOT_END
        assert all(f == 0 for f in flags[1:-1])
        times = [e["time"] for e in snap]
        assert times == sorted(times, reverse=True) and times[0] - times[1] == 300_000
        c.send({"type": "FEED_SUBSCRIPTION", "channel": 1,
                "add": [{"type": "Candle", "symbol": "QQQ{=1d}", "fromTime": 4102444800000}]})
        await c.wait(lambda: any(e["eventSymbol"] == "QQQ{=1d}"
                                 for _, _, e in decode_compact(c.msgs, {})))
        empty = [e for _, _, e in decode_compact(c.msgs, {}) if e["eventSymbol"] == "QQQ{=1d}"]
        assert empty[0]["eventFlags"] & EF_REMOVE_EVENT
        assert empty[0]["eventFlags"] & EF_SNAPSHOT_BEGIN
        c.close()


async def test_full_format_requested_and_forced() -> None:
    async with DXLinkServer(token=None, rate=500) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": "AAPL"}], fmt="FULL")
        await c.wait(lambda: c.of("FEED_DATA"))
        assert c.of("FEED_CONFIG")[0]["dataFormat"] == "FULL"
        ev = c.of("FEED_DATA")[0]["data"][0]
        assert ev["eventType"] == "Quote" and ev["eventSymbol"] == "AAPL" and "bidPrice" in ev
        c.close()
    async with DXLinkServer(token=None, rate=500, full_format=True) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": "AAPL"}])
        await c.wait(lambda: c.of("FEED_DATA"))
        assert c.of("FEED_CONFIG")[0]["dataFormat"] == "COMPACT"
        assert isinstance(c.of("FEED_DATA")[0]["data"][0], dict)
        c.close()


async def test_paced_rate_accuracy_10k() -> None:
    """The paced sender keeps its schedule: never ahead of it, and behind it only while the
    process is starved (it then catches up). Read from the sender's own count, so a slow or
    busy machine cannot fail the test: slowness only delays the catch-up, which is awaited."""
    rate = 10_000
    async with DXLinkServer(token=None, rate=rate, events_per_frame=1, record=False) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": "AAPL"}])
        await c.wait(lambda: c.of("FEED_DATA"))
        (conn,) = srv.live.values()
        start = conn.connected_ns / 1e9     # the schedule starts after this instant

        def ahead() -> float:               # events sent beyond the schedule (must be <= 1)
            return conn.events_sent - rate * (time.monotonic() - start)

        n0, t0 = conn.events_sent, time.monotonic()
        excess = [ahead()]
        while time.monotonic() - t0 < 0.5:  # sample while it runs: never ahead of schedule
            await asyncio.sleep(0.01)
            excess.append(ahead())
        assert max(excess) <= 1, max(excess)
        due = 0.95 * rate * (time.monotonic() - t0)
        # ... and it catches up with the schedule however late this process ran it
        await c.wait(lambda: conn.events_sent - n0 >= due, timeout=10.0)
        c.close()


async def test_stamp_send_time() -> None:
    async with DXLinkServer(token=None, rate=500, stamp_send_time=True) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": "AAPL"}])
        await c.wait(lambda: len(c.of("FEED_DATA")) >= 5)
        now = time.monotonic_ns()
        stamps = [e["eventTime"] for _, _, e in decode_compact(c.msgs, {})]
        assert all(0 < now - s < 5e9 for s in stamps)
        c.close()


async def test_flat_out_and_exact_close_after_frames() -> None:
    async with DXLinkServer(token=None, rate=None, events_per_frame=100, record=False,
                            close_after_frames=3000, close_code=1000) as srv:
        c = await ready(srv, subs=[{"type": "Quote", "symbol": f"S{i}"} for i in range(50)])
        await asyncio.wait_for(c.disconnected.wait(), 20)
        assert c.close_code == 1000
        assert len(c.of("FEED_DATA")) == 3000
        assert all(len(m["data"][1]) == 100 * 12 for m in c.of("FEED_DATA"))
        assert srv.frames_sent == 3000


async def test_determinism_with_seed() -> None:
    async def first_frames(seed: int) -> list[Any]:
        async with DXLinkServer(token=None, rate=2000, events_per_frame=5, seed=seed) as srv:
            c = await ready(srv, {"Quote": TT_FIELDS["Quote"], "Greeks": TT_FIELDS["Greeks"]},
                            [{"type": "Quote", "symbol": "AAPL"},
                             {"type": "Greeks", "symbol": ".SPXW260320C6000"}])
            await c.wait(lambda: len(c.of("FEED_DATA")) >= 10)
            c.close()
            return c.of("FEED_DATA")[:10]
    a, b, other = await first_frames(3), await first_frames(3), await first_frames(4)
    assert a == b and a != other


# ---------------------------------------------------------------------------------- keepalive

async def test_keepalive_sent_when_idle_and_timeout_enforced() -> None:
    async with DXLinkServer(token=None, keepalive_interval=0.1, keepalive_timeout=0.6) as srv:
        c = await connect(srv)
        c.send(SETUP)
        t0 = time.monotonic()
        await c.wait(lambda: c.of("KEEPALIVE"))
        c.send({"type": "KEEPALIVE", "channel": 0})
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert time.monotonic() - t0 >= 0.6
        err = c.of("ERROR")
        assert err and err[0]["error"] == "TIMEOUT" and c.close_code is not None
        assert len(c.of("KEEPALIVE")) >= 3


# ---------------------------------------------------------------------------------- faults

QSUB = [{"type": "Quote", "symbol": "AAPL"}]


async def test_close_after_frames_1012() -> None:
    async with DXLinkServer(token=None, rate=2000, close_after_frames=5) as srv:
        c = await ready(srv, subs=QSUB)
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.close_code == 1012 and len(c.of("FEED_DATA")) == 5


async def test_drop_after_frames_no_close_frame() -> None:
    async with DXLinkServer(token=None, rate=2000, drop_after_frames=4) as srv:
        c = await ready(srv, subs=QSUB)
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.close_code is None and len(c.of("FEED_DATA")) == 4


async def test_stall_after_frames_keeps_socket_open() -> None:
    async with DXLinkServer(token=None, rate=2000, stall_after_frames=3,
                            keepalive_interval=0.05) as srv:
        c = await ready(srv, subs=QSUB)
        await c.wait(lambda: len(c.of("FEED_DATA")) >= 3)
        n = len(c.msgs)
        await asyncio.sleep(0.4)
        assert len(c.msgs) == n and not c.disconnected.is_set() and srv.connections == 1
        assert len(c.of("FEED_DATA")) == 3
        srv.inject("unstall")
        await c.wait(lambda: len(c.msgs) > n)
        c.close()


async def test_error_after_frames_and_runtime_inject() -> None:
    async with DXLinkServer(token=None, rate=2000, error_after_frames=2) as srv:
        c = await ready(srv, subs=QSUB)
        await c.wait(lambda: c.of("ERROR"))
        assert len(c.of("FEED_DATA")) >= 2 and c.of("ERROR")[0]["channel"] == 0
        assert srv.inject("error", error="BAD_ACTION", message="x") == 1
        await c.wait(lambda: len(c.of("ERROR")) == 2)
        assert c.of("ERROR")[1]["error"] == "BAD_ACTION"
        srv.inject("close", code=1011)
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.close_code == 1011


async def test_malformed_every() -> None:
    async with DXLinkServer(token=None, rate=3000, malformed_every=3) as srv:
        c = await ready(srv, subs=QSUB)
        await c.wait(lambda: len(c.raw) >= 30)
        c.close()
        assert c.bad, "no invalid-JSON frame"
        fields = {1: {"Quote": TT_FIELDS["Quote"]}}
        non_multiple = [m for m in c.of("FEED_DATA")
                        if isinstance(m["data"][1], list) and len(m["data"][1]) % 12]
        assert non_multiple
        good = [m for m in c.of("FEED_DATA") if m not in non_multiple]
        assert decode_compact(good, fields)


async def test_oversize_frames() -> None:
    async with DXLinkServer(token=None, rate=50, oversize_frame_bytes=70_000) as srv:
        c = await ready(srv, subs=QSUB)
        await c.wait(lambda: c.of("FEED_DATA"))
        assert len(c.raw[-1]) > 70_000
        c.close()


async def test_reject_first_upgrades_502() -> None:
    async with DXLinkServer(token=None, reject_first=2) as srv:
        for _ in range(2):
            with pytest.raises(picows.WSHandshakeError) as ei:
                await picows.ws_connect(Client, srv.url)
            assert ei.value.response is not None and ei.value.response.status == 502
        c = await connect(srv)
        c.send(SETUP)
        await c.wait(lambda: c.of("AUTH_STATE"))
        assert srv.upgrades_rejected == 2
        c.close()


async def test_max_client_message_1009() -> None:
    async with DXLinkServer(token=None, max_client_message=2000) as srv:
        c = await ready(srv)
        c.send({"type": "FEED_SUBSCRIPTION", "channel": 1,
                "add": [{"type": "Quote", "symbol": f"SYM{i}"} for i in range(200)]})
        await asyncio.wait_for(c.disconnected.wait(), 5)
        assert c.close_code == 1009


async def test_transcript_directions() -> None:
    async with DXLinkServer(token=None) as srv:
        c = await connect(srv)
        c.send(SETUP)
        await c.wait(lambda: len(c.msgs) >= 2)
        c.close()
        assert json.loads(srv.received[0].data)["type"] == "SETUP"
        assert [json.loads(r.data)["type"] for r in srv.sent[:2]] == ["SETUP", "AUTH_STATE"]
        assert srv.received[0].ts_ns <= srv.sent[0].ts_ns


# ---------------------------------------------------------------------------------- processes

@pytest.mark.timeout(40)
async def test_spawn_in_subprocess() -> None:
    with spawn("dxlink", token=None, rate=1000) as sim:
        assert sim.url.startswith("ws://127.0.0.1:")
        _, c = await picows.ws_connect(Client, sim.url)
        c.send(SETUP)
        await c.wait(lambda: c.of("AUTH_STATE"))
        c.close()
        proc = sim.proc
    assert proc is not None and proc.poll() is not None


# ---------------------------------------------------------------------------------- peer SDK

@pytest.mark.peer
@pytest.mark.timeout(40)
async def test_real_tastytrade_streamer_receives_quotes() -> None:
    pytest.importorskip("tastytrade")
    from tastytrade import DXLinkStreamer
    from tastytrade.dxfeed import Candle, Greeks, Quote

    async with DXLinkServer(token="quote-token", rate=200, events_per_frame=4,
                            strict_order=True, edge_rate=0.0) as srv:
        class FakeSession:
            client_kwargs: ClassVar[dict[str, Any]] = {}
            is_test = False
            proxy = None

            async def _get(self, path: str) -> dict[str, Any]:
                assert path == "/api-quote-tokens"
                return {"token": "quote-token", "dxlink-url": srv.url, "level": "api"}

        async def run() -> tuple[list[Any], Any, Any]:
            async with DXLinkStreamer(FakeSession()) as streamer:  # type: ignore[arg-type]
                await streamer.subscribe(Quote, ["SPY", "SPX"])
                await streamer.subscribe(Greeks, [".SPXW260320C6000"])
                quotes = [await streamer.get_event(Quote) for _ in range(6)]
                greeks = await streamer.get_event(Greeks)
                await streamer.subscribe_candle(["SPY"], "5m")
                candle = await streamer.get_event(Candle)
                return quotes, greeks, candle

        quotes, greeks, candle = await asyncio.wait_for(run(), 30)
        assert {q.event_symbol for q in quotes} == {"SPY", "SPX"}
        assert greeks.event_symbol == ".SPXW260320C6000" and greeks.index > 2 ** 53
        assert candle.event_symbol == "SPY{=5m,tho=true}"
        # tastytrade sent exactly the messages the protocol reference says it sends
        sent_types = [json.loads(r.data)["type"] for r in srv.received]
        assert sent_types[:2] == ["SETUP", "AUTH"]
        assert "FEED_SUBSCRIPTION" in sent_types
