"""Event loop policy: install uvloop when the user has not chosen a loop themselves."""

from __future__ import annotations

import asyncio
import logging

__all__ = ["install_uvloop_policy"]

log = logging.getLogger("fastfeed")
_done = False


def install_uvloop_policy() -> bool:
    """Install ``uvloop.EventLoopPolicy`` if the default asyncio policy is still in place.

    Does nothing when the user set another policy, when uvloop is missing, or on every call
    after the first. The running loop (if any) is never replaced: the policy only affects loops
    created afterwards (``asyncio.run`` and friends). Returns True when it installed uvloop.
    """
    global _done
    if _done:
        return False
    _done = True
    try:
        import uvloop
    except ImportError:
        return False
    policy = asyncio.get_event_loop_policy()
    if type(policy) is not asyncio.DefaultEventLoopPolicy:
        return False  # the user (or a framework) chose one
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    log.debug("installed uvloop event loop policy")
    return True
