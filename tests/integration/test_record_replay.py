"""Record a simulator session (with a reconnect in the middle) and replay it: the events equal
what was delivered live, field for field (raw and columns)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest

import fastfeed.replay
from fastfeed.dxfeed import Quote, Trade
from fastfeed.sim import DXLinkServer, PolygonServer
from fastfeed.tastytrade import DXLinkStreamer

pytestmark = pytest.mark.timeout(60)


class Session:
    def __init__(self, url: str) -> None:
        self.dxlink_url = url
        self.streamer_token = "sim-token"
        self.proxy = None


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_INITIAL_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MIN_DELAY", "0.05")
    monkeypatch.setenv("WEBSOCKETS_BACKOFF_MAX_DELAY", "0.2")


def key(ev: Any) -> tuple[Any, ...]:
    """Every field of an event, compared by repr (NaN == NaN), plus symbol and receive time."""
    return (ev.event_symbol, ev.ts_recv) + tuple(repr(getattr(ev, f)) for f in type(ev).FIELDS)


async def _collect(it: Any, n: int) -> list[Any]:
    out = []
    async for ev in it:
        out.append(ev)
        if len(out) >= n:
            break
    return out


async def record_dxlink(path: str, n: int = 400,
                        parquet: bool = True) -> tuple[list[Any], list[Any], DXLinkStreamer]:
    async with DXLinkServer(token="sim-token", rate=4000, events_per_frame=10,
                            close_after_frames=15) as srv:
        streamer = DXLinkStreamer(Session(srv.url))
        rec = streamer.record(path, raw=True, columns=True, batch_rows=64, parquet=parquet)
        quotes = streamer.listen(Quote)
        trades = streamer.listen(Trade)
        async with streamer:
            await streamer.subscribe(Quote, ["SPY", "AAPL"])
            await streamer.subscribe(Trade, ["SPY"])
            q_task = asyncio.ensure_future(_collect(quotes, n))
            t_task = asyncio.ensure_future(_collect(trades, 20))
            live_q, live_t = await asyncio.wait_for(asyncio.gather(q_task, t_task), 30)
            assert streamer.n_reconnects >= 1
        assert rec.stats["dropped_messages"] == 0 and rec.stats["dropped_records"] == 0
    return live_q, live_t, streamer


async def replay_all(path: str, cls: Any, **kw: Any) -> list[Any]:
    s = fastfeed.replay.open(path, **kw)
    out = []
    async with s:
        async for ev in s.listen(cls):
            out.append(ev)
    return out


@pytest.mark.parametrize("source", ["raw", "columns", "arrows"])
async def test_dxlink_record_replay(tmp_path: Any, source: str) -> None:
    """``arrows``: columns left as Arrow IPC segments of many small batches (no compaction)."""
    path = str(tmp_path / "rec")
    live_q, live_t, _ = await record_dxlink(path, parquet=source != "arrows")
    if source == "arrows":
        source = "columns"
        assert all(f.endswith(".arrows") for f in os.listdir(os.path.join(path, "columns",
                                                                         "Quote")))
    from fastfeed.record import iter_messages

    sent = [m.payload for m in iter_messages(path) if m.kind == 1]
    assert any(b'"AUTH"' in p for p in sent) and not any(b"sim-token" in p for p in sent)
    got_q = await replay_all(path, Quote, source=source)
    assert len(got_q) >= len(live_q)
    assert [key(e) for e in got_q[: len(live_q)]] == [key(e) for e in live_q]
    got_t = await replay_all(path, Trade, source=source)
    assert [key(e) for e in got_t[: len(live_t)]] == [key(e) for e in live_t]
    # symbol filter
    spy = await replay_all(path, Quote, source=source, symbols=["SPY"])
    assert spy and all(e.event_symbol == "SPY" for e in spy)
    assert [key(e) for e in spy] == [key(e) for e in got_q if e.event_symbol == "SPY"]
    # time filter
    mid = got_q[len(got_q) // 2].ts_recv
    late = await replay_all(path, Quote, source=source, start=mid)
    assert [key(e) for e in late] == [key(e) for e in got_q if e.ts_recv >= mid]


async def test_polygon_record_replay(tmp_path: Any) -> None:
    from fastfeed.polygon import AsyncStreamClient

    path = str(tmp_path / "pg")
    live: list[dict[str, Any]] = []
    done = asyncio.Event()

    def on_trade(msg: dict[str, Any]) -> None:
        live.append(msg)
        if len(live) >= 300:
            done.set()

    async with PolygonServer(cluster="stocks", api_key="k", rate=4000, events_per_frame=10,
                             close_after_frames=12, close_code=1012) as srv:
        client = AsyncStreamClient("k", "stocks", host=srv.url.rsplit("/", 1)[0])
        rec = client.record(path)
        await client.subscribe_stock_trades(["AAPL", "MSFT"], on_trade)
        await client.subscribe_stock_quotes(["AAPL"], on_trade)
        task = asyncio.ensure_future(client.handle_messages(reconnect=True,
                                                            reconnection_delay=0.05))
        await asyncio.wait_for(done.wait(), 30)
        assert client.n_reconnects >= 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close_stream()
        assert rec.stats["dropped_messages"] == 0

    for source in ("raw", "columns"):
        got: list[dict[str, Any]] = []
        replay = fastfeed.replay.open(path, source=source)
        await replay.subscribe_stock_trades(["AAPL", "MSFT"], got.append)
        await replay.subscribe_stock_quotes(["AAPL"], got.append)
        await asyncio.wait_for(replay.handle_messages(reconnect=True), 30)
        assert len(got) >= len(live)
        assert {m["ev"] for m in live} == {"T", "Q"}
        assert got[: len(live)] == live, source     # in wire order across T and Q
        only = []
        replay = fastfeed.replay.open(path, source=source)
        await replay.subscribe_stock_trades(["MSFT"], only.append)
        await asyncio.wait_for(replay.handle_messages(reconnect=True), 30)
        assert only == [m for m in got if m["sym"] == "MSFT" and m["ev"] == "T"]


async def test_parquet_reads_in_pandas_and_polars(tmp_path: Any) -> None:
    import glob

    import pandas as pd
    import polars as pl

    path = str(tmp_path / "rec")
    live_q, _t, _ = await record_dxlink(path, 100)
    files = sorted(glob.glob(os.path.join(path, "columns", "Quote", "*.parquet")))
    assert files
    df = pd.concat([pd.read_parquet(f) for f in files])
    cols = ["event_symbol", "ts_recv", "flags", "event_time", "bid_time", "ask_time",
            "bid_price", "ask_price", "bid_size", "ask_size", "sequence", "time_nano_part",
            "bid_exchange_code", "ask_exchange_code"]
    assert list(df.columns) == cols
    assert str(df["ts_recv"].dtype).startswith("datetime64[ns") and "UTC" in str(df["ts_recv"].dtype)
    assert str(df["event_time"].dtype).startswith("datetime64[ms")
    assert str(df["bid_price"].dtype) == "float64"
    assert isinstance(df["event_symbol"].dtype, pd.CategoricalDtype)
    first = live_q[0]
    row = df.iloc[: len(live_q)]
    assert list(row["event_symbol"].astype(str)) == [e.event_symbol for e in live_q]
    assert [repr(x) for x in row["bid_price"]] == [repr(e.bid_price) for e in live_q]
    assert int(row["ts_recv"].iloc[0].value) == first.ts_recv
    pdf = pl.read_parquet(files)
    assert pdf.columns == cols
    assert pdf.schema["ts_recv"] == pl.Datetime("ns", "UTC")
    assert pdf.schema["event_symbol"] in (pl.Categorical, pl.String)
    assert pdf["event_symbol"].cast(pl.String).to_list()[: len(live_q)] == [e.event_symbol for e in live_q]
    import duckdb

    glob_path = os.path.join(path, "columns", "Quote", "*.parquet")
    rel = duckdb.sql(f"SELECT event_symbol, bid_price, ts_recv, event_time FROM '{glob_path}'")
    assert rel.columns == ["event_symbol", "bid_price", "ts_recv", "event_time"]
    assert [str(t) for t in rel.types][2].startswith("TIMESTAMP")
    rows = rel.fetchall()
    assert [r[0] for r in rows[: len(live_q)]] == [e.event_symbol for e in live_q]


_CHILD = r'''
import asyncio, json, os, resource, sys
from fastfeed.dxfeed import Quote
from fastfeed.sim import DXLinkServer
from fastfeed.tastytrade import DXLinkStreamer

path, mode, compress = sys.argv[1], sys.argv[2], sys.argv[3]

class Session:
    def __init__(self, url):
        self.dxlink_url, self.streamer_token, self.proxy = url, "t", None

async def main():
    async with DXLinkServer(token="t", rate=20000, events_per_frame=20) as srv:
        s = DXLinkStreamer(Session(srv.url))
        rec = s.record(path, batch_rows=200, batch_seconds=0.05, flush_interval=0.05,
                       flush_events=200, parquet=False, level=1, raw_compress=compress)
        if mode == "fsize":    # the writer's files are capped: a full disk
            resource.prlimit(rec.writer_pid, resource.RLIMIT_FSIZE, (60_000, 60_000))
        it = s.listen(Quote)
        async with s:
            await s.subscribe(Quote, ["SPY", "AAPL", "MSFT"])
            n = 0
            async for _q in it:
                n += 1
                st = rec.stats
                if mode == "kill" and st["records_written"] >= 2000 and st["raw_written"] > 0:
                    print("READY", st["records_written"], rec.writer_pid, flush=True)
                    await asyncio.sleep(3600)
                if mode == "fsize" and st["errors"] > 0 and n >= 20000:
                    break
        print(json.dumps({"events": n, **rec.stats}), flush=True)

asyncio.run(main())
'''


def _spawn(path: str, mode: str, compress: str = "roll") -> Any:
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, "-c", _CHILD, path, mode, compress], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_exit(pid: int, timeout: float) -> None:
    """Wait (bounded) for process ``pid`` (not our child) to end."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"process {pid} still running after {timeout} s"
    finally:
        os.close(fd)


