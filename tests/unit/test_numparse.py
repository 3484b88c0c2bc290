"""numparse.h against Python's own float() / int() (via the fastfeed._native._cscan hook).

The contract: for every valid JSON number, the double is bit-identical to ``float(text)`` and
an integer literal in int64 range is exactly ``int(text)``; everything outside the JSON
grammar is rejected without crashing (the hook places the input right before a guard page,
so a read past the end would crash the test process).
"""

from __future__ import annotations

import math
import re
import struct
from decimal import Decimal, localcontext

import orjson
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from fastfeed._native import _cscan

INT, FLOAT, BIGINT, ERR = _cscan.KIND_INT, _cscan.KIND_FLOAT, _cscan.KIND_BIGINT, _cscan.KIND_ERR
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def expected(text: bytes) -> tuple[int, object]:
    """The oracle: what parse_number must return for a valid JSON number."""
    m = JSON_NUMBER.match(text)
    assert m is not None
    if m.group(1) is None and m.group(2) is None:
        v = int(text)
        if I64_MIN <= v <= I64_MAX:
            return INT, v
        return BIGINT, float(text)
    return FLOAT, float(text)


def exact_int64(text: bytes) -> int | None:
    """int64 value of a JSON number if its exact decimal value is an integer in range."""
    mant, _, exp = text.lower().partition(b"e")
    if exp and abs(int(exp)) > 10**6:  # beyond Decimal's exponent range; trivially decided
        return 0 if not mant.strip(b"-.0") else None
    d = Decimal(text.decode())
    if d != d.to_integral_value() or not (I64_MIN <= d <= I64_MAX):
        return None
    return int(d)


def check(text: bytes) -> None:
    kind, value = _cscan.parse_number(text)
    want_kind, want = expected(text)
    assert kind == want_kind, (text, kind, value)
    if kind == INT:
        assert type(value) is int and value == want, text
    else:
        assert type(value) is float
        assert bits(value) == bits(want), (text, value, want)  # type: ignore[arg-type]
    # the double is float(text) for every kind, "-0" included
    d = _cscan.parse_double(text)
    assert d is not None and bits(d) == bits(float(text)), text
    assert _cscan.parse_int64(text) == exact_int64(text), text
    full = _cscan.parse_number_full(text)
    assert full is not None and full[3] == len(text)
    if kind == FLOAT:
        assert full[1] == (exact_int64(text) or 0), text


def java_double_to_string(x: float) -> str:
    """Java's Double.toString layout (JDK 19+: shortest repr digits): plain decimal with at
    least one fraction digit for 1e-3 <= |x| < 1e7, else d.dddE<exp> with capital E."""
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exp)  # position of the decimal point in ds (may be out of range)
    s = "-" if sign else ""
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return s + "0." + "0" * (-point) + ds
        if point >= len(ds):
            return s + ds + "0" * (point - len(ds)) + ".0"
        return s + ds[:point] + "." + ds[point:]
    frac = ds[1:] or "0"
    return f"{s}{ds[0]}.{frac}E{point - 1}"


# ---------------------------------------------------------------------------------------------
# fixed cases from the brief and the classic hard ones

CASES = [
    b"0",
    b"-0",
    b"7",
    b"-42",
    b"100.0",
    b"1.0E2",
    b"1.3743299E7",
    b"4.81989763184255E-12",
    b"1e22",
    b"1e23",
    b"9007199254740993",
    b"9007199254740993.0",
    b"7235129486797176832",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999",
    b"1234567890123456789012345678901234567890",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"-1e-400",
    b"0e400",
    b"-0.0",
    b"0.0",
    b"0E-7",
    b"4.9406564584124654e-324",
    b"2.4703282292062327e-324",
    b"2.4703282292062328e-324",
    b"2.2250738585072011e-308",
    b"2.2250738585072014e-308",
    b"1.7976931348623157e308",
    b"1.7976931348623158e308",
    b"1.7976931348623159e308",
    b"0.1000000000000000055511151231257827",
    b"0.30000000000000004",
    b"1.00000000000000011102230246251565404236316680908203125",
    b"1.00000000000000011102230246251565404236316680908203126",
    b"9.223372036854775807e18",
    b"-9.223372036854775808E18",
    b"9.223372036854775808e18",
    b"1000000000000000000000000e-7",
    b"1.0000000000000000000000001E3",
    b"12345678901234567890e-2",
    b"123456789012345678.0",
    b"0.000000000000000000000000000000000000001e39",
    b"1e99999999999999999999999999",
    b"1e-99999999999999999999999999",
]


