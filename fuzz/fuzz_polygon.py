"""Bounded fuzz target for fastfeed.PolygonDecoder.

Properties checked on every input:
  * ``feed()`` returns an int or raises ``fastfeed.ProtocolError`` -- nothing else, no crash;
  * the decoder keeps working (a known-good frame decodes afterwards);
  * when ``orjson`` accepts the input as an array of objects whose events all have the right
    value types, every decoded event's ``to_dict()`` equals the ``json.loads`` object: every key
    (keys without a slot too) and every value (strings longer than their slot and lists longer
    than their inline capacity too), floats bit for bit.

Run (CI: about 30 s; also under the sanitizer build, FASTFEED_SANITIZE=1):
    python fuzz/fuzz_polygon.py -max_total_time=30        # atheris (libFuzzer flags)
    python fuzz/fuzz_polygon.py --seconds 30               # hypothesis fallback
atheris is used when importable, else a hypothesis-driven bounded loop (structured mutations
of golden frames plus random bytes).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import sys
import time
from pathlib import Path

import orjson

# The repository root is NOT put on sys.path: fastfeed is whatever the environment provides
# (tools/fuzz_sanitized.sh points PYTHONPATH at its ASan/UBSan build; a checkout with an in-place
# build would otherwise shadow it). ROOT only locates the seed data.
ROOT = Path(__file__).resolve().parent.parent

import fastfeed
from fastfeed._records_meta import LAYOUTS

_expect = os.environ.get("FASTFEED_FUZZ_EXPECT")
if _expect and not Path(fastfeed.__file__).resolve().is_relative_to(Path(_expect).resolve()):
    sys.exit(f"fuzz_polygon: fastfeed imported from {fastfeed.__file__}, not from {_expect}")

DATA = ROOT / "tests" / "data" / "polygon"
SEEDS = [
    line.strip().encode()
    for p in sorted(DATA.glob("*.jsonl"))
    for line in p.read_text("utf-8").splitlines()
    if line.strip()
]
EV_CODES = sorted({ev for lay in LAYOUTS.values() if lay["feed"] == "polygon" for ev in lay["rtypes"]})
GOOD = b'[{"ev":"T","sym":"OK","p":1.5}]'

_dec = fastfeed.PolygonDecoder(ring_bytes=1 << 16)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def check(data: bytes) -> None:
    dec = _dec
    for ev in EV_CODES:  # start from empty rings
        dec.drain(ev)
    skipped0 = dec.stats["skipped"]
    raised = False
    try:
        n = dec.feed(data)
        assert isinstance(n, int) and n >= 0
    except fastfeed.ProtocolError:
        raised = True
    got = {ev: [e.to_dict() for e in dec.drain(ev)] for ev in EV_CODES}
    try:
        ref = orjson.loads(data)
    except orjson.JSONDecodeError:
        ref = None
    if not raised and isinstance(ref, list) and dec.stats["skipped"] == skipped0:
        # every key and value, long strings and keys without a slot included (as json.loads)
        ref = json.loads(data)
        want = {ev: [] for ev in EV_CODES}
        for o in ref:
            if isinstance(o, dict) and o.get("ev") in want:
                want[o["ev"]].append(o)
        for ev in EV_CODES:
            assert len(got[ev]) == len(want[ev]), (ev, data)
            for g, w in zip(got[ev], want[ev], strict=True):
                assert g.keys() == w.keys() and all(_same(g[k], w[k]) for k in g), (g, w, data)
    assert dec.feed(GOOD) == 1
    dec.drain("T")


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if not b:
            b = bytearray(rng.choice(SEEDS))
        i = rng.randrange(len(b))
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            del b[i : i + rng.randint(1, 8)]
        elif op == 2:
            b[i:i] = rng.choice([b'"', b"\\", b",", b"[", b"]", b"{", b"}", b":", b"-", b"0", b"1e999",
                                 b"\\u0000", b"\\ud800", b"\xff", b"null", b"true", b'"ev":"T"',
                                 b'"i":"' + b"7" * 40 + b'",', b'"zz":{"k":[1,2.5]},',
                                 b'"c":[1,2,3,4,5,6,7,8,9,10],', b'"pt":1,'])
        elif op == 3:
            del b[i:]
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 30)]
        else:
            b[i:i] = rng.choice(SEEDS)
    return bytes(b)


def run_hypothesis(seconds: float) -> int:
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")) or None)
    deadline = time.monotonic() + seconds
    for seed in SEEDS:  # every seed as it is first (real shapes: e.g. spilled ids in unaligned slots)
        check(seed)
    n = len(SEEDS)
    while time.monotonic() < deadline:
        if rng.random() < 0.1:
            data = rng.randbytes(rng.randint(0, 200))
        else:
            data = mutate(rng, rng.choice(SEEDS))
        check(data)
        n += 1
    # plus a short hypothesis pass (shrinks failures to a minimal example)
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=500, deadline=None, database=None)
    @given(st.sampled_from(SEEDS), st.randoms())
    def prop(seed, r):
        check(mutate(r, seed))

    prop()
    return n


def main() -> None:
    args = sys.argv[1:]
    if "--seconds" in args:
        seconds = float(args[args.index("--seconds") + 1])
        n = run_hypothesis(seconds)
        print(f"fuzz_polygon: {n} inputs, no failure")
        return
    try:
        import atheris
    except ImportError:
        n = run_hypothesis(30.0)
        print(f"fuzz_polygon: {n} inputs, no failure")
        return

    def one(data: bytes) -> None:
        check(data)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        # structure-aware: the C decoder is not coverage-instrumented, so mutate golden frames
        rng = random.Random(seed)
        base = data if data and rng.random() < 0.6 else rng.choice(SEEDS)
        return mutate(rng, base)[:max_size]

    atheris.Setup(sys.argv, one, custom_mutator=mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