@pytest.mark.parametrize("killed", ["feed", "feed+writer"])
async def test_killed_recording_readable_up_to_last_batch(tmp_path: Any, killed: str) -> None:
    """SIGKILL of the feed process: its writer process writes what it was handed and closes
    the segments. SIGKILL of both (a crash of the machine's processes): every segment is
    readable up to its last complete batch / block."""
    import signal

    from fastfeed.record import iter_messages, read_columns

    path = str(tmp_path / "killed")
    proc = _spawn(path, "kill")
    writer_pid = 0
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 40)
        assert line.startswith("READY"), line or proc.stderr.read()
        written, writer_pid = int(line.split()[1]), int(line.split()[2])
        if killed == "feed+writer":
            os.kill(writer_pid, signal.SIGKILL)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if writer_pid:
            await asyncio.to_thread(_wait_exit, writer_pid, 30)
    table = read_columns(path, "Quote")
    assert table is not None and table.num_rows >= written
    msgs = list(iter_messages(os.path.join(path)))
    assert any(m.kind == 0 for m in msgs) and any(m.kind == 1 for m in msgs)
    # raw_compress="roll": a killed writer leaves its open segment uncompressed; one that
    # outlived the feed closed and compressed it
    seg = await asyncio.to_thread(Path(path, "raw", "raw-000001.ffraw").read_bytes)
    assert (b"FFBA" in seg or b"FFB0" in seg) == (killed == "feed+writer")
    cols = await replay_all(path, Quote, source="columns")
    raw = await replay_all(path, Quote, source="raw")
    assert len(cols) == table.num_rows >= written and len(raw) >= 1
    # the records written before the kill are those of the raw capture (cut at its own point)
    n = min(len(cols), len(raw))
    assert n > 0 and [key(e) for e in cols[:n]] == [key(e) for e in raw[:n]]