@pytest.mark.parametrize("text", CASES, ids=[c.decode() for c in CASES])
def test_fixed_cases(text: bytes) -> None:
    check(text)


def test_brief_specifics() -> None:
    assert _cscan.parse_number(b"-0") == (INT, 0)
    assert math.copysign(1.0, _cscan.parse_double(b"-0")) == -1.0
    assert math.copysign(1.0, _cscan.parse_number(b"-0.0")[1]) == -1.0
    assert _cscan.parse_number(b"100.0") == (FLOAT, 100.0)
    assert _cscan.parse_int64(b"100.0") == 100
    assert _cscan.parse_int64(b"1.0E2") == 100
    assert _cscan.parse_int64(b"1.5") is None
    assert _cscan.parse_int64(b"9223372036854775808") is None
    assert _cscan.parse_int64(b"-9223372036854775808") == I64_MIN
    assert _cscan.parse_number(b"1e400") == (FLOAT, math.inf)
    assert _cscan.parse_number(b"9223372036854775808")[0] == BIGINT


MALFORMED = [
    b"",
    b"-",
    b"01",
    b"-01",
    b"00",
    b"1.",
    b".5",
    b"1e",
    b"1E+",
    b"1e-",
    b"+1",
    b"1.e5",
    b"--1",
    b"-.5",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"inf",
    b"0x10",
    b"1_000",
    b" 1",
    b"1 ",
    b"1.5.3",
    b"1e5.5",
    b"\x00",
    b"\xff",
    b"e5",
    b"-e5",
    b"1ee5",
    b"1e+-5",
]


@pytest.mark.parametrize("text", MALFORMED, ids=[repr(c) for c in MALFORMED])
def test_malformed(text: bytes) -> None:
    assert _cscan.parse_number(text) == (ERR, None)
    assert _cscan.parse_int64(text) is None
    assert _cscan.parse_double(text) is None


def test_stops_at_delimiter() -> None:
    assert _cscan.parse_number_full(b"123,") == (INT, 123, 123.0, 3)
    assert _cscan.parse_number_full(b"1.5]")[3] == 3
    assert _cscan.parse_number_full(b"-2e3}")[2] == -2000.0
    assert _cscan.parse_number_full(b"01") is None  # leading zero is malformed, not "0" + "1"


# ---------------------------------------------------------------------------------------------
# properties


@settings(max_examples=3000)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(5e-324)
@example(1.7976931348623157e308)
@example(2.2250738585072014e-308)
@example(2.225073858507201e-308)
def test_repr_roundtrip(x: float) -> None:
    text = repr(x).encode()
    check(text)
    _, value = _cscan.parse_number(text)
    assert bits(value) == bits(x)


@settings(max_examples=3000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_java_formatting(x: float) -> None:
    text = java_double_to_string(x).encode()
    assert float(text) == x
    check(text)


@settings(max_examples=2000)
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["%.17G", "%.17g", "%.15g", "%.16E", "%.3e", "%.20f", "%.1f", "%.0f", "%r"]),
)
def test_printf_formatting(x: float, fmt: str) -> None:
    text = (fmt % x).encode()
    assume(JSON_NUMBER.match(text))  # e.g. "%.0f" % 0.5 == "0" is fine; "inf" is not produced
    check(text)


@st.composite
def json_numbers(draw: st.DrawFn) -> bytes:
    """Arbitrary valid JSON numbers: long mantissas, long fractions, huge exponents."""
    sign = draw(st.sampled_from(["", "-"]))
    if draw(st.booleans()):
        int_part = "0"
    else:
        int_part = draw(st.sampled_from("123456789")) + draw(
            st.text("0123456789", max_size=draw(st.sampled_from([3, 18, 25, 60])))
        )
    frac = ""
    if draw(st.booleans()):
        frac = "." + draw(
            st.text("0123456789", min_size=1, max_size=draw(st.sampled_from([3, 20, 60])))
        )
    exp = ""
    if draw(st.booleans()):
        e = draw(
            st.one_of(st.integers(-30, 30), st.integers(-400, 400), st.integers(-(10**30), 10**30))
        )
        plus = draw(st.sampled_from(["", "+"])) if e >= 0 else ""
        exp = draw(st.sampled_from("eE")) + plus + str(e)
    return (sign + int_part + frac + exp).encode()


