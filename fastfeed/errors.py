"""fastfeed's exceptions and warnings.

::

    FastFeedError
    ├── ProtocolError (also ValueError)     malformed frame / message, unexpected message
    ├── AuthenticationError                  token or API key rejected (never retried)
    ├── SubscriptionError                    a subscription was rejected or not acknowledged
    ├── StreamerError                        the server reported a fatal error (DXLink ERROR
    │                                        UNSUPPORTED_PROTOCOL)
    ├── ConnectionFailedError                the first connection could not be made (unreachable,
    │                                        refused, HTTP 5xx/429, never ready) within open_timeout
    ├── ConfigurationError (also ValueError) the URL is wrong: upgrade refused with a 4xx other
    │                                        than 401/403/429, or not a websocket endpoint
    ├── StreamerClosedError                  subscribe / send / listen after close()
    ├── EventLoopError (also RuntimeError)   a streamer used from another event loop than its own
    ├── ConnectionClosed                     the connection ended; ``code`` and ``reason``
    │   ├── ConnectionClosedOK
    │   └── ConnectionClosedError
    ├── ReconnectionExhausted                the reconnect budget ran out
    └── MaxConnectionsError                  polygon ``max_connections``: too many connections
    FastFeedWarning (Warning)
    └── RingOverflowWarning                  a consumer fell a whole ring behind (drop-oldest)

Messages never contain secrets (tokens, API keys).
"""

from __future__ import annotations

__all__ = [
    "FastFeedError",
    "ProtocolError",
    "SymbolTableFull",
    "AuthenticationError",
    "SubscriptionError",
    "StreamerError",
    "ConnectionFailedError",
    "ConfigurationError",
    "StreamerClosedError",
    "EventLoopError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "ReconnectionExhausted",
    "MaxConnectionsError",
    "FastFeedWarning",
    "RingOverflowWarning",
]


class FastFeedError(Exception):
    """Root of every fastfeed exception."""


class ProtocolError(FastFeedError, ValueError):
    """A malformed or unexpected message.

    ``feed`` ("dxlink", "polygon", "account"), ``reason``, and where known ``event_type``,
    ``field`` and ``offset`` (byte offset in the message).
    """

    def __init__(
        self,
        feed: str,
        reason: str,
        *,
        event_type: str | None = None,
        field: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.feed = feed
        self.reason = reason
        self.event_type = event_type
        self.field = field
        self.offset = offset
        where = []
        if event_type:
            where.append(f"event {event_type}")
        if field:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"at byte {offset}")
        suffix = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{feed}: {reason}{suffix}")


class SymbolTableFull(ProtocolError):
    """A message named a new symbol while the decoder's symbol table held ``max_symbols``.

    The events of that symbol are skipped (counted in ``stats["symbols_refused"]`` and
    ``stats["skipped"]``); events of symbols already known keep flowing.
    """


class AuthenticationError(FastFeedError):
    """The server rejected the credentials (or the upgrade got HTTP 401/403). Not retried.

    ``status``: the HTTP status when the upgrade was refused, else ``None``.
    """

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class SubscriptionError(FastFeedError):
    """A subscription request was rejected (or its acknowledgement never came)."""


class StreamerError(FastFeedError):
    """The server reported an error that ends the stream (e.g. a DXLink ERROR message)."""

    def __init__(self, message: str, *, error: str | None = None, channel: int | None = None) -> None:
        self.error = error
        self.channel = channel
        super().__init__(message)


class ConnectionFailedError(FastFeedError):
    """The first connection failed within ``open_timeout``.

    ``url`` (without query string or credentials) and ``status`` (the HTTP status of a refused
    upgrade, else ``None``). The underlying exception is ``__cause__``.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class ConfigurationError(FastFeedError, ValueError):
    """The endpoint is wrong (HTTP 4xx on the upgrade, not a websocket). Not retried.

    ``url`` (without query string or credentials) and ``status`` as for
    :class:`ConnectionFailedError`.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class StreamerClosedError(FastFeedError):
    """The streamer was closed: it takes no new subscription, message or listener."""


class EventLoopError(FastFeedError, RuntimeError):
    """A streamer was used from another event loop than the one it runs on."""


class ConnectionClosed(FastFeedError):
    """The websocket connection ended."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed (code={code}, reason={reason!r})")


class ConnectionClosedOK(ConnectionClosed):
    """Closed normally (1000/1001)."""


class ConnectionClosedError(ConnectionClosed):
    """Closed abnormally (error code, TCP drop, timeout)."""


class ReconnectionExhausted(FastFeedError):
    """Every reconnection attempt failed."""


class MaxConnectionsError(FastFeedError):
    """polygon ``max_connections``: the account's connection cap was exceeded."""


class FastFeedWarning(Warning):
    """Root of fastfeed's warnings."""


class RingOverflowWarning(FastFeedWarning):
    """A consumer lost events to drop-oldest overflow (see its ``gaps`` counter)."""
