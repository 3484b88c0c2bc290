"""``python -m fastfeed.record``: record a feed, import a transcript, describe a recording.

::

    python -m fastfeed.record dxlink wss://... rec/ --subscribe Quote:SPY,AAPL --subscribe Trade:SPY
    python -m fastfeed.record polygon wss://socket.polygon.io/stocks rec/ --subscribe T:AAPL
    python -m fastfeed.record dxlink sim rec/ --subscribe Quote:SPY --duration 10   # fastfeed.sim
    python -m fastfeed.record hub ipc://main rec/ --subscribe Quote:SPY   # a hub consumer's view
    python -m fastfeed.record import transcript.jsonl rec/ [--feed dxlink] [--conn 1]
    python -m fastfeed.record info rec/

The DXLink token comes from ``--token`` or ``$FASTFEED_DXLINK_TOKEN``, the polygon key from
``--api-key`` or ``$POLYGON_API_KEY`` (never printed). Recording stops on Ctrl-C / SIGTERM or
after ``--duration`` seconds; the files are then closed (and the columns compacted to Parquet).
``hub`` records the columns of what a consumer of a running ``python -m fastfeed.hub``
receives (``ipc://NAME`` or ``nats://HOST:PORT/NAME``); the hub itself records its upstream
connections, raw and columns, with ``python -m fastfeed.hub --record DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any


def _subs(items: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for item in items:
        etype, _, syms = item.partition(":")
        if not etype or not syms:
            raise SystemExit(f"--subscribe {item!r}: expected TYPE:SYM1,SYM2")
        out.append((etype, [s for s in syms.split(",") if s]))
    return out


async def _record(a: argparse.Namespace) -> int:
    import contextlib

    stack = contextlib.AsyncExitStack()
    async with stack:
        url = a.url
        if url == "sim":
            from fastfeed import sim

            srv: Any = (sim.DXLinkServer(token=None) if a.feed == "dxlink"
                        else sim.PolygonServer(cluster=a.cluster, api_key=None))
            await stack.enter_async_context(srv)
            url = srv.url
        opts: dict[str, Any] = {"raw": not a.no_raw, "columns": not a.no_columns,
                                "roll_bytes": int(a.roll_mb * 1024 * 1024),
                                "roll_seconds": a.roll_seconds}
        if a.feed != "hub":
            opts["raw_compress"] = a.raw_compress
        if a.feed == "hub":
            import fastfeed.hub
            from fastfeed.record import Recorder

            streamer: Any = fastfeed.hub.connect(url)
            await stack.enter_async_context(streamer)
            rec = Recorder(streamer, a.out, **dict(opts, raw=False))
            stack.push_async_callback(rec.aclose)        # before the streamer closes
            for etype, syms in _subs(a.subscribe):
                await streamer.subscribe(etype, syms)
        elif a.feed == "dxlink":
            from fastfeed.tastytrade import DXLinkStreamer

            class _Session:
                dxlink_url = url
                streamer_token = a.token or os.environ.get("FASTFEED_DXLINK_TOKEN") or "token"
                proxy = None

            streamer = DXLinkStreamer(_Session())
            rec = streamer.record(a.out, **opts)
            await stack.enter_async_context(streamer)
            for etype, syms in _subs(a.subscribe):
                await streamer.subscribe(etype, syms)
        else:
            from fastfeed.polygon import AsyncStreamClient

            base, _, cluster = url.rstrip("/").rpartition("/")
            key = a.api_key or os.environ.get("POLYGON_API_KEY") or "key"
            streamer = AsyncStreamClient(key, cluster, host=base)
            rec = streamer.record(a.out, **opts)

            def drop(_batch: Any) -> None:
                return None

            await streamer.change_handler("status", drop)     # (the default handler prints)
            for ev, syms in _subs(a.subscribe):
                await streamer.change_handler(ev, drop, deliver="batch")
                await streamer._modify_sub(syms, "subscribe", ev + ".")
            task = asyncio.ensure_future(streamer.handle_messages(reconnect=True))
            stack.push_async_callback(streamer.close_stream)
            stack.callback(task.cancel)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        print(f"recording {a.feed} into {a.out} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(stop.wait(), a.duration)
        except TimeoutError:
            pass
    print(json.dumps(rec.stats), file=sys.stderr)
    return 0


def _info(path: str) -> int:
    from fastfeed.record import column_segments, column_types, iter_messages, read_meta

    meta = read_meta(path)
    counts = {"recv": 0, "sent": 0, "note": 0}
    for m in iter_messages(path):
        counts[("recv", "sent", "note")[m.kind] if m.kind < 3 else "note"] += 1
    print(json.dumps({"meta": meta, "raw_messages": counts,
                      "columns": {t: len(column_segments(path, t)) for t in column_types(path)}},
                     indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fastfeed.record",
                                 description="record a feed / import a transcript / describe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for feed in ("dxlink", "polygon"):
        p = sub.add_parser(feed, help=f"record a {feed} feed")
        p.add_argument("url", help="websocket URL, or 'sim' for a local fastfeed.sim server")
        p.add_argument("out", help="recording directory")
        p.add_argument("--subscribe", action="append", default=[],
                       help="TYPE:SYM1,SYM2 (DXLink event type / polygon ev code); repeatable")
        p.add_argument("--token", help="DXLink token (default $FASTFEED_DXLINK_TOKEN)")
        p.add_argument("--api-key", help="polygon key (default $POLYGON_API_KEY)")
        p.add_argument("--cluster", default="stocks", help="cluster of the 'sim' polygon server")
        p.add_argument("--duration", type=float, default=None, help="seconds (default: until "
                       "Ctrl-C)")
        p.add_argument("--no-raw", action="store_true")
        p.add_argument("--no-columns", action="store_true")
        p.add_argument("--roll-mb", type=float, default=256.0)
        p.add_argument("--roll-seconds", type=float, default=3600.0)
        p.add_argument("--raw-compress", choices=("roll", "inline"), default="roll",
                       help="zstd of the raw capture: each closed segment in the background "
                       "(roll, the default) or each block as it is written (inline)")
        p.set_defaults(feed=feed)
    p = sub.add_parser("hub", help="record the columns a consumer of a fastfeed hub receives")
    p.add_argument("url", help="the hub: ipc://NAME or nats://HOST:PORT/NAME")
    p.add_argument("out", help="recording directory")
    p.add_argument("--subscribe", action="append", default=[],
                   help="TYPE:SYM1,SYM2 (DXLink event type); repeatable")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until "
                   "Ctrl-C)")
    p.add_argument("--roll-mb", type=float, default=256.0)
    p.add_argument("--roll-seconds", type=float, default=3600.0)
    p.set_defaults(feed="hub", no_raw=True, no_columns=False)
    p = sub.add_parser("import", help="import a JSON-lines transcript of both directions")
    p.add_argument("transcript")
    p.add_argument("out")
    p.add_argument("--feed", choices=("dxlink", "polygon"), default=None)
    p.add_argument("--cluster", default=None)
    p.add_argument("--conn", type=int, action="append", default=None,
                   help="only this connection number (repeatable)")
    p = sub.add_parser("info", help="describe a recording")
    p.add_argument("path")
    a = ap.parse_args(argv)
    if a.cmd == "import":
        from fastfeed.record import import_jsonl

        print(json.dumps(import_jsonl(a.transcript, a.out, feed=a.feed, cluster=a.cluster,
                                      conns=a.conn)))
        return 0
    if a.cmd == "info":
        return _info(a.path)
    try:
        import uvloop

        return int(uvloop.run(_record(a)))
    except ImportError:
        return asyncio.run(_record(a))


if __name__ == "__main__":
    raise SystemExit(main())
