"""Configuration objects: ``TuneConfig``, ``RunConfig``, ``CheckpointConfig``, ``FailureConfig``.

All are frozen dataclasses validated at construction: a bad value raises
:class:`~atune.errors.ConfigError` naming the parameter, the rule and the value.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

from atune._metric import validate_mode
from atune.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from atune._executor._base import Executor
    from atune._trial import Trial
    from atune.callbacks._base import Callback
    from atune.schedulers._base import TrialScheduler
    from atune.search._base import Searcher

__all__ = [
    "DEFAULT_STORAGE_PATH",
    "CheckpointConfig",
    "FailureConfig",
    "RunConfig",
    "TuneConfig",
]

#: Where experiments are written when ``RunConfig.storage_path`` is not given.
DEFAULT_STORAGE_PATH = os.environ.get("ATUNE_RESULTS_DIR", "~/atune_results")


def _check_int(name: str, value: Any, minimum: int, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(f"`{name}` must be an int, got {value!r}")
    if value < minimum:
        raise ConfigError(f"`{name}` must be >= {minimum}, got {value}")


def _check_type(name: str, value: Any, types: type | tuple[type, ...], expected: str) -> None:
    """Raise :class:`ConfigTypeError` unless ``value`` is None or one of ``types``."""
    if value is not None and not isinstance(value, types):
        raise ConfigTypeError(f"`{name}` must be {expected}, got {value!r}")


@dataclass(frozen=True)
class CheckpointConfig:
    """Which checkpoints to keep, and when class trainables checkpoint.

    Args:
        num_to_keep: Keep at most this many checkpoints per trial (None: all). The
            latest checkpoint is always kept, so a failed trial can resume from it.
        checkpoint_score_attribute: Result field that ranks checkpoints; the worst are
            deleted first. None: the oldest are deleted first.
        checkpoint_score_order: ``"max"`` (higher is better) or ``"min"``.
        checkpoint_frequency: Class trainables checkpoint every N iterations (0: never).
        checkpoint_at_end: Class trainables checkpoint when the trial ends.
    """

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        _check_int("num_to_keep", self.num_to_keep, 1)
        _check_int("checkpoint_frequency", self.checkpoint_frequency, 0, allow_none=False)
        _check_type(
            "checkpoint_score_attribute",
            self.checkpoint_score_attribute,
            str,
            "a str (a result field) or None",
        )
        _check_type("checkpoint_score_order", self.checkpoint_score_order, str, "'max' or 'min'")
        _check_type("checkpoint_at_end", self.checkpoint_at_end, bool, "a bool or None")
        if self.checkpoint_score_order not in ("max", "min"):
            raise ConfigError(
                "`checkpoint_score_order` must be 'max' or 'min', "
                f"got {self.checkpoint_score_order!r}"
            )


@dataclass(frozen=True)
class FailureConfig:
    """What happens when a trial fails.

    Args:
        max_failures: Retry a failed trial up to this many times, from its latest
            checkpoint when it has one (0: never, -1: forever).
        fail_fast: Stop the whole experiment at the first trial failure.
    """

    max_failures: int = 0
    fail_fast: bool | str = False

    def __post_init__(self) -> None:
        _check_int("max_failures", self.max_failures, -1, allow_none=False)
        if not isinstance(self.fail_fast, (bool, str)):
            raise ConfigTypeError(
                f"`fail_fast` must be True, False or 'raise' (a bool or a str), "
                f"got {self.fail_fast!r}"
            )
        if self.fail_fast not in (True, False, "raise"):
            raise ConfigError(f"`fail_fast` must be True, False or 'raise', got {self.fail_fast!r}")


#: Methods an executor object must have (the ``atune.executors.Executor`` protocol).
_EXECUTOR_METHODS = (
    "start",
    "total_resources",
    "put",
    "launch",
    "release",
    "watch",
    "check_serializable",
    "aclose",
)


def _check_executor(value: Any) -> None:
    from atune._executor import EXECUTOR_NAMES

    if isinstance(value, str):
        if value not in EXECUTOR_NAMES:
            raise ConfigError(
                f"`executor` must be one of {', '.join(map(repr, EXECUTOR_NAMES))} (or an "
                f"executor object), got {value!r}"
            )
        return
    missing = [m for m in _EXECUTOR_METHODS if not callable(getattr(value, m, None))]
    if missing:
        raise ConfigTypeError(
            "`executor` must be 'ray', 'local' or an executor object such as "
            f"atune.executors.LocalExecutor(), got {value!r} (it has no {', '.join(missing)})"
        )


@dataclass(frozen=True)
class TuneConfig:
    """How to tune: the metric, the search algorithm, the scheduler and the budget.

    Args:
        metric: Result field to optimise; passed to the searcher and scheduler.
        mode: ``"min"`` or ``"max"``.
        search_alg: A :class:`~atune.search.Searcher` or its name (default: random
            and grid search with :class:`~atune.search.BasicVariantGenerator`).
        scheduler: A :class:`~atune.schedulers.TrialScheduler` or its name (default FIFO).
        num_samples: Times to sample the param space; a grid is repeated this many
            times. ``-1``: sample until a stop condition (e.g. ``time_budget_s``) hits.
        max_concurrent_trials: At most this many trials run at once (None or 0: as many
            as resources allow).
        time_budget_s: Stop every trial after this many seconds (or a ``timedelta``).
        reuse_actors: Run a new trial in the worker process of a finished one when
            they ask for the same resources. A function trainable is called afresh in
            the same process; a class trainable is switched to the new config with
            ``reset_config`` (rebuilt in the same process if that returns False). None
            (the default): True for function trainables (except trials with a
            ``PlacementGroupFactory``), False for class trainables.
            A trial always gets a fresh trainable state (its own call of the function,
            its own session, directory and config); what a trainable leaves in the
            process itself (module globals it changed, ``os.environ``, threads it did
            not stop, memory held by a global) is seen by the next trial in that
            worker: set False for such trainables. A worker whose trial failed, or did
            not stop when asked, is never reused (see ``docs/performance.md``).
        trial_name_creator: ``f(trial) -> str``, the trial's display name.
        trial_dirname_creator: ``f(trial) -> str``, its directory name (not a path).
        executor: Where trials run: ``"ray"`` (default: each trial in a Ray actor) or
            ``"local"`` (every trial in this process, without Ray: threads for sync
            trainables, tasks on the caller's loop for async ones; see
            ``docs/executors.md``), or an executor object such as
            ``atune.executors.LocalExecutor({"CPU": 8})``.
    """

    metric: str | None = None
    mode: str | None = None
    search_alg: Searcher | str | None = None
    scheduler: TrialScheduler | str | None = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | datetime.timedelta | None = None
    reuse_actors: bool | None = None
    trial_name_creator: Callable[[Trial], str] | None = None
    trial_dirname_creator: Callable[[Trial], str] | None = None
    executor: str | Executor = "ray"

    def __post_init__(self) -> None:
        from atune.schedulers._base import TrialScheduler
        from atune.search._base import Searcher

        _check_type("mode", self.mode, str, "'min' or 'max'")
        validate_mode(self.mode)
        _check_type("metric", self.metric, str, "a str (a result field)")
        _check_type(
            "search_alg", self.search_alg, (Searcher, str), "an atune.search.Searcher or its name"
        )
        _check_type(
            "scheduler",
            self.scheduler,
            (TrialScheduler, str),
            "an atune.schedulers.TrialScheduler or its name",
        )
        _check_int("num_samples", self.num_samples, -1, allow_none=False)
        if self.num_samples == 0:
            raise ConfigError("`num_samples` must be >= 1, or -1 for no limit, got 0")
        _check_int("max_concurrent_trials", self.max_concurrent_trials, 0)
        budget = self.time_budget_s
        if isinstance(budget, datetime.timedelta):
            budget = budget.total_seconds()
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, Real)):
            raise ConfigTypeError(
                "`time_budget_s` must be a number of seconds or a datetime.timedelta, "
                f"got {self.time_budget_s!r}"
            )
        if budget is not None and not budget > 0:
            raise ConfigError(f"`time_budget_s` must be > 0 seconds, got {self.time_budget_s!r}")
        _check_type("reuse_actors", self.reuse_actors, bool, "a bool (or None)")
        for name in ("trial_name_creator", "trial_dirname_creator"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigTypeError(f"`{name}` must be a function of the trial, got {value!r}")
        _check_executor(self.executor)

    @property
    def time_budget_seconds(self) -> float | None:
        budget = self.time_budget_s
        if isinstance(budget, datetime.timedelta):
            return budget.total_seconds()
        return None if budget is None else float(budget)


@dataclass(frozen=True)
class RunConfig:
    """Where and how an experiment runs.

    Args:
        name: Experiment name; results go to ``<storage_path>/<name>``. Default:
            ``<trainable name>_<date>`` (``_2``, ``_3``... appended when experiments start
            in the same second, so two never share a directory).
        storage_path: Root directory of experiments (default ``~/atune_results``, or
            ``$ATUNE_RESULTS_DIR``): a local path, a ``file://`` URI, or remote storage
            (``s3://bucket/path``, ``gs://bucket/path``, any URI pyarrow opens), where
            the experiment is uploaded as it runs from a local staging copy.
        stop: Stop criteria: a dict (``{"training_iteration": 10}``: stop when any
            field reaches its value), a function ``(trial_id, result) -> bool``, or a
            :class:`~atune.stopper.Stopper`.
        callbacks: :class:`~atune.Callback` objects. The JSON, CSV and TensorBoard
            loggers are added unless a callback of the same class is given, or
            ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`` is set.
        verbose: 0 silent, 1 status table (default), 2 also every result.
        checkpoint_config: See :class:`CheckpointConfig`.
        failure_config: See :class:`FailureConfig`.
        log_to_file: Write each trial's stdout/stderr to files in its directory: True
            (``stdout``/``stderr``), a file name for both, or a pair of names.
        progress_reporter: A :class:`~atune.callbacks.ProgressReporter` for the status.
        storage_filesystem: A ``pyarrow.fs.FileSystem`` to store the experiment in;
            ``storage_path`` is then the directory in it (``"bucket/path"``).
        with_server: Serve the experiment's REST API while it runs (see
            :mod:`atune.server`; :class:`atune.TuneClient` talks to it).
        server_port: Its port (default 4321; 0: any free port, see
            :attr:`atune.LiveRun.server_address`).
        server_host: The interface it listens on: ``127.0.0.1`` by default; any other
            needs ``server_token``.
        server_token: If set, every request must carry ``Authorization: Bearer <token>``.
    """

    name: str | None = None
    storage_path: str | os.PathLike[str] | None = None
    stop: Mapping[str, Any] | Callable[[str, dict[str, Any]], bool] | Any | None = None
    callbacks: Sequence[Callback] | None = None
    verbose: int | None = None
    checkpoint_config: CheckpointConfig | None = None
    failure_config: FailureConfig | None = None
    log_to_file: bool | str | tuple[str, str] = False
    progress_reporter: Any | None = None
    storage_filesystem: Any | None = None
    with_server: bool = False
    server_port: int = 4321
    server_host: str = "127.0.0.1"
    server_token: str | None = None

    def __post_init__(self) -> None:
        _check_type("name", self.name, str, "a str (a directory name)")
        if self.name is not None and (not self.name or os.sep in self.name):
            raise ConfigError(f"`name` must be a non-empty directory name, got {self.name!r}")
        _check_type(
            "storage_path", self.storage_path, (str, os.PathLike), "a str or os.PathLike directory"
        )
        if isinstance(self.storage_path, str) and self.storage_path.startswith("file://"):
            object.__setattr__(self, "storage_path", _local_storage(self.storage_path))
        if self.storage_filesystem is not None:
            import pyarrow.fs

            if not isinstance(self.storage_filesystem, pyarrow.fs.FileSystem):
                raise ConfigTypeError(
                    "`storage_filesystem` must be a pyarrow.fs.FileSystem (e.g. "
                    f"pyarrow.fs.S3FileSystem(...)), got {self.storage_filesystem!r}"
                )
        _check_type("with_server", self.with_server, bool, "a bool")
        if isinstance(self.server_port, bool) or not isinstance(self.server_port, int):
            raise ConfigTypeError(
                f"`server_port` must be an int (0: any free port), got {self.server_port!r}"
            )
        if not 0 <= self.server_port <= 65535:
            raise ConfigError(f"`server_port` must be 0..65535, got {self.server_port}")
        _check_type("server_host", self.server_host, str, "a str, e.g. '127.0.0.1'")
        _check_type("server_token", self.server_token, str, "a str (a secret)")
        if self.with_server:
            from atune.server import check_binding

            check_binding(self.server_host, self.server_token)
        stop = self.stop
        if not (stop is None or isinstance(stop, Mapping) or callable(stop)):
            raise ConfigTypeError(
                "`stop` must be None, a dict of result key -> threshold, an atune.Stopper or "
                f"a function (trial_id, result) -> bool, got {stop!r}"
            )
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise ConfigTypeError(
                "`callbacks` must be a list of atune.Callback objects (e.g. callbacks=[cb]), "
                f"got {self.callbacks!r}"
            )
        _check_type("verbose", self.verbose, int, "an int: 0, 1 or 2")
        if self.verbose is not None and self.verbose not in (0, 1, 2, 3):
            raise ConfigError(f"`verbose` must be 0, 1 or 2, got {self.verbose!r}")
        if self.checkpoint_config is not None and not isinstance(
            self.checkpoint_config, CheckpointConfig
        ):
            raise ConfigTypeError(
                f"`checkpoint_config` must be a CheckpointConfig, got {self.checkpoint_config!r}"
            )
        if self.failure_config is not None and not isinstance(self.failure_config, FailureConfig):
            raise ConfigTypeError(
                f"`failure_config` must be a FailureConfig, got {self.failure_config!r}"
            )
        lf = self.log_to_file
        _check_type(
            "log_to_file",
            lf,
            (bool, str, tuple, list),
            "a bool, a file name, or a pair of file names",
        )
        if not (
            isinstance(lf, (bool, str))
            or (
                isinstance(lf, (tuple, list))
                and len(lf) == 2
                and all(isinstance(x, str) for x in lf)
            )
        ):
            raise ConfigError(
                f"`log_to_file` must be a bool, a file name, or a pair of names, got {lf!r}"
            )
        for cb in self.callbacks or ():
            from atune.callbacks._base import Callback

            if not isinstance(cb, Callback):
                raise ConfigTypeError(f"`callbacks` must hold atune.Callback instances, got {cb!r}")
        reporter = self.progress_reporter
        if reporter is not None and not all(
            callable(getattr(reporter, hook, None)) for hook in ("should_report", "report")
        ):
            raise ConfigTypeError(
                "`progress_reporter` must be an atune.ProgressReporter (e.g. "
                f"atune.CLIReporter(...)), got {reporter!r}"
            )


def _local_storage(uri: str) -> str:
    """The directory of a ``file://`` storage URI."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(
            f"`storage_path` {uri!r} names the host {parsed.netloc!r}: a file:// URI must "
            "be local, e.g. 'file:///data/atune_results'"
        )
    return unquote(parsed.path)
