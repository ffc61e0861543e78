"""Ray Tune's ``ray.tune.experiment`` path: ``from atune.experiment import Trial``.

Ray Tune's ``Experiment`` class (the spec of the legacy ``tune.run``) is not in atune.
"""

from __future__ import annotations

from atune._trial import Trial

__all__ = ["Trial"]
