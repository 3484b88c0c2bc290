"""Type stubs for fastfeed._native.pgdict (polygon records -> dicts, dispatch loops)."""

from collections.abc import Callable
from typing import Any

from typing_extensions import disjoint_base

from fastfeed._native.ring import EventBatch

@disjoint_base
class Plan:
    """How to turn one record type (rtype) into a dict (made by this module, internal)."""
    @property
    def layout(self) -> str: ...

def record_to_dict(batch: EventBatch[Any], i: int) -> dict[str, Any]: ...
def to_dicts(batch: EventBatch[Any]) -> list[dict[str, Any]]: ...
def dispatch_dicts(
    batch: EventBatch[Any], start: int, handler: Callable[[dict[str, Any]], Any]
) -> tuple[int, Any, bool]: ...
def dispatch_events(
    batch: EventBatch[Any], start: int, handler: Callable[[Any], Any]
) -> tuple[int, Any, bool]: ...
def merge_order(batches: list[EventBatch[Any]]) -> bytes: ...
def dispatch_merged(
    batches: list[EventBatch[Any]],
    handlers: list[Callable[[Any], Any] | None],
    as_dicts: list[bool],
    order: bytes,
    start: int,
) -> tuple[int, Any, bool, int]: ...
