"""Smoke test of an installed fastfeed (run by .ci/run from outside the checkout, in a venv
where only the wheel and its dependencies are installed: no numpy, no test extra)."""

from __future__ import annotations

import sys
from pathlib import Path

import fastfeed
from fastfeed.dxfeed import Quote

checkout = Path(__file__).resolve().parents[1]
where = Path(fastfeed.__file__).resolve()
assert where.parent != checkout / "fastfeed" and "site-packages" in where.parts, (
    f"imported the checkout, not the install: {where}")

dec = fastfeed.DXLinkDecoder()
dec.feed(b'{"type":"FEED_DATA","channel":7,"data":["Quote",'
         b'["SPY",0,0,0,0,"Q",0,"Q",1.5,1.6,"NaN",10.0]]}')
quote = dec.drain(Quote)[0]
assert (quote.event_symbol, quote.bid_price, quote.ask_price) == ("SPY", 1.5, 1.6), quote

pg = fastfeed.PolygonDecoder(cluster="stocks")
pg.feed(b'[{"ev":"T","sym":"AAPL","p":214.29,"s":5,"t":1718901234569}]')
trade = pg.drain("T")[0]
assert trade.to_dict() == {"ev": "T", "sym": "AAPL", "p": 214.29, "s": 5, "t": 1718901234569}

for test_only in ("_testcore", "_cscan"):
    try:
        __import__(f"fastfeed._native.{test_only}")
    except ImportError:
        pass
    else:
        raise AssertionError(f"test-only module fastfeed._native.{test_only} is installed")

try:
    import numpy  # noqa: F401
except ImportError:  # the wheel alone: to_numpy() must name the extra
    dec.feed(b'{"type":"FEED_DATA","channel":7,"data":["Quote",["SPY",0,0,0,0,"Q",0,"Q",1,2,3,4]]}')
    batch = dec.drain(Quote)
    message = ""
    try:
        batch.to_numpy()
    except ImportError as exc:
        message = str(exc)
    assert "pip install 'fastfeed[numpy]'" in message, f"to_numpy() without numpy: {message!r}"

print(f"smoke test OK: fastfeed {fastfeed.__version__} from {where.parent} "
      f"on Python {sys.version.split()[0]}")