@settings(max_examples=5000)
@given(json_numbers())
@example(b"9007199254740993e-22")
@example(b"9007199254740993e22")
@example(b"4503599627370497e7")
def test_generated_numbers(text: bytes) -> None:
    check(text)


@st.composite
def near_halfway(draw: st.DrawFn) -> bytes:
    """Decimal strings within a few ulps of a halfway point between adjacent doubles."""
    x = draw(st.floats(min_value=5e-324, allow_nan=False, allow_infinity=False))
    nxt = math.nextafter(x, math.inf)
    assume(math.isfinite(nxt))
    delta = draw(st.sampled_from([Decimal(0), Decimal("1e-60"), Decimal("-1e-60")]))
    with localcontext() as ctx:
        ctx.prec = 1200  # enough for the exact midpoint of any two doubles
        mid = (Decimal(x) + Decimal(nxt)) / 2
        text = format(mid * (1 + delta), "e")
    return text.replace("+", "").encode()


@settings(max_examples=2000)
@given(near_halfway())
def test_halfway_cases(text: bytes) -> None:
    check(text)


@settings(max_examples=3000)
@given(
    st.one_of(
        st.integers(I64_MIN, I64_MAX),
        st.integers(-(2**70), 2**70),
        st.integers(I64_MAX - 1000, I64_MAX + 1000),
        st.integers(I64_MIN - 1000, I64_MIN + 1000),
        st.integers(-(10**60), 10**60),
    )
)
def test_integers(v: int) -> None:
    text = str(v).encode()
    check(text)
    kind, value = _cscan.parse_number(text)
    if I64_MIN <= v <= I64_MAX:
        assert (kind, value) == (INT, v)
        assert _cscan.parse_int64(text) == v
        # an integral float spelling gives the same integer
        assert _cscan.parse_int64(text + b".0") == v
        assert _cscan.parse_int64(text + b".000e0") == v
    else:
        assert kind == BIGINT and bits(value) == bits(float(v))
        assert _cscan.parse_int64(text) is None


@settings(max_examples=5000)
@given(st.binary(max_size=40) | st.text("0123456789+-.eE ", max_size=30).map(str.encode))
def test_arbitrary_bytes(text: bytes) -> None:
    kind, value = _cscan.parse_number(text)
    if JSON_NUMBER.match(text):
        check(text)
    else:
        assert (kind, value) == (ERR, None), text
        assert _cscan.parse_int64(text) is None
        assert _cscan.parse_double(text) is None
    # and as a prefix scanner it never claims more than it was given
    full = _cscan.parse_number_full(text)
    assert full is None or 0 < full[3] <= len(text)


@settings(max_examples=2000)
@given(
    st.one_of(
        json_numbers(),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
    )
)
def test_orjson_type_parity(text: bytes) -> None:
    """An int on the wire stays an int, a float stays a float -- as orjson decides."""
    try:
        ref = orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson refuses some huge integers and out-of-range exponents; we still must match
        # Python's float()/int() there
        check(text)
        return
    kind, value = _cscan.parse_number(text)
    if isinstance(ref, int):
        if I64_MIN <= ref <= I64_MAX:
            assert kind == INT and value == ref
        else:  # orjson keeps uint64 as int; fastfeed reports BIGINT with the rounded double
            assert kind == BIGINT and value == float(ref)
    else:
        assert kind in (FLOAT, BIGINT)
        if kind == BIGINT:  # orjson turns integers beyond uint64 into floats
            assert b"." not in text and b"e" not in text.lower()
        check(text)  # the value itself is judged against float(), not orjson


# ---------------------------------------------------------------------------------------------
# Eisel-Lemire (numparse.h step 3): <= 19 significant digits with any exponent in [-342, 308]
# are decided in integer arithmetic from the 128-bit powers of five in pow5_table.h; > 19
# digits, exponents beyond the table and the rare undecided products go to strtod.


