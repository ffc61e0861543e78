"""Trial schedulers: decide, result by result, whether a trial continues."""

from __future__ import annotations

from typing import Any

from atune._engine.api import TuneController
from atune.errors import ConfigError
from atune.schedulers._base import TrialScheduler
from atune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from atune.schedulers.fifo import FIFOScheduler
from atune.schedulers.hb_bohb import HyperBandForBOHB
from atune.schedulers.hyperband import HyperBandScheduler
from atune.schedulers.median_stopping_rule import MedianStoppingRule
from atune.schedulers.pb2 import PB2
from atune.schedulers.pbt import PopulationBasedTraining, PopulationBasedTrainingReplay
from atune.schedulers.resource_changing_scheduler import (
    DistributeResources,
    DistributeResourcesToTopJob,
    ResourceChangingScheduler,
)

__all__ = [
    "PB2",
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "DistributeResources",
    "DistributeResourcesToTopJob",
    "FIFOScheduler",
    "HyperBandForBOHB",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "ResourceChangingScheduler",
    "TrialScheduler",
    "TuneController",
    "create_scheduler",
]

_SCHEDULERS: dict[str, type[TrialScheduler]] = {
    "fifo": FIFOScheduler,
    "async_hyperband": AsyncHyperBandScheduler,
    "asynchyperband": AsyncHyperBandScheduler,
    "asha": AsyncHyperBandScheduler,
    "median_stopping_rule": MedianStoppingRule,
    "medianstopping": MedianStoppingRule,
    "pbt": PopulationBasedTraining,
    "pbt_replay": PopulationBasedTrainingReplay,
    "pb2": PB2,
    "hyperband": HyperBandScheduler,
    "hb_bohb": HyperBandForBOHB,
    "resource_changing": ResourceChangingScheduler,
}


def create_scheduler(scheduler: str, **kwargs: Any) -> TrialScheduler:
    """Build a scheduler from its name (``"fifo"``, ...), as ``tune.create_scheduler``."""
    key = scheduler.lower()
    if key not in _SCHEDULERS:
        raise ConfigError(
            f"`scheduler` must be one of {sorted(_SCHEDULERS)} or a TrialScheduler, "
            f"got {scheduler!r}"
        )
    return _SCHEDULERS[key](**kwargs)
