"""Stoppers: decide, result by result, when a trial or the whole experiment stops."""

from __future__ import annotations

from atune.stopper._base import Stopper
from atune.stopper._convert import as_stopper
from atune.stopper.combined import CombinedStopper
from atune.stopper.dict_stopper import DictStopper
from atune.stopper.experiment_plateau import ExperimentPlateauStopper
from atune.stopper.function_stopper import FunctionStopper
from atune.stopper.maximum_iteration import MaximumIterationStopper
from atune.stopper.noop import NoopStopper
from atune.stopper.timeout import TimeoutStopper
from atune.stopper.trial_plateau import TrialPlateauStopper

__all__ = [
    "CombinedStopper",
    "DictStopper",
    "ExperimentPlateauStopper",
    "FunctionStopper",
    "MaximumIterationStopper",
    "NoopStopper",
    "Stopper",
    "TimeoutStopper",
    "TrialPlateauStopper",
    "as_stopper",
]
