"""fastfeed.record: capture a feed (raw messages and decoded columns) for replay and research.

::

    streamer = DXLinkStreamer(session)
    rec = streamer.record("rec/2026-12-05", raw=True, columns=True)
    async with streamer: ...                      # closing the streamer finishes the files

    python -m fastfeed.record dxlink ws://127.0.0.1:8765 rec/ --token T --subscribe Quote:SPY,AAPL
    python -m fastfeed.hub --record rec/                 # the hub records its upstreams
    python -m fastfeed.record hub ipc://main rec/ --subscribe Quote:SPY   # a hub consumer

A recording is a directory: ``meta.json``; ``raw/raw-NNNNNN.ffraw`` (every message of both
directions with its receive time, zstd blocks -- the open segment uncompressed; see
:mod:`fastfeed.record._raw`);
``columns/<type>/seg-NNNNNN.parquet`` (closed segments) and ``.arrows`` (the open one, Arrow IPC
stream), one column per record field (see :mod:`fastfeed.record._columns`).
:func:`fastfeed.replay.open` plays it back through the streamers' API;
:func:`read_columns` gives a type's records as a ``pyarrow.Table``; pandas, polars and DuckDB
read the Parquet files directly. :func:`import_jsonl` turns a JSON-lines transcript of both
directions into a raw recording. The writing happens in a writer process fed through shared
memory (:mod:`fastfeed.record._recorder`, :mod:`fastfeed.record._writer`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

from fastfeed.record._raw import (
    NOTE,
    RECV,
    SENT,
    Message,
    RawWriter,
    encode_records,
    iter_messages,
    redact,
)
from fastfeed.record._read import column_segments, column_types, read_columns, read_meta
from fastfeed.record._recorder import META_FILE, Recorder
from fastfeed.record._writer import compact

__all__ = [
    "LAYERS",
    "NOTE",
    "RECV",
    "SENT",
    "Message",
    "Recorder",
    "column_segments",
    "column_types",
    "compact",
    "import_jsonl",
    "iter_messages",
    "read_columns",
    "read_meta",
    "record_streamers",
]

#: the recording layers (``python -m fastfeed.hub --record-layers raw,columns``)
LAYERS = ("raw", "columns")


def record_streamers(streamers: dict[str, Any], directory: str | os.PathLike[str],
                     layers: str | Iterable[str] = LAYERS, **options: Any) -> list[Recorder]:
    """``streamer.record(directory/NAME, ...)`` for each ``NAME: streamer`` (the hub records its
    upstream streamers this way). ``layers``: "raw", "columns" or both (comma-separated or an
    iterable). Returns the recorders (closing a streamer finishes its recording)."""
    chosen = {x.strip() for x in (layers.split(",") if isinstance(layers, str) else layers)
              if x.strip()}
    unknown = chosen - set(LAYERS)
    if unknown or not chosen:
        raise ValueError(f"recording layers: {sorted(unknown) or 'none'} (known: raw, columns)")
    return [s.record(os.path.join(os.fspath(directory), name), raw="raw" in chosen,
                     columns="columns" in chosen, **options)
            for name, s in streamers.items()]


def _feed_types(feed: str) -> dict[str, str]:
    if feed == "dxlink":
        from fastfeed._native.dxlink import DXLinkDecoder

        return {w: r.layout for w, r in DXLinkDecoder().rings.items()}
    from fastfeed._native.polygon import PolygonDecoder

    return {w: r.layout for w, r in PolygonDecoder().rings.items()}


def _guess_feed(msgs: Iterable[Any]) -> str:
    for m in msgs:
        if isinstance(m, dict) and m.get("type") in ("SETUP", "AUTH_STATE", "FEED_DATA",
                                                     "CHANNEL_OPENED", "FEED_CONFIG"):
            return "dxlink"
        if isinstance(m, list) and m and isinstance(m[0], dict) and "ev" in m[0]:
            return "polygon"
    return "dxlink"


def import_jsonl(source: str | os.PathLike[str], path: str | os.PathLike[str], *,
                 feed: str | None = None, cluster: str | None = None,
                 conns: Iterable[int] | None = None) -> dict[str, int]:
    """Import a JSON-lines transcript of both directions as a raw recording in ``path``.

    Each line: ``{"t": seconds, "conn": n, "dir": "S->C" | "C->S", "msg": <JSON value or the
    message text>}`` (the format of ``fixtures/tastytrade-client/*.jsonl``; ``dir`` may also be
    ``"recv"`` / ``"sent"``). A JSON value is serialised compactly; a string is kept as sent.
    ``conns``: only these connection numbers (e.g. the DXLink one of a transcript that also
    holds an account-streamer connection). ``feed``: "dxlink" / "polygon" (guessed if None).
    Returns counts of messages imported by direction.
    """
    rows = []
    with open(source, "rb") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    keep = set(conns) if conns is not None else None
    rows = [r for r in rows if keep is None or r.get("conn", 1) in keep]
    if feed is None:
        feed = _guess_feed(r.get("msg") for r in rows)
    header = {"format": "fastfeed-recording", "version": 1, "feed": feed,
              "streamer": "import_jsonl", "cluster": cluster, "created_ns": time.time_ns(),
              "types": _feed_types(feed), "imported_from": os.path.basename(os.fspath(source))}
    out = os.fspath(path)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, META_FILE), "w") as fm:
        json.dump(header, fm)
    items: list[tuple[int, int, int, bytes]] = []
    counts = {"recv": 0, "sent": 0}
    conn = None
    last_ts = 0
    for r in rows:
        ts = round(float(r.get("t", 0)) * 1e9)
        c = r.get("conn", 1)
        if c != conn:
            if conn is not None:
                items.append((last_ts, NOTE, 0, json.dumps({"event": "close", "conn": conn}).encode()))
            items.append((ts, NOTE, 0, json.dumps({"event": "open", "conn": c}).encode()))
            conn = c
        d = str(r.get("dir", "S->C"))
        kind = SENT if d in ("C->S", "sent", "send", "out") else RECV
        msg = r.get("msg")
        payload = msg.encode() if isinstance(msg, str) else json.dumps(
            msg, separators=(",", ":"), ensure_ascii=False).encode()
        items.append((ts, kind, 0, redact(payload) if kind == SENT else payload))
        counts["sent" if kind == SENT else "recv"] += 1
        last_ts = ts
    if conn is not None:
        items.append((last_ts, NOTE, 0, json.dumps({"event": "close", "conn": conn}).encode()))
    writer = RawWriter(os.path.join(out, "raw"), header, roll_bytes=1 << 62, roll_seconds=None)
    writer.write(encode_records(items), len(items), time.monotonic())
    writer.close()
    return counts
