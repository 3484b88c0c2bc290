"""Type stubs for fastfeed._native.pgdict (polygon records -> dicts, dispatch loops)."""

from collections.abc import Callable
from typing import Any

from fastfeed._native.ring import EventBatch

def record_to_dict(batch: EventBatch, i: int) -> dict[str, Any]: ...
def to_dicts(batch: EventBatch) -> list[dict[str, Any]]: ...
def dispatch_dicts(
    batch: EventBatch, start: int, handler: Callable[[dict[str, Any]], Any]
) -> tuple[int, Any, bool]: ...
def dispatch_events(
    batch: EventBatch, start: int, handler: Callable[[Any], Any]
) -> tuple[int, Any, bool]: ...
def merge_order(batches: list[EventBatch]) -> bytes: ...
def dispatch_merged(
    batches: list[EventBatch],
    handlers: list[Callable[[Any], Any] | None],
    as_dicts: list[bool],
    order: bytes,
    start: int,
) -> tuple[int, Any, bool, int]: ...
