"""``python -m fastfeed.sim {dxlink,polygon,account} [options]`` — run a simulator until Ctrl-C.

Binds 127.0.0.1, prints the URL as the first stdout line, runs until SIGINT / SIGTERM, exits 0.
Any constructor option can be given with ``--set key=value`` (value parsed as JSON when it can
be, e.g. ``--set rate=null --set events_per_frame=100``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._base import SimServer, parse_options, run_until_signal


def _rate(text: str) -> float | None:
    if text.lower() in ("max", "none", "null", "flat", "flat-out", "inf"):
        return None
    return float(text)


def _parser(kind: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m fastfeed.sim {kind}")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    p.add_argument("--rate", type=_rate, default=argparse.SUPPRESS,
                   help="events/s per connection, or 'max' for flat-out")
    p.add_argument("--events-per-frame", type=int, default=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS)
    p.add_argument("--stamp-send-time", action="store_true", default=argparse.SUPPRESS)
    p.add_argument("--no-record", dest="record", action="store_false", default=False,
                   help="(default) do not keep a transcript")
    p.add_argument("--record", dest="record", action="store_true")
    p.add_argument("--close-after-frames", type=int, default=argparse.SUPPRESS)
    p.add_argument("--close-code", type=int, default=argparse.SUPPRESS)
    p.add_argument("--drop-after-frames", type=int, default=argparse.SUPPRESS)
    p.add_argument("--stall-after-frames", type=int, default=argparse.SUPPRESS)
    p.add_argument("--malformed-every", type=int, default=argparse.SUPPRESS)
    p.add_argument("--reject-first", type=int, default=argparse.SUPPRESS)
    p.add_argument("--set", dest="opts", action="append", default=[], metavar="KEY=VALUE",
                   help="any constructor option (JSON value)")
    p.add_argument("--no-uvloop", action="store_true")
    if kind == "dxlink":
        p.add_argument("--token", default=argparse.SUPPRESS,
                       help="required quote token ('none' = no auth)")
        p.add_argument("--keepalive-timeout", type=float, default=argparse.SUPPRESS)
        p.add_argument("--strict-order", action="store_true", default=argparse.SUPPRESS)
        p.add_argument("--full-format", action="store_true", default=argparse.SUPPRESS)
    elif kind == "polygon":
        p.add_argument("--cluster", default=argparse.SUPPRESS)
        p.add_argument("--api-key", default=argparse.SUPPRESS)
        p.add_argument("--max-connections", type=int, default=argparse.SUPPRESS)
        p.add_argument("--auth-timeout", type=float, default=argparse.SUPPRESS)
    return p


def _make(kind: str, options: dict[str, Any]) -> SimServer:
    if kind == "dxlink":
        from fastfeed.dxlink.sim import DXLinkServer

        if options.get("token") in ("none", "None", ""):
            options["token"] = None
        return DXLinkServer(**options)
    from fastfeed.polygon.sim import PolygonServer

    return PolygonServer(**options)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    kinds = ("dxlink", "polygon", "account")
    if not argv or argv[0] not in kinds:
        asked = bool(argv) and argv[0] in ("-h", "--help")
        print(f"usage: python -m fastfeed.sim {{{','.join(kinds)}}} [--port N] [options]\n"
              f"       python -m fastfeed.sim KIND --help",
              file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    kind, rest = argv[0], argv[1:]
    if kind == "account":
        from fastfeed.account.sim import main as account_main

        return int(account_main(rest) or 0)
    ns = _parser(kind).parse_args(rest)
    options = {k: v for k, v in vars(ns).items() if k not in ("opts", "no_uvloop")}
    options.update(parse_options(ns.opts))
    server = _make(kind, options)
    return run_until_signal(
        server, not ns.no_uvloop,
        lambda srv: f"stopped: {srv.connections_total} connections, {srv.frames_sent} data "
                    f"frames, {srv.events_sent} events")

if __name__ == "__main__":
    sys.exit(main())
