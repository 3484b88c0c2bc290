"""Type stubs for fastfeed._native.polygon (polygon/Massive protocol core)."""

from collections.abc import Iterable
from typing import Any, ClassVar, Final, TypeVar, overload

from typing_extensions import disjoint_base

from fastfeed._native.core import ProtocolCore
from fastfeed._native.events import _Event
from fastfeed._native.ring import EventBatch
from fastfeed.polygon.session import PolygonSession as PolygonSession

_E = TypeVar("_E", bound=_Event)

#: the decoder build in use, chosen at import: "x86-64-v3" or "baseline" (FASTFEED_CPU=baseline)
CPU_PATH: str

__all__ = [
    "PolygonDecoder",
    "PolygonSession",
    "PolygonStatus",
    "Connected",
    "AuthSuccess",
    "AuthFailed",
    "AuthTimeout",
    "AuthRequired",
    "SubscriptionAck",
    "StatusError",
    "MaxConnections",
    "ForceDisconnect",
    "SlowConsumer",
    "UnknownStatus",
    "CLUSTERS",
    "CLUSTER_PREFIXES",
    "build_channels",
    "split_params",
]

DEFAULT_MAX_MESSAGE_SIZE: Final[int]
DEFAULT_MAX_SYMBOLS: Final[int]
CLUSTERS: Final[tuple[str, ...]]
CLUSTER_PREFIXES: Final[dict[str, tuple[str, ...]]]

class PolygonStatus:
    STATUS: ClassVar[str | None]
    status: str | None
    message: str | None
    def __init__(self, status: str | None, message: str | None = None) -> None: ...

class Connected(PolygonStatus): ...
class AuthSuccess(PolygonStatus): ...
class AuthFailed(PolygonStatus): ...
class AuthTimeout(PolygonStatus): ...
class AuthRequired(PolygonStatus): ...

class SubscriptionAck(PolygonStatus):
    @property
    def action(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...

class StatusError(PolygonStatus): ...
class MaxConnections(PolygonStatus): ...
class ForceDisconnect(PolygonStatus): ...
class SlowConsumer(PolygonStatus): ...
class UnknownStatus(PolygonStatus): ...

STATUS_CLASSES: Final[dict[str, type[PolygonStatus]]]

def status_event(obj: dict[str, Any]) -> PolygonStatus: ...

@disjoint_base
class PolygonDecoder(ProtocolCore):
    cluster: str
    max_message_size: int
    raw_frames: list[str] | None
    def __init__(
        self,
        cluster: str = "stocks",
        *,
        ring_bytes: int = ...,
        policy: str = "drop_oldest",
        max_message_size: int = ...,
        max_symbols: int = ...,
    ) -> None: ...
    def feed(self, message: bytes | bytearray | memoryview | str, /) -> int: ...
    @overload
    def drain(self, event_type: type[_E], max_records: int = ...) -> EventBatch[_E]: ...
    @overload
    def drain(self, event_type: str, max_records: int = ...) -> EventBatch[Any]: ...
    def events_received(self) -> list[PolygonStatus]: ...
    def data_to_send(self) -> list[bytes]: ...
    def _on_status(self, event: PolygonStatus) -> None: ...
    @property
    def stats(self) -> dict[str, int]: ...

def build_channels(
    cluster: str,
    prefix: str,
    symbols: str | Iterable[str] | None = None,
    force_uppercase: bool = True,
) -> list[str]: ...
def split_params(channels: Iterable[str], max_bytes: int = 4000) -> list[str]: ...