@pytest.mark.parametrize("compress", ["roll", "inline"])
async def test_full_disk_is_counted_not_fatal(tmp_path: Any, compress: str) -> None:
    import json

    from fastfeed.record import iter_messages

    path = str(tmp_path / "full")
    proc = _spawn(path, "fsize", compress)
    out, err = await asyncio.wait_for(asyncio.to_thread(proc.communicate), 50)
    assert proc.returncode == 0, err[-2000:]
    st = json.loads(out.strip().splitlines()[-1])
    assert st["events"] >= 20000                   # the feed went on
    assert st["errors"] > 0
    assert st["dropped_messages"] + st["dropped_records"] > 0
    assert "not recorded" in err
    msgs = list(iter_messages(path))           # what was written reads back
    assert len(msgs) >= st["raw_written"]


@pytest.mark.parametrize("flag", [None, "inline"])
def test_record_cli_raw_compress(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                 flag: str | None) -> None:
    """``python -m fastfeed.record dxlink ... --raw-compress`` reaches the recorder (default
    ``roll``), and the recording it makes reads back."""
    from fastfeed.record import iter_messages
    from fastfeed.record.__main__ import main

    seen: dict[str, Any] = {}
    record = DXLinkStreamer.record

    def spy(self: Any, path: str, **kw: Any) -> Any:
        seen.update(kw)
        return record(self, path, **kw)

    monkeypatch.setattr(DXLinkStreamer, "record", spy)
    out = str(tmp_path / "rec")
    argv = ["dxlink", "sim", out, "--subscribe", "Quote:SPY", "--duration", "0.5", "--no-columns"]
    assert main(argv + (["--raw-compress", flag] if flag else [])) == 0
    assert seen["raw_compress"] == (flag or "roll")
    assert any(m.kind == 1 for m in iter_messages(out))   # the client's own messages at least


