"""What the engine runs: the experiment as the Tuner resolved it, and the engine's bounds."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atune._trial import Trial
from atune.callbacks._base import Callback
from atune.config import CheckpointConfig, FailureConfig
from atune.schedulers._base import TrialScheduler
from atune.search._base import Searcher
from atune.trainable.util import TrainableInfo

__all__ = ["ExperimentSpec"]

#: Results one ``next_results`` call may return; also each trial's buffer size, so a
#: trial runs at most this many results ahead of the driver.
RESULT_BUFFER_SIZE = 1024
#: When a trial reports fast (its last batch held several results), let the worker
#: gather results this long before answering, to cut round trips per result.
BATCH_LINGER_S = 0.002
#: Work off a batch of results (a trial's stream, a sink's backlog) in slices of at
#: most this long, giving the event loop to other tasks in between, so that a host
#: application's coroutines on the same loop run at least once per round of slices.
#: Measured with benchmarks/loop_lag.py (8 trials reporting at full speed on 2 cores,
#: two runs each): slices of 1 ms left 45 and 62 of some 2,000 ticks of a host's 10 ms
#: ticker late by over 20 ms, 0.5 ms 29 and 26, 0.3 ms 27 and 33, at the same results/s
#: within noise (a slice boundary costs one pass through the loop, some 20-40 us).
SLICE_S = 0.0005
#: The loggers' (and the journal's) queue on the event bus, in events. Loggers write
#: in batches off the loop; when they fall this far behind, recording results waits
#: for them (trials stop fetching), which bounds the memory results take on their way
#: to disk. Every queued result is a few objects the garbage collector walks: 8,192
#: made the driver's collections (and so a host's loop lag) several times longer than
#: 1,024, which reaches the same results/s (benchmarks/loop_lag.py, throughput.py).
LOGGER_QUEUE_SIZE = 1_024
#: A worker kept for reuse that no trial took within this many seconds is ended: it
#: holds its resources, which another experiment on the cluster (or a trial's own Ray
#: tasks) may be waiting for. Within one experiment the next trial takes it within
#: milliseconds of the last one ending (a searcher's suggestion included); ending it
#: later than that only costs a new worker for a trial that was not ready yet.
IDLE_WORKER_S = 1.0
#: The progress view's queue: it only needs to keep up, so it drops results beyond.
PROGRESS_QUEUE_SIZE = 1_024
#: At most this long between a result and its line in the loggers' files.
FLUSH_INTERVAL_S = 0.5
#: How often the searcher's state is written to the experiment dir (it may be large);
#: only written when the searcher was told something since the last write.
SEARCHER_SAVE_INTERVAL_S = 10.0
#: Trials created ahead of time when the searcher is the default random/grid search.
#: A model-based searcher is asked for one config at a time, each when a trial can
#: start with it, so every suggestion sees all results reported until then.
MAX_PENDING_TRIALS = 16
#: Upper bound on the length of the tag part of a trial directory name.
MAX_LEN_IDENTIFIER = int(os.environ.get("TUNE_MAX_LEN_IDENTIFIER", "130"))
#: How long the end of an experiment may spend on each of: the plugins' last hooks
#: (searcher save, callbacks), and the loggers writing what they still hold.
SHUTDOWN_FLUSH_TIMEOUT_S = 10.0
#: How long the end of an experiment waits for its last upload to remote storage.
REMOTE_SYNC_TIMEOUT_S = 300.0
#: Commands (stop/pause/resume/add trial, stop experiment) queued at most.
COMMAND_QUEUE_SIZE = 256


@dataclass
class ExperimentSpec:
    """Everything the controller needs, resolved and validated by the Tuner."""

    trainable: TrainableInfo
    param_space: dict[str, Any]
    experiment_name: str
    experiment_path: str
    searcher: Searcher
    scheduler: TrialScheduler
    stopper: Any = None  # atune.stopper.Stopper | None
    metric: str | None = None
    mode: str | None = None
    callbacks: list[Callback] = field(default_factory=list)
    progress_reporter: Any = None
    verbose: int = 1
    time_budget_s: float | None = None
    max_concurrent_trials: int | None = None
    #: True/False as set; None (TuneConfig's default): see :meth:`reuses_worker`.
    reuse_actors: bool | None = False
    trial_name_creator: Callable[[Trial], str] | None = None
    trial_dirname_creator: Callable[[Trial], str] | None = None
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    failure_config: FailureConfig = field(default_factory=FailureConfig)
    log_to_file: bool | str | tuple[str, str] = False
    total_samples: int | None = None
    chdir_to_trial_dir: bool = True
    #: Where the experiment is stored (atune._storage.Storage); remote: uploaded to.
    storage: Any = None

    @property
    def class_trainable(self) -> bool:
        return self.trainable.kind == "class"

    def reuses_worker(self, trial: Any) -> bool:
        """May ``trial``'s worker run another trial once this one ended cleanly?

        By default (``reuse_actors=None``) a function trainable's process is kept: the
        next trial calls the function afresh. A class trainable is not (reusing it needs
        ``reset_config``), nor a trial in a placement group (Ray workers it started may
        outlive it in the group's bundles).
        """
        if self.reuse_actors is not None:
            return self.reuse_actors
        return not self.class_trainable and trial.placement_group_factory is None

    @property
    def lockstep(self) -> bool:
        """Do workers wait for a decision on every result (not just decision points)?"""
        return bool(
            self.scheduler.requires_sync_point
            or (self.checkpoint_config.checkpoint_at_end and self.class_trainable)
        )
