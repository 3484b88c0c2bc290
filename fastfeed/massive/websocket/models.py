"""``massive.websocket.models``'s names: enums, models, ``WebSocketMessage``, ``parse``."""

from __future__ import annotations

from fastfeed.massive import _models
from fastfeed.massive._models import *  # noqa: F403 - the names of massive.websocket.models

__all__: list[str] = []
__all__ += _models.__all__
