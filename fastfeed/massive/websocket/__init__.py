"""``massive.websocket``'s names (``from fastfeed.massive.websocket import WebSocketClient``)."""

from __future__ import annotations

from fastfeed.massive._client import WebSocketClient
from fastfeed.massive.websocket import models
from fastfeed.massive.websocket.models import *  # noqa: F403 - the names of massive.websocket

__all__ = ["WebSocketClient"]
__all__ += models.__all__
