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
=====================================  ====================================================

The schema metadata holds ``fastfeed.layout``, ``fastfeed.wire_type`` and the record size, so a
file converts back to records (``to_records``) byte for byte in every field.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastfeed._records_meta import LAYOUTS

__all__ = ["ColumnBuffers", "ColumnSpec", "spec_for", "to_arrow", "to_records"]


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
    """Reusable per-column buffers of one layout (the writer thread fills them batch after
    batch: no fresh allocation, hence no page faults, per batch)."""

    def __init__(self, spec: ColumnSpec) -> None:
        self.spec = spec
        self.cap = 0
        self.cols: list[Any] = []

    def fill(self, pieces: list[tuple[Any, int]]) -> int:
        """Copy the members of ``pieces`` (``(records array, n)``) into the columns, in order;
        returns the number of rows."""
        import numpy as np

        from fastfeed._native.columns import gather

        spec = self.spec
        total = sum(n for _a, n in pieces)
        if total > self.cap:
            self.cap = max(total, 4096)
            self.cols = [np.empty((self.cap,) + d.shape, dtype=d.base) for d in spec.col_dtypes]
        pos = 0
        for arr, n in pieces:
            if not n:
                continue
            outs = [c[pos:pos + n].view(np.uint8).reshape(-1) for c in self.cols]
            gather(np.ascontiguousarray(arr[:n]).view(np.uint8), spec.size, spec.members, outs)
            pos += n
        return total

    def batch(self, n: int, dictionary: Any, wire_type: str) -> Any:
        """A ``pyarrow.RecordBatch`` of the first ``n`` rows (it reads the buffers in place:
        write it before the next ``fill``)."""
        return _batch(self.spec, [c[:n] for c in self.cols], dictionary, wire_type)


def to_arrow(records: Any, spec: ColumnSpec, dictionary: Any, wire_type: str) -> Any:
    """A ``pyarrow.RecordBatch`` of ``records`` (numpy array of ``spec.dtype``).

    ``dictionary``: a ``pyarrow`` string array indexed by symbol id (entry 0 unused) -- the
    recording's symbol table at the time of the batch.
    """
    bufs = ColumnBuffers(spec)
    n = bufs.fill([(records, len(records))])
    return bufs.batch(n, dictionary, wire_type)


def _batch(spec: ColumnSpec, cols: list[Any], dictionary: Any, wire_type: str) -> Any:
    import pyarrow as pa

    arrays = []
    for (_col, _member, role, typ), v in zip(spec.columns, cols, strict=True):
        if role == "dict":
            arrays.append(_dict_column(v, dictionary))
        elif role == "ts":
            arrays.append(pa.array(v, type=pa.int64()).view(typ))
        elif role == "fixstr":
            arr = pa.array(v, type=pa.binary())
            try:
                arrays.append(arr.cast(pa.string()))
            except pa.ArrowInvalid:
                arrays.append(pa.array([b.decode("utf-8", "replace") for b in v.tolist()],
                                       type=pa.string()))
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


def new_records(spec: ColumnSpec, n: int) -> Any:
    """``n`` zeroed records of ``spec`` with their ``rtype`` set (for :func:`to_records`)."""
    import numpy as np

    out = np.zeros(n, dtype=spec.dtype)
    out["rtype"] = spec.rtype
    return out


def to_records(batch: Any, spec: ColumnSpec, intern: Any, out: Any = None) -> Any:
    """Records (numpy array of ``spec.dtype``) from an Arrow batch/table of ``spec``'s columns.

    ``intern(str) -> int`` gives the symbol id to store for a dictionary string (the replay's
    symbol table). Every other field is restored to the exact bytes recorded. ``out``: a
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
            idx = c.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            v = ids[idx + 1]
        elif role == "ts":
            v = c.view(pa.int64()).to_numpy(zero_copy_only=False)
        elif role == "fixstr":
            v = np.array([b"" if s is None else s.encode() for s in c.to_pylist()], dtype=dt)
        elif role == "array":
            flat = c
            while pa.types.is_fixed_size_list(flat.type):
                flat = flat.flatten()
            v = flat.to_numpy(zero_copy_only=False)
        else:
            v = c.to_numpy(zero_copy_only=False)
        ins.append(np.ascontiguousarray(v, dtype=dt.base if dt.subdtype else dt).view(np.uint8)
                   .reshape(-1))
    if n:
        scatter(out.view(np.uint8), spec.size, spec.members, ins)
    return out
