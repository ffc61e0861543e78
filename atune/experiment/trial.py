"""Ray Tune's ``ray.tune.experiment.trial`` path: ``from atune.experiment.trial import Trial``."""

from __future__ import annotations

from atune._trial import Trial

__all__ = ["Trial"]
