"""Stub of fastfeed._native.transport (the picows transport adapter)."""

from collections.abc import Callable
from typing import Any, Self

from picows import WSListener
from typing_extensions import disjoint_base

from fastfeed._native.core import ProtocolCore

DEFAULT_MAX_MESSAGE_SIZE: int
CAPTURE_HEADER: str
CAPTURE_RECV: int
CAPTURE_SENT: int
CAPTURE_NOTE: int
CAPTURE_BINARY: int

def monotonic_ns() -> int: ...

@disjoint_base
class MessageCore(ProtocolCore):
    decode_text: bool
    def __init__(self, decode_text: bool = ..., feed_name: str = ...) -> None: ...

@disjoint_base
class FeedListener(WSListener):
    core: Any
    transport: Any
    on_wake: Callable[[], None] | None
    on_disconnect: Callable[[FeedListener], None] | None
    on_error: Callable[[BaseException], None] | None
    max_message_size: int
    last_recv_ns: int
    paused: bool
    connected: bool
    n_frames: int
    n_reads: int
    n_wakes: int
    n_errors: int
    n_fragments: int
    n_sent: int
    n_oversize: int
    close_code: int | None
    close_reason: str
    close_received: bool
    capture_limit: int
    capture_flush_bytes: int
    on_capture: Callable[[], None] | None
    capture_sent_filter: Callable[[bytes], bytes] | None
    n_captured: int
    n_capture_dropped: int
    n_capture_dropped_bytes: int
    def __new__(cls, core: Any, on_wake: Callable[[], None] | None = ...,
                on_disconnect: Callable[[FeedListener], None] | None = ...,
                on_error: Callable[[BaseException], None] | None = ...,
                max_message_size: int = ...) -> Self: ...
    def flush(self) -> int: ...
    def send(self, message: bytes | str) -> bool: ...
    def close(self, code: int = ..., reason: str = ...) -> None: ...
    def abort(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def maybe_resume(self) -> bool: ...
    def start_capture(self, buffer: Any, flush_bytes: int = ...,
                      on_capture: Callable[[], None] | None = ...,
                      sent_filter: Callable[[bytes], bytes] | None = ...) -> None: ...
    def swap_capture(self, new_buffer: Any) -> tuple[Any, int, int]: ...
    def stop_capture(self) -> tuple[Any, int, int]: ...
    def capture_note(self, payload: bytes, ts_ns: int = ...) -> bool: ...
    @property
    def capture_len(self) -> int: ...
    @property
    def idle_ns(self) -> int: ...
    @property
    def stats(self) -> dict[str, int]: ...
