"""jsonscan.h against Python's json module (via the fastfeed._native._cscan hook).

The hook copies every input so that it ends right before an inaccessible guard page, so any
read at or past ``end`` by the C code crashes the test run instead of passing silently.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastfeed._native import _cscan

MAX_DEPTH = _cscan.MAX_DEPTH


def _loads_strict(doc: bytes) -> object:
    return json.loads(doc.decode("utf-8"))


def has_lone_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=30,
)
dump_styles = st.fixed_dictionaries(
    {
        "ensure_ascii": st.booleans(),
        "indent": st.sampled_from([None, 0, 2, "\t"]),
        "separators": st.sampled_from([None, (",", ":"), (" , ", " : ")]),
    }
)


def depth(v: object) -> int:
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


# ---------------------------------------------------------------------------------------------
# strings


@settings(max_examples=3000)
@given(st.text(), st.booleans())
@example('\U0001f600 caf\u00e9 \u20ac \x00 \x1f \\ " /', True)
@example("", False)
def test_string_roundtrip(s: str, ascii_only: bool) -> None:
    doc = json.dumps(s, ensure_ascii=ascii_only).encode()
    got = _cscan.scan_string(doc + b", 1")
    assert got is not None
    raw, esc, used = got
    assert used == len(doc)
    assert raw == doc[1:-1]
    assert esc == (b"\\" in raw)
    assert _cscan.unescape(raw) == s
    assert _cscan.skip_value(doc) == len(doc)


ESCAPE_ALPHABET = st.sampled_from(
    [
        "\\",
        '\\"',
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u",
        "\\x",
        "u",
        "d8",
        "D83D",
        "\\uD83D",
        "\\uDE00",
        "\\udc00",
        "\\u00e9",
        "\\u0000",
        "0",
        "A",
        "g",
        "é",
        " ",
        "\x01",
        "\x7f",
        "\U0001f600",
    ]
)


@settings(max_examples=5000)
@given(st.lists(ESCAPE_ALPHABET, max_size=12).map("".join))
@example("\\uD83D\\uDE00")
@example("\\uD83D")
@example("\\uDE00\\uD83D")
def test_escapes_vs_json(body: str) -> None:
    raw = body.encode()
    doc = b'"' + raw + b'"'
    try:
        want = _loads_strict(doc)
    except ValueError:
        want = None
    scanned = _cscan.scan_string(doc)
    if scanned is not None and scanned[2] != len(doc):
        scanned = None  # an unescaped quote inside `body` ended the string early
    if want is None:
        # json refuses: the scanner (or, for surrogate pairing, the unescaper) refuses too
        assert scanned is None or _cscan.unescape(scanned[0]) is None, doc
        assert _cscan.skip_value(doc) != len(doc) or _cscan.unescape(raw) is None
        return
    assert scanned is not None, doc
    assert scanned[0] == raw and scanned[2] == len(doc)
    got = _cscan.unescape(raw)
    if has_lone_surrogate(want):  # type: ignore[arg-type]
        assert got is None  # documented: a lone surrogate has no UTF-8 form
    else:
        assert got == want
    assert _cscan.skip_value(doc) == len(doc)


def test_unescape_capacity() -> None:
    assert _cscan.unescape(b"abc\\n", cap=4) == "abc\n"
    assert _cscan.unescape(b"abc\\n", cap=3) is None
    assert _cscan.unescape(b"\\u20ac", cap=3) == "\u20ac"
    assert _cscan.unescape(b"\\u20ac", cap=2) is None
    assert _cscan.unescape(b"\\ud83d\\ude00", cap=4) == "\U0001f600"
    assert _cscan.unescape(b"\\ud83d\\ude00", cap=3) is None
    assert _cscan.unescape(b"", cap=0) == ""


@pytest.mark.parametrize(
    "doc",
    [
        b'"abc',
        b'"abc\\',
        b'"abc\\"',
        b'"a\nb"',
        b'"\x00"',
        b'"\\q"',
        b'"\\u12"',
        b'"\\u12x4"',
        b"x",
        b"",
    ],
)
def test_scan_string_rejects(doc: bytes) -> None:
    assert _cscan.scan_string(doc) is None


# ---------------------------------------------------------------------------------------------
# skip_value


@settings(max_examples=2000)
@given(json_values, dump_styles)
def test_skip_value_matches_json(value: object, style: dict[str, Any]) -> None:
    doc = json.dumps(value, **style).encode()
    if depth(value) > MAX_DEPTH:
        assert _cscan.skip_value(doc) == -1
        return
    assert _cscan.skip_value(doc) == len(doc)
    assert _cscan.skip_value(b" \r\n\t" + doc + b" ,") == len(doc) + 4
    assert _loads_strict(doc) == value


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_every_prefix_is_safe(value: object) -> None:
    doc = json.dumps(value, separators=(",", ":")).encode()
    n = len(doc)
    for k in range(n):
        got = _cscan.skip_value(doc[:k])
        assert got <= k
        if doc[:1] in (b"[", b"{", b'"'):
            assert got == -1, (doc, k)
        elif got != -1:  # a number's prefix may itself be a number
            _loads_strict(doc[:got])


@settings(max_examples=3000)
@given(
    st.binary(max_size=60)
    | st.text('[]{}",:0123456789.-eEtruefalsn \\', max_size=40).map(str.encode)
)
def test_skip_value_vs_json_on_junk(doc: bytes) -> None:
    got = _cscan.skip_value(doc)
    try:
        _loads_strict(doc)
        valid = True
    except (ValueError, RecursionError):
        valid = False
    if valid and not (b"NaN" in doc or b"Infinity" in doc):  # Python's json extensions
        assert got == len(doc.rstrip(b" \t\r\n")), doc
    if got != -1:
        assert 0 < got <= len(doc)
        # what was consumed (after leading ws) is one valid JSON value by Python's rules;
        # bytes inside strings are not UTF-8-validated by the scanner (documented)
        json.loads(doc[:got].decode("utf-8", "surrogateescape"))


def test_depth_limit() -> None:
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert _cscan.skip_value(ok) == len(ok)
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert _cscan.skip_value(deep) == -1
    obj = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    assert _cscan.skip_value(obj) == len(obj)
    assert _cscan.skip_value(b"[" * 100000) == -1


@pytest.mark.parametrize(
    "doc,want",
    [
        (b"0", 1),
        (b"-1.5e+3,", 7),
        (b"  true ", 6),
        (b"null]", 4),
        (b"[]", 2),
        (b"{ }", 3),
        (b'{"a":[1,{"b":null}],"c":"\\u00e9"} x', 33),
        (b"[1,]", -1),
        (b"[1 2]", -1),
        (b'{"a" 1}', -1),
        (b'{"a":}', -1),
        (b"{1:2}", -1),
        (b'{"a":1,}', -1),
        (b"[01]", -1),
        (b"tru", -1),
        (b"[", -1),
        (b"", -1),
        (b"   ", -1),
        (b"]", -1),
        (b"[}", -1),
        (b"NaN", -1),
    ],
)
def test_skip_value_cases(doc: bytes, want: int) -> None:
    assert _cscan.skip_value(doc) == want


def test_skip_ws() -> None:
    assert _cscan.skip_ws(b" \t\r\nx ") == 4
    assert _cscan.skip_ws(b"   ") == 3
    assert _cscan.skip_ws(b"\x0b") == 0  # vertical tab is not JSON whitespace


def test_clocks() -> None:
    import time

    a = _cscan.mono_ns()
    b = _cscan.mono_ns()
    assert b >= a
    assert abs(_cscan.now_ns() - time.time_ns()) < 5_000_000_000
