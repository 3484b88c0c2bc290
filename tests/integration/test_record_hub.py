"""Recording from the hub, end to end with real processes: the hub records its upstream
(``python -m fastfeed.hub --record DIR``, raw and columns) and ``python -m fastfeed.record hub``
records what a hub consumer receives (columns); both replay to what the simulator sent."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_hub import TIMEOUT, _env

import fastfeed.hub
import fastfeed.replay
from fastfeed._native.dxlink import DXLinkDecoder
from fastfeed.dxfeed import Quote
from fastfeed.record import Recorder, read_meta
from fastfeed.sim import DXLinkServer

pytestmark = pytest.mark.timeout(90)

async def _spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _line(stream: Any) -> str:
    raw = await asyncio.wait_for(stream.readline(), TIMEOUT)
    assert raw, "the process ended"
    return str(raw.decode().strip())


async def _stop(p: asyncio.subprocess.Process) -> tuple[int, str]:
    """SIGTERM (a clean stop: the recordings are closed), bounded; returns (code, stderr)."""
    if p.returncode is None:
        p.send_signal(signal.SIGTERM)
    try:
        _out, err = await asyncio.wait_for(p.communicate(), TIMEOUT)
    except TimeoutError:
        p.kill()
        _out, err = await p.communicate()
    return int(p.returncode or 0), err.decode()


async def _until(cond: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _sent(srv: DXLinkServer, conn: int) -> list[tuple[str, str]]:
    """(symbol, record without its header) of every Quote the simulator sent on ``conn``."""
    dec = DXLinkDecoder()
    for rec in srv.transcript:
        if rec.conn == conn and rec.direction == "S->C":
            dec.feed(rec.data)
    return [(q.eventSymbol, q.record[16:].hex()) for q in dec.drain(Quote)]


async def _replayed(path: str, source: str) -> list[tuple[str, str]]:
    out = []
    async with fastfeed.replay.open(path, source=source) as s:
        async for q in s.listen(Quote):
            out.append((q.eventSymbol, q.record[16:].hex()))
    return out


async def test_hub_records_its_upstream_and_a_consumer_records_what_it_receives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))   # for the consumer in this process
    name = "r" + uuid.uuid4().hex[:10]
    hub_rec = tmp_path / "hub-rec"
    cons_rec = str(tmp_path / "consumer-rec")
    async with DXLinkServer(rate=3000, events_per_frame=5, seed=7) as srv:
        hub = await _spawn(["-m", "fastfeed.hub", "--name", name, "--record", str(hub_rec)],
                           _env(tmp_path, srv.url))
        rec: asyncio.subprocess.Process | None = None
        try:
            assert await _line(hub.stdout) == f"ready ipc://{name}"
            rec = await _spawn(["-m", "fastfeed.record", "hub", f"ipc://{name}", cons_rec,
                                "--subscribe", "Quote:SPY,AAPL"], _env(tmp_path))
            assert (await _line(rec.stderr)).startswith("recording hub into")
            await _until(lambda: len(srv.live) == 1, "the hub's upstream connection")
            conn = next(iter(srv.live))
            # a consumer in this process: its records are handed to the writer as they
            # arrive (the streamer's wake-up), not by the timer (an hour here)
            async with fastfeed.hub.connect(f"ipc://{name}") as st:
                own = Recorder(st, str(tmp_path / "own-rec"), raw=False, flush_events=1,
                               flush_interval=3600)
                await st.subscribe(Quote, ["SPY"])
                await _until(lambda: own.stats["records"] >= 50, "records handed over")
                await own.aclose()
            assert own.stats["records_written"] == own.stats["records"] >= 50
            await _until(lambda: len(_sent(srv, conn)) >= 600, "600 quotes sent")
            code, err = await _stop(rec)
            assert code == 0, err[-2000:]
        finally:
            if rec is not None and rec.returncode is None:
                rec.kill()
                await rec.wait()
            code, err = await _stop(hub)
        assert code == 0, err[-2000:]
        sent = _sent(srv, conn)
    # the hub's recording of its upstream: every quote sent, from raw and from columns
    up = str(hub_rec / "dxlink")
    assert read_meta(up)["streamer"] == "DXLinkUpstream"   # the hub's DXLinkStreamer
    assert await _replayed(up, "raw") == sent
    assert await _replayed(up, "columns") == sent
    # the consumer's recording: a run of what was sent, from its subscription on, nothing
    # lost, added, reordered or altered
    got = await _replayed(cons_rec, "columns")
    assert read_meta(cons_rec)["streamer"] == "HubStreamer"
    assert len(got) >= 100
    k = sent.index(got[0])
    assert got == sent[k:k + len(got)]


def test_a_hub_consumer_has_no_raw_capture(tmp_path: Path) -> None:
    from fastfeed.hub import HubStreamer

    with pytest.raises(ValueError, match="raw=False"):
        Recorder(HubStreamer("never-started"), str(tmp_path / "rec"), raw=True)
    assert not (tmp_path / "rec").exists()      # refused before anything was started


async def test_closing_a_hub_drop_in_closes_its_recorder(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``streamer.record()`` of a drop-in pointed at a hub: its ``close()`` (the hub link's)
    finishes the recording and ends the writer process, as a direct streamer's does."""
    from fastfeed.tastytrade import DXLinkStreamer

    monkeypatch.setenv("FASTFEED_HUB_DIR", str(tmp_path))

    class Session:
        dxlink_url = "wss://never.used"
        streamer_token = "never-sent"
        proxy = None

    streamer = DXLinkStreamer(Session(), hub="ipc://r" + uuid.uuid4().hex[:10])
    rec = streamer.record(str(tmp_path / "rec"), raw=False)
    assert rec.sync(TIMEOUT)           # the writer process is running
    await asyncio.wait_for(streamer.close(), TIMEOUT)
    assert rec._proc.returncode == 0   # it was told to stop, closed its segments and exited
    assert streamer._recorder is None
    assert read_meta(str(tmp_path / "rec"))["streamer"] == "DXLinkStreamer"
