"""Ray Tune's ``ray.tune.schedulers.trial_scheduler`` path.

``from atune.schedulers.trial_scheduler import TrialScheduler, FIFOScheduler`` works
like Ray Tune's import (atune's schedulers are async; see :class:`TrialScheduler`).
"""

from __future__ import annotations

from atune.schedulers._base import TrialScheduler
from atune.schedulers.fifo import FIFOScheduler

__all__ = ["FIFOScheduler", "TrialScheduler"]
