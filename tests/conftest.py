"""Settings shared by every test."""

from __future__ import annotations

from hypothesis import settings

# No per-example deadline: the property tests check values, not speed, and a loaded CI machine
# (2 shared cores) must not turn a slow example into a failure.
settings.register_profile("fastfeed", deadline=None)
settings.load_profile("fastfeed")
