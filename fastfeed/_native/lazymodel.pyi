"""Type stub for fastfeed._native.lazymodel (tastytrade SDK events converted lazily, per field)."""

from typing import Any

from typing_extensions import disjoint_base

from fastfeed._native.ring import Consumer, EventStream

KEEP: int
DECIMAL: int
INT: int
NO_DEFAULT: object

@disjoint_base
class LazyField:
    name: str
    source: str
    kind: int
    default: Any
    def __init__(self, name: str, source: str, kind: int, default: Any = ...) -> None: ...
    def __get__(self, obj: object, objtype: type | None = None, /) -> Any: ...
    def convert(self, v: Any) -> Any: ...

@disjoint_base
class LazyBatch:
    def __init__(self, batch: Any, model_cls: type) -> None: ...
    def __iter__(self) -> LazyBatch: ...
    def __next__(self) -> Any: ...
    def __len__(self) -> int: ...

@disjoint_base
class LazyStream(EventStream[Any]):
    def __init__(self, owner: Any, consumer: Consumer, model_cls: type) -> None: ...

def wrap(model_cls: type, event: Any) -> Any: ...
@disjoint_base
class LazyDict:
    fields: tuple[LazyField, ...]
    def __init__(self, fields: tuple[LazyField, ...]) -> None: ...
    def __get__(self, obj: object, objtype: type | None = None, /) -> Any: ...
    def __set__(self, obj: object, value: dict[str, Any], /) -> None: ...
