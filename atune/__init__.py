"""atune: asyncio-native hyperparameter tuning on Ray, with the Ray Tune API.

``import atune as tune`` ports a Ray Tune 2.x script; ``await tuner.fit()`` runs it
inside an async application, ``tuner.fit_sync()`` from a script.
"""

from __future__ import annotations

from atune import schedulers, search, stopper
from atune._trial import Trial
from atune.callbacks import (
    Callback,
    CLIReporter,
    CSVLoggerCallback,
    JsonLoggerCallback,
    LoggerCallback,
    ProgressReporter,
    TBXLoggerCallback,
)
from atune.checkpoint import Checkpoint
from atune.client import AsyncTuneClient, TuneClient
from atune.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from atune.errors import AtuneError, ConfigError, TuneError
from atune.live import LiveEvent, LiveRun, TrialSnapshot
from atune.placement_groups import PlacementGroupFactory
from atune.result_grid import Result, ResultGrid
from atune.schedulers import create_scheduler
from atune.search import create_searcher
from atune.search.sample import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from atune.session import TuneContext, get_checkpoint, get_context, get_trial_resources, report
from atune.stopper import Stopper
from atune.trainable import Trainable, with_parameters, with_resources
from atune.tuner import Tuner

__version__ = "0.1.0"

__all__ = [
    "AsyncTuneClient",
    "AtuneError",
    "CLIReporter",
    "CSVLoggerCallback",
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "ConfigError",
    "FailureConfig",
    "JsonLoggerCallback",
    "LiveEvent",
    "LiveRun",
    "LoggerCallback",
    "PlacementGroupFactory",
    "ProgressReporter",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Stopper",
    "TBXLoggerCallback",
    "Trainable",
    "Trial",
    "TrialSnapshot",
    "TuneClient",
    "TuneConfig",
    "TuneContext",
    "TuneError",
    "Tuner",
    "__version__",
    "choice",
    "create_scheduler",
    "create_searcher",
    "get_checkpoint",
    "get_context",
    "get_trial_resources",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "report",
    "sample_from",
    "schedulers",
    "search",
    "stopper",
    "uniform",
    "with_parameters",
    "with_resources",
]
