"""Fuzz target for fastfeed.DXLinkDecoder / DXLinkSession.

Uses atheris when it is importable (``python fuzz/fuzz_dxlink.py -max_total_time=30``), else a
bounded hypothesis run (``python fuzz/fuzz_dxlink.py --seconds 30``). Build with
``FASTFEED_SANITIZE=1`` to run under ASan/UBSan (then preload libasan as usual).

Every input must either decode or raise ``fastfeed.ProtocolError``; the decoder must stay usable
(a known-good message decodes right after), and every published record must be a complete event.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import fastfeed
from fastfeed import ProtocolError
from fastfeed._native.dxlink import DX_TYPES

_expect = os.environ.get("FASTFEED_FUZZ_EXPECT")
if _expect and not Path(fastfeed.__file__).resolve().is_relative_to(Path(_expect).resolve()):
    sys.exit(f"fuzz_dxlink: fastfeed imported from {fastfeed.__file__}, not from {_expect}")

GOOD = (b'{"type":"FEED_DATA","channel":7,"data":["Quote",["SPY",0,0,0,0,"Q",0,"Q",1.5,2.5,3.0,4.0]]}')
SEEDS = [
    GOOD,
    b'{"type":"FEED_DATA","channel":1,"data":["Trade",["A",1,2,3,4,"\\u0000",5,"UP",true,1.5,"NaN",100,1.3743299E7,4.8E-12]]}',
    b'{"type":"FEED_DATA","channel":1,"data":[{"eventType":"Profile","eventSymbol":"X","description":null,"tradingStatus":"HALTED"}]}',
    b'{"type":"FEED_CONFIG","channel":7,"dataFormat":"COMPACT","aggregationPeriod":0.1,"eventFields":{"Quote":["eventType","eventSymbol","bidPrice","unknown"]}}',
    b'{"type":"FEED_DATA","channel":7,"data":["Quote",["Quote","SPY",1.5,{"x":[1]},"Quote","SPX","Infinity",null]]}',
    b'{"type":"FEED_DATA","channel":3,"data":["Greeks",[".S",0,0,7235129486797176832,0,0,1,2,3,4,5,6,7],"Candle",["S{=5m}",0,0,1,2,0,1,2,3,4,5,6,7,8,9,10,11]]}',
    b'{"type":"AUTH_STATE","channel":0,"state":"UNAUTHORIZED"}',
    b'{"type":"CHANNEL_OPENED","channel":7,"service":"FEED","parameters":{}}',
    b'{"type":"FEED_SETUP","channel":3,"acceptEventFields":{"Trade":["eventType","eventSymbol","price","size"]}}',
    b'{"type":"FEED_CONFIG","channel":3,"dataFormat":"COMPACT","aggregationPeriod":0.1}',
    b'{"type":"FEED_DATA","channel":3,"data":["Trade",["Trade","SPY",559.36,100.0,"Trade","X","bad","NaN"]]}',
    b'{"type":"FEED_DATA","channel":9,"data":["Order",["A",1,2,3,4,5,6,"NTV","NEWER",7,8,9,1.5,1.0,0.0,3,"Q","BUY","ORDER",0,1,1,"MM"]]}',
    b'{"type":"CHANNEL_OPENED","channel":5,"service":"DOM","parameters":{"symbol":"AAPL"}}',
    b'{"type":"DOM_SNAPSHOT","channel":5,"time":1710262466056,"bids":[{"price":172.33,"size":376}],"asks":[{"price":"NaN","size":1.5,"x":1}]}',
    b'{"type":"FEED_DATA","channel":1,"data":["Summary",["SPY",1,20454,"foo",20453,"bar",12345,1.0,2.0,0.5,1.5,1.25,1.0E9]]}',
]

_session = None


def one_input(data: bytes) -> None:
    global _session
    if _session is None:
        from fastfeed._native.dxlink import DXLinkSession
        _session = DXLinkSession()
        _session.start("secret-token")
    dec = _session
    for msg in (data, data.decode("utf-8", "replace")):
        try:
            dec.feed(msg)
        except ProtocolError:
            pass
    try:
        dec.feed(data, sent=True)     # as a client message of a two-way capture
    except ProtocolError:
        pass
    dec.reset_channels()          # a fuzzed FEED_CONFIG may have re-ordered channel 7
    if dec.feed(GOOD) != 1:
        raise AssertionError("decoder unusable after bad input")
    for t in DX_TYPES:
        for ev in dec.drain(t):
            ev.to_dict()
    dec.data_to_send()
    dec.events_received()
    if len(dec.symbols) > 100000:
        _session = None


def mutate(rnd, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.randint(0, 5)
        pos = rnd.randint(0, len(b)) if b else 0
        if op == 0 and b:
            del b[pos:pos + rnd.randint(1, 8)]
        elif op == 1:
            b[pos:pos] = bytes(rnd.choice(b'{}[],:"\\0123456789eE.-+ntfauNI') for _ in range(rnd.randint(1, 4)))
        elif op == 2 and b:
            b[min(pos, len(b) - 1)] = rnd.randint(0, 255)
        elif op == 3:
            other = rnd.choice(SEEDS)
            s = rnd.randint(0, len(other))
            b[pos:pos] = other[s:s + rnd.randint(1, 40)]
        elif op == 4:
            b = b[:pos]
        else:
            b[pos:pos] = rnd.choice([b'"NaN"', b'null', b'1e400', b'-0', b'"\\ud800"', b'9223372036854775808', b'[[[[[[', b'"\\u0000"'])
    return bytes(b)


def run_random(seconds: float, seed: int = 0) -> int:
    import random
    rnd = random.Random(seed)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        for _ in range(200):
            one_input(mutate(rnd, rnd.choice(SEEDS)))
            n += 1
    return n


def run_hypothesis(seconds: float) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    count = [0]
    deadline = time.monotonic() + seconds

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=300),
                     st.builds(lambda s, cut: s[:cut], st.sampled_from(SEEDS), st.integers(0, 400))))
    def target(data):
        if time.monotonic() > deadline:
            return
        one_input(data)
        count[0] += 1

    while time.monotonic() < deadline:
        target()
    return count[0]


def main(argv=None) -> int:
    try:
        import atheris  # type: ignore
    except ImportError:
        atheris = None
    if atheris is not None and "--seconds" not in (argv or sys.argv):
        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args(argv)
    n = run_random(args.seconds / 2)
    n += run_hypothesis(args.seconds / 2)
    print(f"fuzz_dxlink: {n} inputs, no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
