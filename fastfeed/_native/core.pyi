from typing import Any, TypeVar, overload

from typing_extensions import disjoint_base

from fastfeed._native.events import _Event
from fastfeed._native.ring import EventBatch, RecordRing
from fastfeed._native.symbols import SymbolTable

_E = TypeVar("_E", bound=_Event)

DEFAULT_RING_BYTES: int

def ring_capacity_for(layout: str, ring_bytes: int = ...) -> int: ...
def now_ns() -> int: ...

@disjoint_base
class ProtocolCore:
    ts_recv: int
    binary: bool
    symbols: SymbolTable
    rings: dict[str, RecordRing]
    outbox: list[bytes]
    control: list[Any]
    error: Exception | None
    feed_name: str
    n_messages: int
    n_events: int
    n_bytes: int
    n_errors: int
    n_skipped: int
    n_overflowed: int
    def under_pressure(self) -> bool: ...
    def feed(self, message: bytes | bytearray | memoryview | str, /) -> int: ...
    def ring(self, event_type: type | str) -> RecordRing: ...
    @overload
    def drain(self, event_type: type[_E], max_records: int = ...) -> EventBatch[_E]: ...
    @overload
    def drain(self, event_type: str, max_records: int = ...) -> EventBatch[Any]: ...
    def data_to_send(self) -> list[bytes]: ...
    def events_received(self) -> list[Any]: ...
    @property
    def stats(self) -> dict[str, int]: ...
