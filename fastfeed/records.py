"""numpy views of fastfeed records (needs numpy, an optional dependency)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastfeed._records_meta import LAYOUTS

__all__ = ["dtype_for", "LAYOUTS"]


@lru_cache(maxsize=None)
def dtype_for(layout: str) -> Any:
    """The numpy structured dtype of ``layout`` (e.g. ``"Quote"``), same offsets as the C struct."""
    import numpy as np

    lay = LAYOUTS[layout]
    names, formats, offsets = [], [], []
    for m in lay["members"]:
        if m["np"] is None:
            continue
        names.append(m["name"])
        formats.append(tuple(m["np"]) if isinstance(m["np"], (list, tuple)) else m["np"])
        offsets.append(m["offset"])
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": lay["size"]})