def test_import_jsonl_transcript(tmp_path: Any) -> None:
    import glob

    from fastfeed.record import import_jsonl, iter_messages

    src = sorted(glob.glob("/work/shared/fixtures/tastytrade-client/*reconnect.jsonl"))
    if not src:
        src = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                            "tastytrade-client", "*reconnect.jsonl")))
    assert src
    counts = import_jsonl(src[0], tmp_path / "imp")
    assert counts["recv"] > 0 and counts["sent"] > 0
    msgs = list(iter_messages(str(tmp_path / "imp")))
    assert sum(m.kind == 1 for m in msgs) == counts["sent"]
    got = asyncio.run(replay_all(str(tmp_path / "imp"), Quote, source="raw"))
    assert got, "the transcript's FEED_DATA decodes to Quotes"


async def test_account_streamer_raw_capture_without_secrets(tmp_path: Any) -> None:
    from fastfeed.record import iter_messages
    from fastfeed.sim import AccountStreamerServer
    from fastfeed.tastytrade import AlertStreamer

    class AccountSession:
        is_test = False
        proxy = None
        client_kwargs: ClassVar[dict[str, Any]] = {}
        session_token = "s3cr3t-session"

        async def refresh(self, force: bool = False) -> None:
            return None

    path = str(tmp_path / "acct")
    async with AccountStreamerServer(token="s3cr3t-session", script="default") as srv:
        st = AlertStreamer(AccountSession(), url=srv.url, heartbeat_interval=0.05)
        rec = st.record(path, columns=False)
        await st.start()
        try:
            await st.subscribe_accounts(["5WT00000"])
            from fastfeed.alerts import PlacedOrder

            it = st.listen(PlacedOrder)
            await asyncio.wait_for(anext(it), 10)
        finally:
            await st.close()
        assert rec.stats["raw_written"] > 0
    msgs = list(iter_messages(path))
    sent = [m.payload for m in msgs if m.kind == 1]
    assert any(b'"connect"' in p for p in sent)
    assert not any(b"s3cr3t" in m.payload for m in msgs)
    assert any(m.kind == 0 for m in msgs)


