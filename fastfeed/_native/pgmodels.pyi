"""Type stubs for fastfeed._native.pgmodels (polygon records -> model objects in wire order)."""

from typing import Any

from fastfeed._native.events import _Event
from fastfeed._native.ring import EventBatch

def build_models(
    batches: list[EventBatch[Any]], classes: list[type | None], order: bytes | None = None
) -> list[Any]: ...
def record_of(event: _Event) -> bytes: ...
