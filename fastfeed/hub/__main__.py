"""``python -m fastfeed.hub``: run a hub.

    FASTFEED_DXLINK_URL=wss://... FASTFEED_DXLINK_TOKEN=... python -m fastfeed.hub --name main

Flags (or ``--config FILE``, a JSON object with the same keys, flags win): ``--name`` (the
hub's name: consumers connect to ``ipc://NAME``), ``--feeds`` (comma-separated, default
``dxlink``; also the polygon clusters ``stocks``, ``options``, ``forex``, ``crypto``,
``indices``, ``futures``, and ``account``, which needs ``--nats``: JetStream), ``--overflow``
(``drop_oldest`` | ``backpressure``), ``--buffer`` (samples a consumer may lag before
drop-oldest recycles its oldest), ``--max-consumers``, ``--nats nats://HOST:PORT`` (also
publish over NATS, for other machines: consumers connect to ``nats://HOST:PORT/NAME``),
``--idle-spin-us`` (the upstream streamers' idle spin, default 0), ``--account-hold`` (account notifications held while JetStream does not store them, before
the hub stops reading the account socket), ``--record DIR`` (record every record feed's
upstream into ``DIR/FEED``, see :mod:`fastfeed.record`) with ``--record-layers``
(``raw,columns``).

Credentials come from the environment only (never the command line, never logged, never
published): ``FASTFEED_DXLINK_URL`` and ``FASTFEED_DXLINK_TOKEN`` (a DXLink quote token);
``FASTFEED_POLYGON_KEY`` (and ``FASTFEED_POLYGON_HOST``, default ``socket.polygon.io``);
``FASTFEED_ACCOUNT_TOKEN`` (a tastytrade session token; ``FASTFEED_ACCOUNT_URL``, default
tastytrade's streamer). See ``fastfeed.hub._upstreams``.
The hub prints ``ready ipc://NAME`` on stdout once it serves, and stops on SIGINT / SIGTERM
(exit code 0), or when an upstream fails for good, e.g. a refused token (its consumers get the
error; exit code 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from fastfeed.hub._server import Hub
from fastfeed.hub._shm import ShmSettings
from fastfeed.hub._upstreams import upstream_for


def parse_args(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m fastfeed.hub", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="JSON file with the options below")
    p.add_argument("--name")
    p.add_argument("--feeds")
    p.add_argument("--overflow", choices=["drop_oldest", "backpressure"])
    p.add_argument("--buffer", type=int)
    p.add_argument("--max-consumers", type=int, dest="max_consumers")
    p.add_argument("--nats", help="also publish to this NATS server (nats://HOST:PORT)")
    p.add_argument("--account-hold", type=int, dest="account_hold",
                   help="account notifications the hub holds while JetStream does not store "
                        "them before it stops reading the account socket (default 10000)")
    p.add_argument("--nats-lease", type=float, dest="nats_lease",
                   help="seconds after which a silent NATS consumer is dropped (default 5)")
    p.add_argument("--idle-spin-us", type=float, dest="idle_spin_us",
                   help="microseconds the upstream connections keep polling after data before "
                        "the hub sleeps in epoll (default 0: see fastfeed.hub._upstreams)")
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
    if "account" in feeds and not opts.get("nats"):
        raise SystemExit("fastfeed.hub: the account feed needs --nats nats://HOST:PORT "
                         "(a NATS server with JetStream)")
    upstreams = {f: upstream_for(f, opts) for f in feeds}
    recorders: list[Any] = []
    if opts.get("record"):
        from fastfeed.record import LAYERS, record_streamers

        # the record feeds (the account stream is kept by JetStream)
        recorders = record_streamers({f: u for f, u in upstreams.items() if f != "account"},
                                     opts["record"], opts.get("record_layers") or LAYERS)
    hub = Hub(str(opts["name"]), upstreams, dict.fromkeys(feeds, settings),
              nats_url=opts.get("nats"), nats_lease=opts.get("nats_lease"))
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
