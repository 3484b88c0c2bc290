"""Names a package loads on first use (PEP 562): ``__getattr__`` / ``__dir__`` for a package's
``__init__``, so importing it stays cheap and free of import cycles (the compiled modules, the
feed packages and the simulators import each other's public paths)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(namespace: dict[str, Any], lazy: Mapping[str, str], *,
               submodules: Iterable[str] = (), hidden: Iterable[str] = ()
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose ``globals()`` is ``namespace``:
    ``lazy`` maps a name to the module defining it (imported on first use, then cached in the
    package); ``submodules`` are the package's own modules given as attributes; ``hidden`` are
    names ``dir()`` leaves out (the package's own typing helpers)."""
    package = namespace["__name__"]
    subs = frozenset(submodules)
    hide = frozenset(hidden)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted((set(namespace) - hide) | set(lazy))

    return __getattr__, __dir__
