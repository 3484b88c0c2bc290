"""The hub's control channel (layer 7): a unix stream socket per hub, one connection per
consumer streamer.

Frames are ``u32 length`` (little-endian) + an orjson object; a zero-length frame is a
**wake-up** (the hub published something on the shared-memory stream: iceoryx2 gives Python no
file descriptor to wait on, this socket is what the consumer's event loop waits on).

Consumer -> hub: ``{"op": "hello", "feed": ...}``, ``{"op": "subscribe" | "unsubscribe",
"id": n, "type": ..., "symbols": [...]}``, ``{"op": "stats"}`` (the hub's counters); hub -> consumer: the hello reply (publisher id,
stream position, symbol snapshot, QoS), ``{"id": n, "ok": bool, "error": str?}`` replies,
``{"op": "error", "feed", "error"}`` (the feed's upstream failed for good; the hub stops), and
wake-ups. The connection's end is how each side learns that the other is gone (the hub then
drops that consumer's subscriptions; the consumer reconnects).
"""

from __future__ import annotations

import os
import struct
import tempfile
from typing import Any

import orjson

from fastfeed.errors import ProtocolError

__all__ = ["MAX_FRAME", "WAKE", "FrameReader", "encode", "socket_path"]

_LEN = struct.Struct("<I")
WAKE = _LEN.pack(0)
MAX_FRAME = 64 * 1024 * 1024


def socket_path(name: str) -> str:
    """Where hub ``name`` listens: ``$FASTFEED_HUB_DIR`` or ``$XDG_RUNTIME_DIR`` or the temp
    directory, file ``fastfeed-hub-<name>.sock``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid hub name {name!r}")
    base = (os.environ.get("FASTFEED_HUB_DIR") or os.environ.get("XDG_RUNTIME_DIR")
            or tempfile.gettempdir())
    return os.path.join(base, f"fastfeed-hub-{name}.sock")


def encode(msg: dict[str, Any]) -> bytes:
    body = orjson.dumps(msg)
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Incremental parser: ``feed(data)`` -> (number of wake-ups, list of messages)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def empty(self) -> bool:
        """No partial frame is waiting for more bytes."""
        return not self._buf

    def feed(self, data: bytes) -> tuple[int, list[dict[str, Any]]]:
        buf = self._buf
        buf += data
        wakes = 0
        msgs: list[dict[str, Any]] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n == 0:
                wakes += 1
                pos += 4
                continue
            if n > MAX_FRAME:
                raise ProtocolError("hub", f"control frame of {n} bytes")
            if end - pos - 4 < n:
                break
            try:
                msg = orjson.loads(bytes(buf[pos + 4:pos + 4 + n]))
            except orjson.JSONDecodeError as exc:
                raise ProtocolError("hub", f"bad control frame: {exc}") from None
            if not isinstance(msg, dict):
                raise ProtocolError("hub", "control frame is not an object")
            msgs.append(msg)
            pos += 4 + n
        del buf[:pos]
        return wakes, msgs
