"""The polygon/Massive client session (sans-I/O, typed Python) on top of the C decoder.

:class:`PolygonSession` *is* a :class:`fastfeed.PolygonDecoder` (data frames go from the
transport straight into the C decoder and the rings); status messages reach Python through the
decoder's ``_on_status`` hook, which this class extends. It owns the connection sequence:
``connected`` -> ``auth`` (queued when ``connected`` arrives, with an ``api_key``) ->
``auth_success`` -> the desired channels' ``subscribe`` messages (split so that no ``params``
exceeds ``max_params_bytes``), and again after each reconnect (``connection_lost()`` then feed the
new connection's messages).

States (``state``): ``"connecting"`` (until the server's ``connected``), ``"connected"``,
``"authenticating"`` (``auth`` sent), ``"authenticated"``, ``"auth_failed"``, ``"closed"``
(``auth_timeout``, ``max_connections``, ``force_disconnect``, ``slow_consumer``). The API key
is never shown: status messages that echo it are redacted.

Moved here from the Cython module (issue #12); ``fastfeed._native.polygon.PolygonSession``
still resolves to this class.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from fastfeed._native.polygon import (
    AuthFailed,
    AuthSuccess,
    AuthTimeout,
    Connected,
    ForceDisconnect,
    MaxConnections,
    PolygonDecoder,
    PolygonStatus,
    SlowConsumer,
    build_channels,
    split_params,
)

__all__ = ["PolygonSession"]

_CLOSING = (AuthTimeout, MaxConnections, ForceDisconnect, SlowConsumer)


class PolygonSession(PolygonDecoder):
    """``PolygonSession(cluster="stocks", api_key=None, *, max_params_bytes=4000, **decoder)``;
    see the module docstring."""

    def __init__(self, cluster: str = "stocks", api_key: str | None = None, *,
                 max_params_bytes: int = 4000, **kwargs: Any) -> None:
        super().__init__(cluster, **kwargs)
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError("api_key must be a str")
        self._api_key = api_key
        self.state = "connecting"
        self.max_params_bytes = int(max_params_bytes)
        self._desired: dict[str, None] = {}      # channel -> None (insertion-ordered set)
        self.last_status: PolygonStatus | None = None

    def __repr__(self) -> str:
        return (f"<PolygonSession cluster={self.cluster!r} state={self.state!r} "
                f"channels={len(self._desired)}>")

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The desired channels (``"T.AAPL"``...), in subscription order."""
        return tuple(self._desired)

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def _redact(self, text: str | None) -> str | None:
        if isinstance(text, str) and self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text

    def auth(self, api_key: str | None = None) -> None:
        """Queue ``{"action":"auth","params":KEY}`` (the key given here or at construction)."""
        if api_key is not None:
            if not isinstance(api_key, str):
                raise TypeError("api_key must be a str")
            self._api_key = api_key
        if not self._api_key:
            raise ValueError("no API key")
        self.outbox.append(orjson.dumps({"action": "auth", "params": self._api_key}))
        self.state = "authenticating"

    def _queue(self, action: str, channels: Iterable[str]) -> None:
        for params in split_params(channels, self.max_params_bytes):
            self.outbox.append(orjson.dumps({"action": action, "params": params}))

    def subscribe(self, prefix: str, symbols: str | Iterable[str] | None = None, *,
                  force_uppercase: bool = True) -> list[str]:
        """Add channels; returns them (``["T.AAPL", ...]``). Sent now when authenticated."""
        chans = build_channels(self.cluster, prefix, symbols, force_uppercase)
        new = [c for c in chans if c not in self._desired]
        for c in new:
            self._desired[c] = None
        if new and self.state == "authenticated":
            self._queue("subscribe", new)
        return chans

    def unsubscribe(self, prefix: str, symbols: str | Iterable[str] | None = None, *,
                    force_uppercase: bool = True) -> list[str]:
        """Remove channels; returns them. Sent now when authenticated."""
        chans = build_channels(self.cluster, prefix, symbols, force_uppercase)
        for c in chans:
            self._desired.pop(c, None)
        if self.state == "authenticated":
            self._queue("unsubscribe", chans)
        return chans

    def connection_lost(self) -> None:
        """Forget the connection state (keep the desired channels for the next connection)."""
        self.state = "connecting"

    def _on_status(self, event: PolygonStatus) -> None:
        if event.message is not None:
            event.message = self._redact(event.message)
        self.last_status = event
        cls = type(event)
        if cls is Connected:
            self.state = "connected"
            if self._api_key:
                self.auth()
        elif cls is AuthSuccess:
            self.state = "authenticated"
            if self._desired:
                self._queue("subscribe", list(self._desired))
        elif cls is AuthFailed:
            self.state = "auth_failed"
        elif cls in _CLOSING:
            self.state = "closed"
        self.control.append(event)
