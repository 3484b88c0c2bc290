"""Columnar recordings: fixed-layout records <-> Arrow tables (one column per record field).

The layout of every record type comes from the generated metadata (``fastfeed._records_meta``,
the same as :func:`fastfeed.records.dtype_for`). Column names are the event classes' field names
(``bid_price``, ``event_symbol`` ...). Types:

=====================================  ====================================================
record member                          Arrow column
=====================================  ====================================================
``symbol_id``                          the event's symbol attribute (``event_symbol`` for
                                       dxFeed, ``symbol`` for polygon):
                                       ``dictionary<int32, string>``
``ts_recv`` (local receive time)       ``timestamp[ns, UTC]``
dxFeed ``*time`` longs (ms, as sent)   ``timestamp[ms, UTC]`` (the wire value, unchanged)
string fields (``description`` ...)    ``dictionary<int32, string>`` (null when absent)
fixed strings (polygon ``id`` ...)     ``string``
arrays (``conditions``, book levels)   ``fixed_size_list`` of the element type
everything else                        the C type (``double``, ``int64``, ``int32``,
                                       ``uint8`` enum codes, ``uint32`` char code points,
                                       ``uint16`` ``flags``, polygon ``present``/``alt``
                                       key bitmaps as ``uint64``)
polygon ``spill``                      ``binary``: the record's values kept outside its
                                       slots (``fastfeed/spill.h``: strings longer than
                                       their slot, unknown keys, long lists), empty when
                                       none; replay gives them back to the ring's spill log
=====================================  ====================================================

The schema metadata holds ``fastfeed.layout``, ``fastfeed.wire_type`` and the record size, so a
file converts back to records (``to_records``) byte for byte in every field.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastfeed._records_meta import LAYOUTS

__all__ = ["ColumnBuffers", "ColumnSpec", "spec_for", "spill_data", "to_arrow", "to_records"]


class ColumnSpec:
    """How the members of one layout map to Arrow columns (see the module docstring)."""

    def __init__(self, layout: str) -> None:
        import numpy as np
        import pyarrow as pa

        from fastfeed.records import dtype_for

        lay = LAYOUTS[layout]
        self.layout = layout
        self.dtype = dtype_for(layout)
        self.size = int(lay["size"])
        self.rtype = int(next(iter(lay["rtypes"].values())))
        kinds = {f["attr"]: f["kind"] for f in lay["fields"]}
        #: polygon fixstr member -> its field bit (alt bit 32 + bit: the value is spilled)
        self.str_bits: dict[str, int] = {
            f["attr"]: int(f["bit"]) for f in lay["fields"]
            if str(f["kind"]).startswith("fixstr") and f.get("bit") is not None}
        dx = lay["feed"] == "dxfeed"
        self.symbol_attr = str(lay["symbol"]["attr"])
        # (column name, member name, role, arrow type)
        self.columns: list[tuple[str, str, str, Any]] = []
        offsets = {m["name"]: (int(m["offset"]), int(m["size"])) for m in lay["members"]}
        for m in lay["members"]:
            name, npt = m["name"], m["np"]
            if npt is None or name == "rtype":
                continue
            if name == "symbol_id":
                self.columns.append((self.symbol_attr, name, "dict",
                                     pa.dictionary(pa.int32(), pa.string())))
                continue
            if name == "ts_recv":
                self.columns.append((name, name, "ts", pa.timestamp("ns", tz="UTC")))
                continue
            if name == "spill" and m["field"] is None:
                self.columns.append((name, name, "spill", pa.binary()))
                continue
            kind = kinds.get(name, "") if m["field"] == name else ""
            sub = np.dtype(tuple(npt) if isinstance(npt, (list, tuple)) else npt)
            if kind == "str":
                self.columns.append((name, name, "dict", pa.dictionary(pa.int32(), pa.string())))
            elif dx and kind == "i64" and name.endswith("time"):
                self.columns.append((name, name, "ts", pa.timestamp("ms", tz="UTC")))
            elif sub.kind == "S":
                self.columns.append((name, name, "fixstr", pa.string()))
            elif sub.subdtype is not None:
                base, shape = sub.subdtype
                t = pa.from_numpy_dtype(base)
                for dim in reversed(shape):
                    t = pa.list_(t, int(dim))
                self.columns.append((name, name, "array", t))
            else:
                self.columns.append((name, name, "plain", pa.from_numpy_dtype(sub)))
        # the symbol and the receive time first, then the members in record order
        first = {"symbol_id": 0, "ts_recv": 1}
        self.columns.sort(key=lambda c: first.get(c[1], 2))
        #: (offset, size) of each column's member, and the numpy dtype of one column element
        self.members = [offsets[mm] for _c, mm, _r, _t in self.columns]
        self.col_dtypes = [self.dtype.fields[mm][0] for _c, mm, _r, _t in self.columns]
        self.schema = pa.schema(
            [pa.field(c, t) for c, _m, _r, t in self.columns],
            metadata={"fastfeed.layout": layout, "fastfeed.record_size": str(self.size),
                      "fastfeed.rtype": str(self.rtype)})


@cache
def spec_for(layout: str) -> ColumnSpec:
    return ColumnSpec(layout)


def _dict_column(ids: Any, dictionary: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    idx = ids.astype(np.int32)
    mask = idx == 0
    indices = pa.array(idx, mask=mask if mask.any() else None, type=pa.int32())
    return pa.DictionaryArray.from_arrays(indices, dictionary)


class ColumnBuffers:
    """Reusable per-column buffers of one layout (the writer fills them batch after batch: no
    fresh allocation, hence no page faults, per batch). ``append`` gathers pieces of records as
    they arrive (the records' buffer can be reused right after); ``batch`` reads the rows
    gathered so far; ``reset`` starts the next batch."""

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec
        self.cap = 0
        self.rows = 0
        self.cols: list[Any] = []
        #: (first row, rows, spill bytes, spill base) of the pieces gathered that spilled
        self._spills: list[tuple[int, int, Any, int]] = []

    def _reserve(self, total: int) -> None:
        import numpy as np

        if total <= self.cap:
            return
        cap = max(total, 4096, 2 * self.cap)
        cols = [np.empty((cap,) + d.shape, dtype=d.base) for d in self.spec.col_dtypes]
        for new, old in zip(cols, self.cols, strict=False):
            new[:self.rows] = old[:self.rows]
        self.cols, self.cap = cols, cap

    def reset(self) -> None:
        self.rows = 0
        self._spills = []

    def append(self, arr: Any, n: int, spill: Any = None, base: int = 0) -> None:
        """Gather the members of the first ``n`` records of ``arr`` (a numpy array of the
        layout's dtype; ``spill``/``base`` as ``Consumer.drain_into`` gives them) after the rows
        already held."""
        import numpy as np

        from fastfeed._native.columns import gather

        if not n:
            return
        spec = self.spec
        pos = self.rows
        self._reserve(pos + n)
        if spill is not None:
            self._spills.append((pos, n, spill, base))
        outs = [c[pos:pos + n].view(np.uint8).reshape(-1) for c in self.cols]
        gather(np.ascontiguousarray(arr[:n]).view(np.uint8), spec.size, spec.members, outs)
        self.rows = pos + n

    def fill(self, pieces: list[tuple[Any, int, Any, int]]) -> int:
        """``reset`` then ``append`` each of ``pieces`` (``(records, n, spill, spill_base)``);
        returns the number of rows."""
        self.reset()
        for arr, n, spill, base in pieces:
            self.append(arr, n, spill, base)
        return self.rows

    def batch(self, n: int, dictionary: Any, wire_type: str) -> Any:
        """A ``pyarrow.RecordBatch`` of the first ``n`` rows (it reads the buffers in place:
        write it before the next ``append``)."""
        return _batch(self.spec, [c[:n] for c in self.cols], dictionary, wire_type,
                      self._spills)


def to_arrow(records: Any, spec: ColumnSpec, dictionary: Any, wire_type: str,
             spill: Any = None, spill_base: int = 0) -> Any:
    """A ``pyarrow.RecordBatch`` of ``records`` (numpy array of ``spec.dtype``).

    ``dictionary``: a ``pyarrow`` string array indexed by symbol id (entry 0 unused) -- the
    recording's symbol table at the time of the batch. ``spill``/``spill_base``: the spill-log
    bytes the records refer to (``EventBatch._spill`` / ``_spill_base``).
    """
    bufs = ColumnBuffers(spec)
    n = bufs.fill([(records, len(records), spill, spill_base)])
    return bufs.batch(n, dictionary, wire_type)


def _spill_column(refs: Any, spills: list[tuple[int, int, Any, int]]) -> Any:
    """The ``binary`` column of the records' spilled bytes (``refs``: their ``spill`` members,
    ``spills``: (first row, rows, spill bytes, base) of the rows that have any)."""
    import numpy as np
    import pyarrow as pa

    n = len(refs)
    lens = (refs >> np.uint64(32)).astype(np.int64)
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    total = int(offs[-1])
    if total >= 1 << 31:
        raise ValueError("more than 2 GiB of spilled values in one batch")
    data = np.zeros(total, dtype=np.uint8)
    for first, rows, spill, base in spills:
        sl = slice(first, first + rows)
        ln = lens[sl]
        m = ln > 0
        if not m.any():
            continue
        rel = ((refs[sl] & np.uint64(0xFFFFFFFF)).astype(np.int64) - base) & 0xFFFFFFFF
        lo, hi = int(offs[first]), int(offs[first + rows])
        src = np.frombuffer(spill, dtype=np.uint8)
        idx = np.repeat(rel[m] - offs[sl][m], ln[m]) + np.arange(lo, hi)
        data[lo:hi] = src[idx]
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offs.astype(np.int32)),
                                                  pa.py_buffer(data)])


def _fixstr_column(v: Any, alt: Any, bit: int, spill_col: Any) -> Any:
    """A polygon fixed-string column: the slot's text, or the whole spilled string where the
    value did not fit its slot (alt bit 32 + ``bit``; the slot holds its offset and length in
    the record's spill bytes)."""
    import numpy as np
    import pyarrow as pa

    rows = np.nonzero((alt >> np.uint64(32 + bit)) & np.uint64(1))[0]
    if not len(rows):
        return _text_column(v)
    vals = [b.decode("utf-8", "replace") for b in v.tolist()]
    slots = v.view(np.uint8).reshape(len(v), -1)[:, :8].copy().view("<u4")
    for i in rows.tolist():
        off, ln = int(slots[i, 0]), int(slots[i, 1])
        rec = spill_col[i].as_py() or b""
        vals[i] = rec[off:off + ln].decode("utf-8", "replace")
    return pa.array(vals, type=pa.string())


def _text_column(v: Any) -> Any:
    import pyarrow as pa

    arr = pa.array(v, type=pa.binary())
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([b.decode("utf-8", "replace") for b in v.tolist()], type=pa.string())


def _spilled_str_slot(rec: bytes, text: bytes, used: set[int]) -> bytes:
    """The fixstr slot (u32 offset, u32 length) of ``text`` spilled in a record's spill bytes
    ``rec`` (its FF_SPILL_STR piece; ``used``: offsets already given to the record's other
    string fields)."""
    import struct

    p = 0
    while p + 5 <= len(rec):
        tag = rec[p]
        (n,) = struct.unpack_from("<I", rec, p + 1)
        if tag == 1 and p + 5 not in used and rec[p + 5:p + 5 + n] == text:
            used.add(p + 5)
            return struct.pack("<II", p + 5, n)
        p += 5 + n
    raise ValueError("a spilled string is not in its record's spill bytes")


def _batch(spec: ColumnSpec, cols: list[Any], dictionary: Any, wire_type: str,
           spills: list[tuple[int, int, Any, int]] | None = None) -> Any:
    import pyarrow as pa

    arrays = []
    by_member = {m: v for (_c, m, _r, _t), v in zip(spec.columns, cols, strict=True)}
    spill_col: Any = None
    for (_col, member, role, typ), v in zip(spec.columns, cols, strict=True):
        if role == "spill":
            spill_col = _spill_column(v, spills or [])
            arrays.append(spill_col)
        elif role == "fixstr" and member in spec.str_bits and spill_col is not None:
            arrays.append(_fixstr_column(v, by_member["alt"], spec.str_bits[member], spill_col))
        elif role == "dict":
            arrays.append(_dict_column(v, dictionary))
        elif role == "ts":
            arrays.append(pa.array(v, type=pa.int64()).view(typ))
        elif role == "fixstr":
            arrays.append(_text_column(v))
        elif role == "array":
            out: Any = pa.array(v.reshape(-1))
            t = typ
            sizes = []
            while pa.types.is_fixed_size_list(t):
                sizes.append(t.list_size)
                t = t.value_type
            for size in reversed(sizes):
                out = pa.FixedSizeListArray.from_arrays(out, size)
            arrays.append(out)
        else:
            arrays.append(pa.array(v, type=typ))
    schema = spec.schema.with_metadata({**spec.schema.metadata,
                                        b"fastfeed.wire_type": wire_type.encode()})
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _indices(ind: Any) -> Any:
    """A dictionary column's indices as int64, -1 where null (read from the Arrow buffers:
    ``fill_null`` would import ``pyarrow.compute``, 0.3 s of a replay's first second)."""
    import numpy as np
    import pyarrow as pa

    n = len(ind)
    bufs = ind.buffers()
    kind = "i" if pa.types.is_signed_integer(ind.type) else "u"
    vals = np.frombuffer(bufs[1], dtype=f"<{kind}{ind.type.byte_width}",
                         count=ind.offset + n)[ind.offset:].astype(np.int64)
    if ind.null_count:
        valid = np.unpackbits(np.frombuffer(bufs[0], dtype=np.uint8), bitorder="little",
                              count=ind.offset + n)[ind.offset:].astype(bool)
        vals[~valid] = -1
    return vals


def _numbers(c: Any) -> Any:
    """The values of a numeric (or timestamp) column without nulls, read in place from its
    buffer (pyarrow's ``to_numpy`` / ``view`` import pandas on first use: up to a second of a
    replay's start on a busy machine); other columns through ``to_numpy``."""
    import numpy as np
    import pyarrow as pa

    if isinstance(c, pa.ChunkedArray):
        c = c.combine_chunks()
    t = c.type
    kind = ("i" if pa.types.is_signed_integer(t) or pa.types.is_timestamp(t) else
            "u" if pa.types.is_unsigned_integer(t) else "f" if pa.types.is_floating(t) else "")
    if not kind or c.null_count:
        return c.to_numpy(zero_copy_only=False)
    return np.frombuffer(c.buffers()[1], dtype=f"<{kind}{t.byte_width}",
                         count=c.offset + len(c))[c.offset:]


def _spill_refs(c: Any) -> Any:
    """The ``spill`` members for a ``binary`` spill column: (length << 32) | offset of each
    value in the column's data buffer (0 when empty)."""
    import numpy as np
    import pyarrow as pa

    n = len(c)
    if c.type != pa.binary():
        c = c.cast(pa.binary())
    offs = np.frombuffer(c.buffers()[1], dtype=np.int32)[c.offset:c.offset + n + 1]
    offs = offs.astype(np.uint64)
    lens = offs[1:] - offs[:-1]
    return np.where(lens > 0, (lens << np.uint64(32)) | offs[:-1], np.uint64(0))


def spill_data(batch: Any, spec: ColumnSpec) -> Any:
    """The bytes the ``spill`` members of :func:`to_records` refer to (``None``: none)."""
    import pyarrow as pa

    if not any(role == "spill" for _c, _m, role, _t in spec.columns):
        return None
    c = batch.column("spill")
    if isinstance(c, pa.ChunkedArray):
        c = c.combine_chunks()
    if c.type != pa.binary():
        c = c.cast(pa.binary())
    data = c.buffers()[2]
    return data if data is not None and data.size else None


def new_records(spec: ColumnSpec, n: int) -> Any:
    """``n`` zeroed records of ``spec`` with their ``rtype`` set (for :func:`to_records`)."""
    import numpy as np

    out = np.zeros(n, dtype=spec.dtype)
    out["rtype"] = spec.rtype
    return out


def to_records(batch: Any, spec: ColumnSpec, intern: Any, out: Any = None) -> Any:
    """Records (numpy array of ``spec.dtype``) from an Arrow batch/table of ``spec``'s columns.

    ``intern(str) -> int`` gives the symbol id to store for a dictionary string (the replay's
    symbol table). Every other field is restored to the exact bytes recorded, except the
    ``spill`` member: it refers to the ``binary`` column's values (position = offset in
    :func:`spill_data`, which the replay hands to ``RecordRing.push``). ``out``: a
    contiguous array of ``spec.dtype`` and ``batch.num_rows`` records from :func:`new_records`
    (padding zero, ``rtype`` set) to fill -- reused, it saves an allocation per batch.
    """
    import numpy as np
    import pyarrow as pa

    from fastfeed._native.columns import scatter

    n = batch.num_rows
    if out is None:
        out = new_records(spec, n)
    ins = []
    used: dict[int, set[int]] = {}     # row -> spill offsets given to its spilled strings
    for (col, _member, role, _typ), dt in zip(spec.columns, spec.col_dtypes, strict=True):
        c = batch.column(col)
        if isinstance(c, pa.ChunkedArray):
            c = c.combine_chunks()
        if role == "dict":
            if not pa.types.is_dictionary(c.type):
                c = c.dictionary_encode()
            dic = c.dictionary.to_pylist()
            ids = np.array([0] + [intern(s) if s is not None else 0 for s in dic],
                           dtype=np.uint32)
            idx = _indices(c.indices)
            v = ids[idx + 1]
        elif role == "ts":
            v = _numbers(c)
        elif role == "spill":
            v = _spill_refs(c)
        elif role == "fixstr":
            texts = [b"" if s is None else s.encode() for s in c.to_pylist()]
            bit = spec.str_bits.get(_member)
            if bit is not None and "spill" in batch.schema.names:
                alt = _numbers(batch.column("alt")).astype(np.uint64)
                rows = np.nonzero((alt >> np.uint64(32 + bit)) & np.uint64(1))[0]
                if len(rows):
                    recs = batch.column("spill").to_pylist()
                    for i in rows.tolist():
                        texts[i] = _spilled_str_slot(recs[i] or b"", texts[i],
                                                     used.setdefault(i, set()))
            v = np.array(texts, dtype=dt)
        elif role == "array":
            flat = c
            while pa.types.is_fixed_size_list(flat.type):
                flat = flat.flatten()
            v = _numbers(flat)
        else:
            v = _numbers(c)
        ins.append(np.ascontiguousarray(v, dtype=dt.base if dt.subdtype else dt).view(np.uint8)
                   .reshape(-1))
    if n:
        scatter(out.view(np.uint8), spec.size, spec.members, ins)
    return out