def test_pow5_table_is_generated() -> None:
    """pow5_table.h is exactly what tools/gen_pow5.py produces (which also proves the table
    entries and the floor(log2 5^q) formula against Python integers)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "gen_pow5.py"
    if not path.exists():
        pytest.skip("source tree not available")
    spec = importlib.util.spec_from_file_location("gen_pow5", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--check"]) == 0
    # the definition, independently: T(q) = floor(5^q * 2^(127 - floor(log2 5^q)))
    for q in (-342, -100, -28, -27, -5, -1, 0, 1, 27, 28, 55, 56, 200, 308):
        t = mod.truncated_pow5(q)
        e = mod.floor_log2_pow5(q)
        assert Decimal(2) ** e <= Decimal(5) ** q < Decimal(2) ** (e + 1) or q == 0
        with localcontext() as ctx:
            ctx.prec = 200
            exact = Decimal(5) ** q * Decimal(2) ** (127 - e)
        assert t == int(exact.to_integral_value(rounding="ROUND_FLOOR")), q


def _spell(digits: str, exp10: int, rng_pick: int) -> bytes:
    """``digits`` (no leading zero) * 10^exp10 in one of several JSON spellings."""
    n = len(digits)
    if rng_pick == 0:
        return f"{digits}e{exp10}".encode()
    if rng_pick == 1:  # d.ddddE<exp>, Java style
        return f"{digits[0]}.{digits[1:] or '0'}E{exp10 + n - 1}".encode()
    # plain decimal when it stays short, else scientific
    point = n + exp10
    if 0 < point < n:
        return f"{digits[:point]}.{digits[point:]}".encode()
    if -8 <= point <= 0:
        return ("0." + "0" * (-point) + digits).encode()
    if n <= point <= n + 8:
        return (digits + "0" * (point - n) + ".0").encode()
    return f"{digits}E{exp10:+d}".encode().replace(b"+", b"")


@st.composite
def decimal_mantissas(draw: st.DrawFn, ndigits: int, exps: st.SearchStrategy[int]) -> bytes:
    first = draw(st.sampled_from("123456789"))
    rest = draw(st.text("0123456789", min_size=ndigits - 1, max_size=ndigits - 1))
    sign = draw(st.sampled_from(["", "-"]))
    return sign.encode() + _spell(first + rest, draw(exps), draw(st.integers(0, 2)))


ANY_EXP = st.one_of(
    st.integers(-30, 30),
    st.integers(-360, 330),
    st.integers(-345, -320),  # subnormals and the bottom of the table
    st.integers(285, 312),  # near DBL_MAX and the top of the table
)


@settings(max_examples=4000)
@given(decimal_mantissas(17, ANY_EXP))
@example(b"0.009238296068280027")  # a Greeks gamma of the benchmark frames
@example(b"9.238296068280027E-3")
@example(b"1.7976931348623157e308")
@example(b"4.9406564584124654E-324")
def test_17_digit_mantissas(text: bytes) -> None:
    check(text)


@settings(max_examples=4000)
@given(st.integers(16, 19).flatmap(lambda n: decimal_mantissas(n, ANY_EXP)))
@example(b"9999999999999999999e-342")
@example(b"9999999999999999999e308")
@example(b"1000000000000000000e-361")
@example(b"1844674407370955161.5")
@example(b"9223372036854775807e-5")
def test_16_to_19_digit_mantissas(text: bytes) -> None:
    check(text)


@settings(max_examples=2000)
@given(st.integers(20, 40).flatmap(lambda n: decimal_mantissas(n, ANY_EXP)))
def test_more_than_19_digits(text: bytes) -> None:
    check(text)


@settings(max_examples=3000)
@given(
    st.integers(1, 19).flatmap(
        lambda n: decimal_mantissas(
            n,
            st.one_of(
                st.integers(-342 - 19, -342 + 2),
                st.integers(-330, -300),
                st.integers(300, 310),
                st.integers(-400, -343),
                st.integers(309, 400),
            ),
        )
    )
)
@example(b"1e-342")
@example(b"1e-343")
@example(b"2.4703282292062328e-324")
@example(b"2.4703282292062327e-324")
@example(b"1e308")
@example(b"1e309")
@example(b"9e-325")
@example(b"1.8e308")
def test_extreme_exponents(text: bytes) -> None:
    check(text)


@settings(max_examples=3000)
@given(st.integers(1, 2**52 - 1).map(lambda m: struct.unpack("<d", struct.pack("<Q", m))[0]))
@example(5e-324)
@example(2.225073858507201e-308)
def test_subnormals(x: float) -> None:
    for text in (repr(x), f"{x:.16e}", f"{x:.17e}", f"{x:.18e}", java_double_to_string(x)):
        check(text.encode())
        check(b"-" + text.encode())


def _ulp_midpoint(x: float) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 1200
        return (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2


def _digits_exp(d: Decimal) -> tuple[str, int]:
    sign, digits, exp = d.normalize().as_tuple()
    assert isinstance(exp, int) and not sign
    return "".join(map(str, digits)), exp


@st.composite
def short_midpoints(draw: st.DrawFn) -> bytes:
    """Exact halfway points between adjacent doubles that need <= 19 significant digits (so
    Eisel-Lemire itself must see the tie): doubles in [2^47, 2^63], where the midpoint has at
    most a few binary (hence decimal) fraction digits, spelled with zero, positive or
    negative decimal exponents -- plus the decimal neighbours one unit away."""
    e2 = draw(st.integers(47, 62))
    mant = draw(st.integers(2**52, 2**53 - 1))
    x = math.ldexp(mant, e2 - 52)
    digits, exp10 = _digits_exp(_ulp_midpoint(x))
    assume(len(digits) <= 19)
    nudge = draw(st.sampled_from([0, 0, 1, -1]))
    if nudge:
        digits = str(int(digits) + nudge)
    pad = draw(st.integers(0, 19 - len(digits)))  # trailing zeros: same value, other w/q
    digits += "0" * pad
    exp10 -= pad
    return draw(st.sampled_from(["", "-"])).encode() + _spell(digits, exp10, draw(st.integers(0, 2)))


@settings(max_examples=4000)
@given(short_midpoints())
@example(b"9007199254740993")  # 2^53 + 1: tie, even is 2^53
@example(b"9007199254740995.0")  # tie, even is 2^53 + 4
@example(b"4503599627370496.5")  # 2^52 + 1/2: tie, even is 2^52
@example(b"4503599627370497.5")  # tie, even is 2^52 + 2
@example(b"45035996273704975e-1")
@example(b"1125899906842624.125")  # 2^50 + 1/8: tie at q = -3
@example(b"1125899906842624.375")
@example(b"562949953421312.0625")  # 2^49 + 1/16: tie at q = -4
@example(b"18014398509481985")  # 2^54 + 1: below the tie point 2^54 + 2
@example(b"18014398509481986")  # 2^54 + 2: tie, even is 2^54
@example(b"18014398509481990e0")  # 2^54 + 6: tie, even is 2^54 + 8
def test_short_halfway_cases(text: bytes) -> None:
    check(text)


@st.composite
def repr_neighbours(draw: st.DrawFn) -> bytes:
    """repr(x) with its last digit moved by one, or extended by digits that put it just below,
    at, or just above the middle of its last decimal place: decimal strings close to the
    rounding boundaries between x and its neighbours, all within 19 digits."""
    x = draw(st.floats(min_value=5e-324, allow_nan=False, allow_infinity=False))
    digits, exp10 = _digits_exp(Decimal(repr(x)))
    tail = draw(st.sampled_from(["+1", "-1", "5", "49", "51", "4999", "5001", "50", "99", "01"]))
    if tail in ("+1", "-1"):
        digits = str(int(digits) + int(tail))
        assume(digits != "0")
    else:
        digits += tail
        exp10 -= len(tail)
    assume(len(digits) <= 19)
    return _spell(digits, exp10, draw(st.integers(0, 2)))


@settings(max_examples=4000)
@given(repr_neighbours())
@example(b"2.2250738585072012e-308")
@example(b"2.22507385850720113605e-308")
def test_repr_neighbours(text: bytes) -> None:
    check(text)
