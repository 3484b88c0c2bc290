"""numpy views of fastfeed records (needs numpy, an optional dependency)."""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

from fastfeed._records_meta import LAYOUTS

__all__ = ["dtype_for", "require_numpy", "LAYOUTS"]


def require_numpy() -> ModuleType:
    """``numpy``, or an ImportError that names the extra to install."""
    try:
        import numpy
    except ImportError as exc:
        raise ModuleNotFoundError(
            "this needs numpy, an optional dependency of fastfeed: "
            "pip install 'fastfeed[numpy]'", name="numpy") from exc
    return numpy


@cache
def dtype_for(layout: str) -> Any:
    """The numpy structured dtype of ``layout`` (e.g. ``"Quote"``), same offsets as the C struct."""
    np = require_numpy()

    lay = LAYOUTS[layout]
    names, formats, offsets = [], [], []
    for m in lay["members"]:
        if m["np"] is None:
            continue
        names.append(m["name"])
        formats.append(tuple(m["np"]) if isinstance(m["np"], (list, tuple)) else m["np"])
        offsets.append(m["offset"])
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": lay["size"]})
