"""Ray Tune's ``ray.tune.search.repeater`` path for :class:`Repeater`."""

from __future__ import annotations

from atune.search._wrappers import TRIAL_INDEX, Repeater

__all__ = ["TRIAL_INDEX", "Repeater"]
