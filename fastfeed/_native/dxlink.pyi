"""Type stub for fastfeed._native.dxlink (DXLink sans-I/O decoder and session)."""

from typing import Any, TypeVar, overload

from typing_extensions import disjoint_base

from fastfeed._native.events import ENUM_NAMES as ENUM_NAMES
from fastfeed._native.events import _Event
from fastfeed._native.ring import EventBatch, RecordRing
from fastfeed._native.symbols import SymbolTable
from fastfeed.dxlink.session import (
    AUTHORIZED as AUTHORIZED,
)
from fastfeed.dxlink.session import (
    CH_CANCELLING as CH_CANCELLING,
)
from fastfeed.dxlink.session import (
    CH_CLOSED as CH_CLOSED,
)
from fastfeed.dxlink.session import (
    CH_OPENED as CH_OPENED,
)
from fastfeed.dxlink.session import (
    CH_REQUESTED as CH_REQUESTED,
)
from fastfeed.dxlink.session import (
    CHANNELS as CHANNELS,
)
from fastfeed.dxlink.session import (
    INITIAL as INITIAL,
)
from fastfeed.dxlink.session import (
    MAX_SUBSCRIPTION_BYTES as MAX_SUBSCRIPTION_BYTES,
)
from fastfeed.dxlink.session import (
    SETUP_SENT as SETUP_SENT,
)
from fastfeed.dxlink.session import (
    UNAUTHORIZED as UNAUTHORIZED,
)
from fastfeed.dxlink.session import (
    DXLinkSession as DXLinkSession,
)

#: the decoder build in use, chosen at import: "x86-64-v3" or "baseline" (FASTFEED_CPU=baseline)
CPU_PATH: str

_E = TypeVar("_E", bound=_Event)

DX_TYPES: tuple[str, ...]
DEFAULT_MAX_MESSAGE_SIZE: int

def enum_name(enum: str, code: int) -> str | None: ...
def enum_code(enum: str, name: str) -> int: ...

class ControlEvent:
    channel: int

class SetupReceived(ControlEvent):
    version: str | None
    keepalive_timeout: float | None
    accept_keepalive_timeout: float | None
    def __init__(self, version: str | None, keepalive_timeout: float | None,
                 accept_keepalive_timeout: float | None, channel: int = 0) -> None: ...

class AuthState(ControlEvent):
    state: str | None
    user_id: str | None
    rejected: bool
    def __init__(self, state: str | None, user_id: str | None = None, rejected: bool = False,
                 channel: int = 0) -> None: ...

class ChannelOpened(ControlEvent):
    service: str | None
    parameters: dict[str, Any] | None
    def __init__(self, channel: int, service: str | None = None,
                 parameters: dict[str, Any] | None = None) -> None: ...

class ChannelClosed(ControlEvent):
    def __init__(self, channel: int) -> None: ...

class FeedConfig(ControlEvent):
    aggregation_period: float | None
    data_format: str | None
    event_fields: dict[str, list[str]] | None
    def __init__(self, channel: int, aggregation_period: float | None = None,
                 data_format: str | None = None,
                 event_fields: dict[str, list[str]] | None = None) -> None: ...

class ErrorReceived(ControlEvent):
    error: str | None
    message: str | None
    def __init__(self, channel: int, error: str | None = None, message: str | None = None) -> None: ...

class DomConfig(ControlEvent):
    aggregation_period: float | None
    depth_limit: int | None
    data_format: str | None
    order_fields: list[str] | None
    def __init__(self, channel: int, aggregation_period: float | None = None,
                 depth_limit: int | None = None, data_format: str | None = None,
                 order_fields: list[str] | None = None) -> None: ...

class KeepaliveReceived(ControlEvent):
    def __init__(self, channel: int = 0) -> None: ...

@disjoint_base
class DXLinkDecoder:
    ts_recv: int
    outbox: list[bytes]
    control: list[ControlEvent]
    error: Exception | None
    n_messages: int
    n_events: int
    n_bytes: int
    n_errors: int
    n_skipped: int
    n_overflowed: int
    n_bad_events: int
    n_unknown_enums: int
    n_sent: int
    @property
    def symbols(self) -> SymbolTable: ...
    @property
    def rings(self) -> dict[str, RecordRing]: ...
    @property
    def feed_name(self) -> str: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def stats(self) -> dict[str, int]: ...
    def __init__(self, *, policy: str = "drop_oldest", ring_bytes: int = ...,
                 max_message_size: int = ...) -> None: ...
    def feed(self, message: bytes | bytearray | memoryview | str, *, sent: bool = False) -> int: ...
    @overload
    def drain(self, event_type: type[_E], max_records: int = ...) -> EventBatch[_E]: ...
    @overload
    def drain(self, event_type: str, max_records: int = ...) -> EventBatch[Any]: ...
    def ring(self, event_type: type | str) -> RecordRing: ...
    def data_to_send(self) -> list[bytes]: ...
    def events_received(self) -> list[ControlEvent]: ...
    def under_pressure(self) -> bool: ...
    def event_fields(self, channel: int, event_type: type | str) -> tuple[str, ...]: ...
    def reset_channels(self) -> None: ...
    def enum_name(self, enum: str, code: int) -> str | None: ...
    def _wire_name(self, event_type: type | str) -> str: ...
    def _dispatch(self, typ: str, ch: int, msg: dict[str, Any]) -> None: ...
    def _on_sent(self, raw: bytes) -> None: ...

