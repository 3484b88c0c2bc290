"""Massive's exceptions (``massive.exceptions``) as fastfeed exceptions.

:class:`AuthError` is a :class:`fastfeed.AuthenticationError`; when the ``massive`` package is
installed it is also a ``massive.exceptions.AuthError``, so ``except AuthError`` written for
Massive's client catches it unchanged.
"""

from __future__ import annotations

from fastfeed.errors import AuthenticationError, FastFeedError

__all__ = ["AuthError", "BadResponse"]


def _massive_bases(name: str) -> tuple[type, ...]:
    try:
        import massive.exceptions as mex
    except Exception:  # noqa: BLE001 - massive not installed (or broken): fastfeed's alone
        return ()
    base = getattr(mex, name, None)
    return (base,) if isinstance(base, type) and issubclass(base, Exception) else ()


class AuthError(AuthenticationError, *_massive_bases("AuthError")):  # type: ignore[misc]
    """Empty or rejected API key."""


class BadResponse(FastFeedError, *_massive_bases("BadResponse")):  # type: ignore[misc]
    """Non-200 response (REST; kept for Massive's import surface)."""
