"""Record layouts: the C compiler's offsets = the generated metadata = buffer format = numpy dtype."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastfeed._native.ring import RecordRing, c_layout_table
from fastfeed._native.symbols import SymbolTable
from fastfeed._records_meta import LAYOUTS
from fastfeed.records import dtype_for

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_up_to_date() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "tools/gen_records.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_c_offsets_match_metadata_for_every_member() -> None:
    table = c_layout_table()
    sizes = {rec: size for rec, member, _, size in table if member == "<size>"}
    c_members = {(rec, member): (off, size) for rec, member, off, size in table if member != "<size>"}
    for name, lay in LAYOUTS.items():
        assert sizes[name] == lay["size"], name
        assert lay["size"] % 8 == 0, f"{name} is not 8-byte aligned"
        for m in lay["members"]:
            assert c_members[(name, m["name"])] == (m["offset"], m["size"]), (name, m["name"])
        # no implicit padding: members tile the record exactly
        covered = sum(m["size"] for m in lay["members"])
        assert covered == lay["size"], name


def test_every_record_starts_with_the_common_header() -> None:
    for name, lay in LAYOUTS.items():
        head = [(m["name"], m["offset"], m["size"]) for m in lay["members"][:4]]
        assert head == [("rtype", 0, 2), ("flags", 2, 2), ("symbol_id", 4, 4), ("ts_recv", 8, 8)], name
        if lay["feed"] == "polygon":
            assert [(m["name"], m["offset"]) for m in lay["members"][4:6]] == [("present", 16), ("alt", 24)]


def test_pxd_declares_every_member_of_every_struct() -> None:
    pxd = (ROOT / "src_cython/fastfeed/_native/records.pxd").read_text()
    for name, lay in LAYOUTS.items():
        block = pxd.split(f"ctypedef struct {lay['ctype']}:")[1].split("ctypedef struct")[0]
        declared = re.findall(r"^\s+\w+ \*?(\w+)", block, re.M)
        assert declared == [m["name"] for m in lay["members"]], name


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_buffer_format_and_numpy_dtype_match_the_c_layout(name: str) -> None:
    lay = LAYOUTS[name]
    rtype = next(iter(lay["rtypes"].values()))
    ring = RecordRing(name, next(iter(lay["rtypes"])), rtype, SymbolTable(), 64)
    cons = ring.consumer()
    ring.push(bytes(lay["size"]) * 3)
    batch = cons.drain()
    view = memoryview(batch)
    assert view.itemsize == lay["size"]
    assert view.shape == (3,)
    assert view.readonly
    # numpy reads the PEP 3118 format itself: same field offsets as the C struct
    arr = np.asarray(view)
    dt = dtype_for(name)
    assert arr.dtype.itemsize == dt.itemsize == lay["size"]
    for field in dt.names:
        assert arr.dtype.fields[field][1] == dt.fields[field][1], field
    assert batch.to_numpy().dtype == dt