async def test_replay_api_get_event_latest_batches_and_pacing(tmp_path: Any) -> None:
    import time

    path = str(tmp_path / "rec")
    live_q, _t, _ = await record_dxlink(path, 200)
    # get_event / latest / listen_batches, as on a live streamer
    s = fastfeed.replay.open(path, source="columns")
    async with s:
        await s.subscribe(Quote, ["SPY", "AAPL"])
        batches = s.listen_batches(Quote)       # its cursor sees everything from now on
        first = await s.get_event(Quote)
        assert key(first) == key(live_q[0])
        n = 0
        async for batch in batches:
            n += len(batch)
        latest = s.latest(Quote, live_q[-1].event_symbol)
        assert latest is not None and latest.event_symbol == live_q[-1].event_symbol
        assert s.stats["events"] >= len(live_q)
        rest = 0
        while s.get_event_nowait(Quote) is not None:   # what the shared cursor still holds
            rest += 1
        assert rest + 1 == n
        from fastfeed.errors import ConnectionClosedOK, StreamerClosedError

        with pytest.raises(ConnectionClosedOK):        # closed at the end of the recording
            await s.get_event(Quote)
    with pytest.raises(StreamerClosedError):           # and closed for good by the user
        await s.get_event(Quote)
    # paced: never faster than the recorded span / speed
    got = await replay_all(path, Quote, source="raw")
    span = (got[-1].ts_recv - got[0].ts_recv) / 1e9
    t0 = time.monotonic()
    again = await replay_all(path, Quote, source="raw", speed=4.0)
    assert time.monotonic() - t0 >= span / 4.0 * 0.9
    assert [key(e) for e in again] == [key(e) for e in got]


