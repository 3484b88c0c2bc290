"""Test-wide settings.

Hypothesis' per-example deadline is a wall-clock check: on a shared 2-core VM a busy neighbour
makes correct parsers "too slow". The properties are about values, never about speed (speed is
measured by the bench), so the deadline is off for every profile.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("fastfeed", deadline=None)
settings.load_profile("fastfeed")
