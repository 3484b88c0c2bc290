"""Connection manager: websockets-compatible backoff (env vars, fake clock), retry policy, loop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from typing import Any

import pytest
from fastfeed._native._testcore import CountingCore

from fastfeed._connection import (
    BackoffConfig,
    ConnectionManager,
    ConnectionState,
    DesiredSubscriptions,
    Endpoint,
    backoff,
    process_exception,
    safe_url,
)
from fastfeed.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectionFailedError,
    StreamerClosedError,
)

pytestmark = pytest.mark.timeout(30)


def test_backoff_defaults_match_websockets() -> None:
    cfg = BackoffConfig.from_env({})
    assert (cfg.initial_delay, cfg.min_delay, cfg.max_delay, cfg.factor) == (5.0, 3.1, 90.0, 1.618)
    delays = list(itertools.islice(backoff(cfg, rand=lambda: 0.5), 12))
    assert delays[0] == 2.5                       # random() * initial
    assert delays[1] == 3.1
    assert delays[2] == pytest.approx(3.1 * 1.618)
    assert delays[3] == pytest.approx(3.1 * 1.618**2)
    assert max(delays) == 90.0 and delays[-1] == 90.0
    assert all(a <= b for a, b in itertools.pairwise(delays[1:]))


def test_backoff_env_vars() -> None:
    env = {"WEBSOCKETS_BACKOFF_INITIAL_DELAY": "1", "WEBSOCKETS_BACKOFF_MIN_DELAY": "0.5",
           "WEBSOCKETS_BACKOFF_MAX_DELAY": "2", "WEBSOCKETS_BACKOFF_FACTOR": "2",
           }
    cfg = BackoffConfig.from_env(env)
    assert list(itertools.islice(backoff(cfg, rand=lambda: 1.0), 6)) == [1.0, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert BackoffConfig.from_env({"WEBSOCKETS_BACKOFF_FACTOR": "x"}).factor == 1.618


def test_backoff_env_read_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MAX_DELAY", "7")
    assert BackoffConfig.from_env().max_delay == 7.0


class _Resp:
    def __init__(self, status: int) -> None:
        self.status = status


def test_process_exception() -> None:
    from picows import WSInvalidStatusError

    assert process_exception(ConnectionRefusedError()) is None
    assert process_exception(TimeoutError()) is None
    assert process_exception(ConnectionClosedError(1012)) is None
    assert process_exception(WSInvalidStatusError("x", response=_Resp(502))) is None
    assert process_exception(WSInvalidStatusError("x", response=_Resp(503))) is None
    assert process_exception(WSInvalidStatusError("x", response=_Resp(429))) is None
    e401 = process_exception(WSInvalidStatusError("x", response=_Resp(401)), "wss://h/p")
    assert isinstance(e401, AuthenticationError) and e401.status == 401
    assert "wss://h/p" in str(e401) and isinstance(e401.__cause__, WSInvalidStatusError)
    e404 = process_exception(WSInvalidStatusError("x", response=_Resp(404)), "wss://h/p")
    assert isinstance(e404, ConfigurationError) and e404.status == 404 and "404" in str(e404)
    e200 = process_exception(WSInvalidStatusError("x", response=_Resp(200)))
    assert isinstance(e200, ConfigurationError) and "not a websocket" in str(e200)
    tls = ssl.SSLCertVerificationError("verify failed")
    etls = process_exception(tls)                 # an OSError, but never retried
    assert isinstance(etls, ConnectionFailedError) and etls.__cause__ is tls
    bug = KeyError("x")
    assert process_exception(bug) is bug


def test_safe_url_drops_query_and_credentials() -> None:
    assert safe_url("wss://user:pw@h.io:443/a/b?token=SECRET#x") == "wss://h.io:443/a/b"
    assert safe_url("ws://127.0.0.1:5/stocks") == "ws://127.0.0.1:5/stocks"


def test_desired_subscriptions_is_a_set() -> None:
    d = DesiredSubscriptions()
    assert d.add("Quote", ["A", "B"]) == ["A", "B"]
    assert d.add("Quote", ["A"]) == []            # replaying twice is harmless
    assert d.add("Candle", ["X{=1m}"], 1000) == ["X{=1m}"]
    assert d.add("Candle", ["X{=1m}"], 2000) == ["X{=1m}"]   # changed fromTime
    assert len(d) == 3
    assert d.remove("Quote", ["A", "Z"]) == ["A"]
    assert d.clear("Quote") == ["B"] and "Quote" not in d.items


class _Manager(ConnectionManager):
    """Test manager: 'ready' as soon as the socket is up (no protocol)."""

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(CountingCore(keep=False), **kw)
        self.url = url
        self.slept: list[float] = []
        self.opened = 0

        async def fake_sleep(d: float) -> None:
            self.slept.append(d)
            await asyncio.sleep(0)

        self._sleep = fake_sleep
        self._rand = lambda: 0.5

    async def _endpoint(self) -> Endpoint:
        return Endpoint(self.url)

    def _on_open(self) -> None:
        self.opened += 1
        self._set_ready()


async def test_loop_backs_off_on_502_then_connects() -> None:
    from fastfeed.sim import DXLinkServer

    async with DXLinkServer(reject_first=4, rate=None) as srv:
        events: list[str] = []

        async def on_disc(s: Any, tag: str) -> None:
            events.append("disconnect:" + tag)

        async def on_reco(s: Any, tag: str) -> None:
            events.append("reconnect:" + tag)

        states: list[tuple[str, str]] = []
        m = _Manager(srv.url, backoff_config=BackoffConfig(1.0, 0.5, 2.0, 2.0),
                     disconnect_fn=on_disc, disconnect_args=("D",),
                     reconnect_fn=on_reco, reconnect_args=("R",),
                     on_state_change=lambda old, new: states.append((old.value, new.value)))
        m.stability_window = 0.0   # every connection counts as stable: immediate reconnect
        await asyncio.wait_for(m.start(), 10)
        assert m.slept == [0.5, 0.5, 1.0, 2.0]     # random()*initial, min, min*f, capped
        assert srv.upgrades_rejected == 4 and m.ready and m.state is ConnectionState.READY
        assert m.n_failed_attempts == 4 and m.n_reconnects == 0
        assert states[:3] == [("closed", "connecting"), ("connecting", "backing_off"),
                              ("backing_off", "connecting")]
        assert states[-2:] == [("connecting", "handshaking"), ("handshaking", "ready")]
        # a connection that was up (and stable) and drops reconnects at once (no delay)
        m.slept.clear()
        srv.inject("close", code=1012)
        for _ in range(200):
            if m.n_reconnects:
                break
            await asyncio.sleep(0.01)
        assert m.n_reconnects == 1 and m.slept == []
        await m.close()
        await m.close()                            # idempotent
        await asyncio.sleep(0)
        assert events == ["disconnect:D", "reconnect:R", "disconnect:D"]
        n = srv.connections_total
        await asyncio.sleep(0.2)
        assert srv.connections_total == n           # close() never reconnects
        assert m.state is ConnectionState.CLOSED and states[-1][1] == "closed"


async def test_unstable_connection_backs_off() -> None:
    from fastfeed.sim import DXLinkServer

    async with DXLinkServer(rate=None) as srv:
        m = _Manager(srv.url, backoff_config=BackoffConfig(1.0, 0.5, 2.0, 2.0))
        await asyncio.wait_for(m.start(), 10)
        srv.inject("close", code=1012)              # ready for far less than stability_window
        for _ in range(500):
            if m.n_reconnects:
                break
            await asyncio.sleep(0.01)
        assert m.n_reconnects == 1 and m.slept == [0.5]   # backed off (random()*initial)
        await m.close()


async def test_fatal_upgrade_status_reaches_start() -> None:
    from fastfeed.sim import DXLinkServer

    async with DXLinkServer(reject_first=1, reject_upgrade_status=403) as srv:
        m = _Manager(srv.url)
        with pytest.raises(AuthenticationError):
            await asyncio.wait_for(m.start(), 10)
        assert m.slept == []


async def test_connection_refused_first_connect_fails_within_open_timeout() -> None:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    m = _Manager(f"ws://127.0.0.1:{port}/x?token=SECRET",
                 backoff_config=BackoffConfig(0.01, 0.01, 0.05, 1.0))
    m._sleep = asyncio.sleep
    m.open_timeout = 0.5
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(ConnectionFailedError) as ei:
        await asyncio.wait_for(m.start(), 5)
    assert loop.time() - t0 < 0.5 + 3.0   # fails at once, no retries (slack: a busy box)
    assert f"127.0.0.1:{port}/x" in str(ei.value) and "SECRET" not in str(ei.value)
    assert isinstance(ei.value.__cause__, OSError)
    assert m.n_failed_attempts >= 2 and m.state is ConnectionState.CLOSED
    with pytest.raises(ConnectionFailedError):    # the streamer stays failed
        await m.start()


async def test_closed_manager_refuses_use() -> None:
    m = _Manager("ws://127.0.0.1:9/")
    await m.close()
    with pytest.raises(StreamerClosedError):
        await m.start()


async def test_first_connect_fails_at_once_when_the_next_delay_cannot_fit() -> None:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    m = _Manager(f"ws://127.0.0.1:{port}/", backoff_config=BackoffConfig(60.0, 60.0, 60.0, 1.0))
    m._rand = lambda: 1.0
    with pytest.raises(ConnectionFailedError):
        await asyncio.wait_for(m.start(), 5)
    assert m.n_failed_attempts == 1 and m.slept == []   # no pointless wait until open_timeout


def test_a_normal_close_that_ends_the_stream_is_not_logged_as_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    from fastfeed.errors import ConnectionClosedError, ConnectionClosedOK

    with caplog.at_level(logging.INFO, logger="fastfeed.connection"):
        _Manager("ws://127.0.0.1:9/")._fail(ConnectionClosedOK(1000, "bye"))  # reconnect=False
        _Manager("ws://127.0.0.1:9/")._fail(ConnectionClosedError(1011, "crash"))
    levels = [(r.levelno, r.getMessage().split(":")[1].strip()) for r in caplog.records
              if "streamer stopped" in r.getMessage()]
    assert levels == [(logging.INFO, "ConnectionClosedOK"), (logging.ERROR, "ConnectionClosedError")]