async def test_polygon_spilled_values_replay_from_columns(tmp_path: Any) -> None:
    """Values that do not fit a record's slots (ids longer than 32 bytes, keys fastfeed does
    not know, condition lists longer than 8) are recorded and replayed exactly, from the
    columns as from the raw capture (independent plain-websockets server)."""
    import glob

    import orjson
    import pyarrow.parquet as pq
    import websockets

    from fastfeed.polygon import AsyncStreamClient

    n_events = 60

    def trade(q: int) -> dict[str, Any]:
        ev: dict[str, Any] = {"ev": "T", "sym": "AAPL" if q % 3 else "MSFT", "x": 4,
                              "i": str(q), "z": 3, "p": 100.5 + q / 100, "s": 100,
                              "t": 1767312000000 + q, "q": q}
        if q % 2:
            ev["i"] = f"trade-id-{q:06d}-" + "x" * (30 + q % 7)      # > 32 bytes
        if q % 3 == 1:
            ev["zz_unknown"] = {"nested": [q, "a\u00e9", None], "flag": True}
        if q % 5 == 2:
            ev["c"] = list(range(1, 12 + q % 4))                       # > 8 conditions
        return ev

    async def handler(ws: Any) -> None:
        def status(s: str, m: str) -> str:
            return orjson.dumps([{"ev": "status", "status": s, "message": m}]).decode()

        await ws.send(status("connected", "Connected Successfully"))
        await ws.recv()
        await ws.send(status("auth_success", "authenticated"))
        sub = orjson.loads(await ws.recv())
        for ch in sub["params"].split(","):
            await ws.send(status("success", f"subscribed to: {ch}"))
        for k in range(0, n_events, 6):
            await ws.send(orjson.dumps([trade(k + j) for j in range(6)]).decode())
        await ws.wait_closed()

    path = str(tmp_path / "spill")
    live: list[dict[str, Any]] = []
    done = asyncio.Event()

    def on_trade(msg: dict[str, Any]) -> None:
        live.append(msg)
        if len(live) >= n_events:
            done.set()

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = AsyncStreamClient("k", "stocks", host=f"ws://127.0.0.1:{port}")
        rec = client.record(path)
        await client.subscribe_stock_trades(["AAPL", "MSFT"], on_trade)
        task = asyncio.ensure_future(client.handle_messages(reconnect=False))
        await asyncio.wait_for(done.wait(), 30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close_stream()
        assert rec.stats["dropped_records"] == 0

    # what was delivered live holds the values whole (the feature under test needs them)
    assert len(live) == n_events
    assert live[1]["i"] == trade(1)["i"] and len(live[1]["i"]) > 32
    assert live[1]["zz_unknown"] == trade(1)["zz_unknown"]
    assert live[2]["c"] == trade(2)["c"]
    # the columns carry each record's spilled bytes (empty when none)
    files = sorted(glob.glob(os.path.join(path, "columns", "T", "*.parquet")))
    assert files
    col = pq.read_table(files).column("spill").to_pylist()
    assert len(col) == n_events
    assert col[0] == b"" and all(col[q] for q in range(n_events) if q % 2)
    for source in ("columns", "raw"):
        got: list[dict[str, Any]] = []
        replay = fastfeed.replay.open(path, source=source)
        await replay.subscribe_stock_trades(["AAPL", "MSFT"], got.append)
        await asyncio.wait_for(replay.handle_messages(reconnect=True), 30)
        assert got == live, source
        # and as event objects, through listen_batches / latest
        replay = fastfeed.replay.open(path, source=source)
        from fastfeed.polygon_events import EquityTrade

        seen: list[dict[str, Any]] = []
        async with replay:
            await replay.subscribe_stock_trades(["AAPL", "MSFT"])
            async for batch in replay.listen_batches(EquityTrade):
                seen.extend(ev.to_dict() for ev in batch)
            last = replay.latest(EquityTrade, "MSFT")
        assert [d["i"] for d in seen] == [m["i"] for m in live], source
        assert [d.get("zz_unknown") for d in seen] == [m.get("zz_unknown") for m in live]
        assert last is not None
        assert last.to_dict() == [d for d in seen if d["sym"] == "MSFT"][-1]


async def test_stalled_writer_every_record_is_written_or_counted(tmp_path: Any) -> None:
    """A writer that cannot keep up (stopped with SIGSTOP while the feed runs flat out): the
    feed goes on, and every record the streamer decoded is either in the recording or counted
    as not recorded -- also those still in the rings when recording stops."""
    import signal

    from fastfeed.record import read_columns

    path = str(tmp_path / "stalled")
    async with DXLinkServer(token="sim-token", rate=None, events_per_frame=100) as srv:
        s = DXLinkStreamer(Session(srv.url))
        rec = s.record(path, max_buffer_bytes=256 * 1024, flush_events=500,
                       flush_interval=0.02, parquet=False)
        assert rec.sync()
        os.kill(rec.writer_pid, signal.SIGSTOP)
        n = 0
        it = s.listen_batches(Quote)
        async with s:
            try:
                await s.subscribe(Quote, ["SPY", "AAPL"])
                async for batch in it:
                    n += len(batch)
                    if n >= 150_000:        # > the ring (65536 Quotes) + the arena's slots
                        break
                st = rec.stats
            finally:
                os.kill(rec.writer_pid, signal.SIGCONT)
        assert st["dropped_records"] > 0 and st["dropped_messages"] > 0
    st = rec.stats
    published = s._core.rings["Quote"].published
    assert published >= n
    assert st["records_written"] + st["dropped_records"] == published
    assert st["errors"] == 0
    table = read_columns(path, "Quote")
    assert table.num_rows == st["records_written"]
