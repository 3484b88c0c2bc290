"""``python -m fastfeed.hub``: run a hub.

    FASTFEED_DXLINK_URL=wss://... FASTFEED_DXLINK_TOKEN=... python -m fastfeed.hub --name main

Flags (or ``--config FILE``, a JSON object with the same keys, flags win): ``--name`` (the
hub's name: consumers connect to ``ipc://NAME``), ``--feeds`` (comma-separated, default
``dxlink``), ``--overflow`` (``drop_oldest`` | ``backpressure``), ``--buffer`` (samples a
consumer may lag before drop-oldest recycles its oldest), ``--max-consumers``, ``--nats nats://HOST:PORT`` (also publish over NATS, for other machines:
consumers connect to ``nats://HOST:PORT/NAME``), ``--record DIR`` (record every upstream
into ``DIR/FEED``, see :mod:`fastfeed.record`) with ``--record-layers`` (``raw,columns``).

Credentials come from the environment only (never the command line, never logged, never
published): ``FASTFEED_DXLINK_URL`` and ``FASTFEED_DXLINK_TOKEN`` (a DXLink quote token).
The hub prints ``ready ipc://NAME`` on stdout once it serves, and stops on SIGINT / SIGTERM
(exit code 0), or when an upstream fails for good, e.g. a refused token (its consumers get the
error; exit code 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from types import SimpleNamespace
from typing import Any

from fastfeed.hub._server import Hub
from fastfeed.hub._shm import ShmSettings


def _upstream(feed: str) -> Any:
    if feed == "dxlink":
        from fastfeed.tastytrade import DXLinkStreamer

        url = os.environ.get("FASTFEED_DXLINK_URL")
        token = os.environ.get("FASTFEED_DXLINK_TOKEN")
        if not url or token is None:
            raise SystemExit("fastfeed.hub: set FASTFEED_DXLINK_URL and FASTFEED_DXLINK_TOKEN "
                             "in the environment for the dxlink feed")
        return DXLinkStreamer(SimpleNamespace(dxlink_url=url, streamer_token=token))
    raise SystemExit(f"fastfeed.hub: feed {feed!r} is not supported yet (dxlink is)")


def parse_args(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m fastfeed.hub", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="JSON file with the options below")
    p.add_argument("--name")
    p.add_argument("--feeds")
    p.add_argument("--overflow", choices=["drop_oldest", "backpressure"])
    p.add_argument("--buffer", type=int)
    p.add_argument("--max-consumers", type=int, dest="max_consumers")
    p.add_argument("--nats", help="also publish to this NATS server (nats://HOST:PORT)")
    p.add_argument("--nats-lease", type=float, dest="nats_lease",
                   help="seconds after which a silent NATS consumer is dropped (default 5)")
    p.add_argument("--record", help="record every upstream into DIR/FEED (fastfeed.record)")
    p.add_argument("--record-layers", dest="record_layers",
                   help="what to record: raw, columns or raw,columns (default)")
    ns = p.parse_args(argv)
    opts: dict[str, Any] = {"name": "main", "feeds": "dxlink", "overflow": "drop_oldest",
                            "buffer": 256, "max_consumers": 16}
    if ns.config:
        with open(ns.config) as fh:
            opts.update(json.load(fh))
    opts.update({k: v for k, v in vars(ns).items() if v is not None and k != "config"})
    return opts


async def serve(opts: dict[str, Any]) -> None:
    feeds = [f.strip() for f in str(opts["feeds"]).split(",") if f.strip()]
    settings = ShmSettings(opts["overflow"], opts["buffer"], opts["max_consumers"])
    upstreams = {f: _upstream(f) for f in feeds}
    recorders: list[Any] = []
    if opts.get("record"):
        from fastfeed.record import LAYERS, record_streamers

        recorders = record_streamers(upstreams, opts["record"],
                                     opts.get("record_layers") or LAYERS)
    hub = Hub(str(opts["name"]), upstreams,
              dict.fromkeys(feeds, settings), nats_url=opts.get("nats"), nats_lease=opts.get("nats_lease"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with hub:
        print(f"ready {hub.url}", flush=True)
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(hub.done.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    for rec in recorders:      # (an upstream never started is not closed by the hub)
        await rec.aclose()
    print(f"fastfeed.hub {hub.url} stopped: {json.dumps(hub.stats)}", file=sys.stderr, flush=True)
    if hub.error is not None:
        raise SystemExit(f"fastfeed.hub {hub.url}: upstream failed: {hub.error}")


def main(argv: list[str] | None = None) -> int:
    import uvloop

    uvloop.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
