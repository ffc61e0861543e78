"""What an experiment returns: a :class:`ResultGrid` of per-trial :class:`Result` objects.

``Tuner.fit()`` returns a :class:`ResultGrid`. Each :class:`Result` holds a trial's last
reported metrics, its config, checkpoints, directory and error. Metrics over time are
read lazily from the trial's ``result.json`` (one JSON object per line), so a grid is
cheap to build and only the analyses that need history touch the disk.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pathlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, overload

from atune import result as result_fields
from atune._metric import check_mode, is_rankable, metric_number
from atune._trial import Trial
from atune._util import KEY_SEPARATOR, flatten_dict, lookup
from atune.checkpoint import Checkpoint
from atune.errors import AtuneError, ConfigError, ConfigTypeError, TrialError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("atune")

__all__ = ["Result", "ResultGrid"]

#: Scopes of :meth:`ResultGrid.get_best_result`; the number is the window (None = all).
_WINDOWS: dict[str, int | None] = {"avg": None, "last-5-avg": 5, "last-10-avg": 10}
_SCOPES = ("last", "avg", "last-5-avg", "last-10-avg", "all")

#: Auto-filled fields left out of ``repr(Result)`` to keep it readable (as Ray Tune does).
_REPR_HIDDEN_KEYS = frozenset(
    {
        result_fields.CONFIG,
        result_fields.DATE,
        result_fields.HOSTNAME,
        result_fields.NODE_IP,
        result_fields.PID,
        result_fields.TIMESTAMP,
        result_fields.TIME_THIS_ITER_S,
        result_fields.TIME_TOTAL_S,
        result_fields.TIME_SINCE_RESTORE,
        result_fields.ITERATIONS_SINCE_RESTORE,
        result_fields.TRAINING_ITERATION,
        result_fields.EXPERIMENT_ID,
        result_fields.SHOULD_CHECKPOINT,
        "timesteps_since_restore",
        "checkpoint_dir_name",
    }
)

_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d+)$")


@dataclass(frozen=True, eq=False, repr=False)
class Result:
    """The outcome of one trial.

    Attributes:
        metrics: The last reported result (auto-filled fields included).
        config: The trial's hyperparameter config.
        checkpoint: The latest checkpoint, or None.
        best_checkpoints: The checkpoints kept on disk, each with the metrics reported
            with it, ordered by ``CheckpointConfig.checkpoint_score_attribute``, best
            last (oldest first without one), as in Ray Tune.
        path: The trial directory.
        error: The exception the trial failed with, or None.

    Example:
        >>> result = Result(metrics={"loss": 0.1, "config": {"lr": 0.01}}, path="/tmp/t")
        >>> result
        Result(metrics={'loss': 0.1}, path='/tmp/t', error=None)
    """

    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = field(default_factory=list)
    path: str = ""
    error: BaseException | None = None

    @cached_property
    def metrics_dataframe(self) -> pd.DataFrame:
        """Every result the trial reported, one row each, nested keys flattened with "/".

        Read from ``<path>/result.json`` on first access; empty if the file is missing.
        """
        import pandas as pd

        return pd.DataFrame([flatten_dict(row) for row in read_result_history(self.path)])

    @property
    def log_dir(self) -> pathlib.Path:
        """The trial directory as a :class:`pathlib.Path` (older Ray Tune name of ``path``)."""
        return pathlib.Path(self.path)

    def get_best_checkpoint(self, metric: str, mode: str) -> Checkpoint:
        """Return the kept checkpoint whose metrics are best for ``metric``.

        Checkpoints whose metrics lack ``metric`` (or hold NaN) are left out.

        Args:
            metric: Metric to rank checkpoints by; ``"a/b"`` looks into nested dicts.
            mode: ``"min"`` or ``"max"``.

        Raises:
            AtuneError: The trial kept no checkpoint.
            ConfigError: Bad ``mode``, or no kept checkpoint has ``metric``.
        """
        check_mode(mode)
        if not self.best_checkpoints:
            raise AtuneError(f"trial at {self.path!r} kept no checkpoint")
        best: Checkpoint | None = None
        best_value = math.nan
        for checkpoint, metrics in self.best_checkpoints:
            value = metric_number(lookup(metrics, metric))
            if value is None or math.isnan(value):
                continue
            if best is None or _better(value, best_value, mode):
                best, best_value = checkpoint, value
        if best is None:
            known = sorted({k for _, m in self.best_checkpoints for k in _metric_names(m)})
            raise ConfigError(
                f"`metric` {metric!r} is not in the metrics of any checkpoint of this "
                f"trial (metrics: {', '.join(known) or 'none'})"
            )
        return best

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Result:
        """Rebuild a :class:`Result` from a trial directory.

        Reads the metrics from the last line of ``result.json``, the config from
        ``params.json`` (else from the metrics), the checkpoints from the
        ``checkpoint_<n>`` subdirectories (``best_checkpoints`` ordered by the score the
        experiment kept them by, best last, when its journal is beside the trial) and
        the error from ``error.txt``.

        Args:
            path: A trial directory.

        Raises:
            ConfigError: ``path`` has neither ``result.json`` nor ``params.json``.
        """
        path = os.path.abspath(os.fspath(path))
        result_file = os.path.join(path, result_fields.RESULT_FILE)
        params_file = os.path.join(path, result_fields.PARAMS_FILE)
        if not os.path.isfile(result_file) and not os.path.isfile(params_file):
            raise ConfigError(
                f"`path` must be a trial directory holding {result_fields.RESULT_FILE} or "
                f"{result_fields.PARAMS_FILE}, got {path!r}"
            )
        history = read_result_history(path)
        metrics = history[-1] if history else {}
        config: dict[str, Any] = {}
        if os.path.isfile(params_file):
            config = _read_params(params_file)
        if not config and isinstance(metrics.get(result_fields.CONFIG), dict):
            config = metrics[result_fields.CONFIG]
        checkpoints = _find_checkpoints(path, history)
        return cls(
            metrics=metrics,
            config=config,
            checkpoint=checkpoints[-1][0] if checkpoints else None,
            best_checkpoints=_by_score(os.path.dirname(path), checkpoints),
            path=path,
            error=_read_error(path),
        )

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.metrics.items() if k not in _REPR_HIDDEN_KEYS}
        text = f"Result(metrics={shown!r}, path={self.path!r}, error={self.error!r}"
        if self.checkpoint is not None:
            text += f", checkpoint={self.checkpoint!r}"
        return text + ")"


def _by_score(
    experiment_path: str, checkpoints: list[tuple[Checkpoint, dict[str, Any]]]
) -> list[tuple[Checkpoint, dict[str, Any]]]:
    """Order a trial's checkpoints as the run did (by its checkpoint score, best last),
    when its experiment's journal says which score that was; else oldest first."""
    if len(checkpoints) < 2:
        return checkpoints
    from atune._engine.journal import checkpoint_config_of
    from atune._engine.state import CheckpointBook

    config = checkpoint_config_of(experiment_path)
    if config is None or config.checkpoint_score_attribute is None:
        return checkpoints
    book = CheckpointBook(dataclasses.replace(config, num_to_keep=None))
    for checkpoint, metrics in checkpoints:
        book.record("trial", checkpoint, metrics)
    return book.best("trial")


class ResultGrid:
    """The results of every trial of an experiment, as ``Tuner.fit()`` returns them.

    Holds trials of every status, errored ones included. Index it (``grid[0]``), iterate
    over it or take its ``len``; each item is a :class:`Result`.

    Args:
        trials: The experiment's trials, in creation order.
        experiment_path: The experiment directory.
        default_metric: Metric used when :meth:`get_best_result` gets none
            (``TuneConfig(metric=...)``).
        default_mode: Mode used when :meth:`get_best_result` gets none.

    Example:
        >>> grid = ResultGrid([], "/tmp/exp")
        >>> len(grid), grid.num_errors
        (0, 0)
    """

    def __init__(
        self,
        trials: Sequence[Trial],
        experiment_path: str,
        default_metric: str | None = None,
        default_mode: str | None = None,
    ) -> None:
        if default_mode is not None:
            check_mode(default_mode, name="default_mode")
        self._trials = list(trials)
        self._experiment_path = os.fspath(experiment_path)
        self._default_metric = default_metric
        self._default_mode = default_mode
        self._results = [_trial_to_result(trial) for trial in self._trials]

    @property
    def experiment_path(self) -> str:
        """The experiment directory."""
        return self._experiment_path

    @property
    def errors(self) -> list[BaseException]:
        """The exceptions of the trials that ended in ERROR, in trial order."""
        return [result.error for result in self._results if result.error is not None]

    @property
    def num_errors(self) -> int:
        """Number of trials that ended in ERROR."""
        return sum(1 for trial in self._trials if trial.status == Trial.ERROR)

    @property
    def num_terminated(self) -> int:
        """Number of trials that ended in TERMINATED."""
        return sum(1 for trial in self._trials if trial.status == Trial.TERMINATED)

    def get_best_result(
        self,
        metric: str | None = None,
        mode: str | None = None,
        scope: str = "last",
        filter_nan_and_inf: bool = True,
    ) -> Result:
        """Return the result of the trial that is best for ``metric``.

        Each trial gets a score from its values of ``metric``, chosen by ``scope``:

        * ``"last"``: its last reported value;
        * ``"avg"``: the mean of all its values;
        * ``"last-5-avg"`` / ``"last-10-avg"``: the mean of its last 5 / 10 values;
        * ``"all"``: the best value it ever reported (min or max per ``mode``).

        All scopes but ``"last"`` read the trial's history from ``result.json``.
        Trials that never reported ``metric`` are skipped. With ``filter_nan_and_inf``
        a NaN or infinite score is skipped too (for ``"all"``, such values are left
        out before taking the best); without it, infinite scores compete normally
        and NaN ranks below every number. Errored trials with results take part. On
        a tie the earlier trial wins. A grid of a single trial returns that trial.

        Args:
            metric: Metric to compare; defaults to ``TuneConfig(metric=...)``.
                ``"a/b"`` looks into nested result dicts.
            mode: ``"min"`` or ``"max"``; defaults to ``TuneConfig(mode=...)``.
            scope: One of ``"last"``, ``"avg"``, ``"last-5-avg"``, ``"last-10-avg"``,
                ``"all"``.
            filter_nan_and_inf: Skip NaN and infinite values.

        Raises:
            ConfigError: ``metric`` or ``mode`` missing or invalid, bad ``scope``, or
                no trial has a usable value of ``metric``.
        """
        if scope not in _SCOPES:
            raise ConfigError(f"`scope` must be one of {', '.join(_SCOPES)}, got {scope!r}")
        if mode is not None:
            check_mode(mode)
        if len(self._results) == 1:
            return self._results[0]
        metric = metric if metric is not None else self._default_metric
        mode = mode if mode is not None else self._default_mode
        if metric is None or mode is None:
            missing = [f"`{n}`" for n, v in (("metric", metric), ("mode", mode)) if v is None]
            verb = "are" if len(missing) == 2 else "is"
            raise ConfigError(
                f"get_best_result needs a metric and a mode, but {' and '.join(missing)} "
                f"{verb} not set: pass get_best_result(metric=..., mode=...) or set "
                "TuneConfig(metric=..., mode=...)"
            )
        if not isinstance(metric, str):
            raise ConfigTypeError(f"`metric` must be a str, got {type(metric).__name__}")

        best_index: int | None = None
        best_score = math.nan
        any_reported = False
        for index, trial in enumerate(self._trials):
            score = _trial_score(trial, metric, mode, scope, filter_nan_and_inf)
            if score is _NOT_REPORTED:
                continue
            any_reported = True
            if score is _FILTERED:
                continue
            assert isinstance(score, float)
            if best_index is None or _better(score, best_score, mode):
                best_index, best_score = index, score
        if best_index is not None:
            return self._results[best_index]
        if not self._trials:
            raise ConfigError(f"no best result for metric {metric!r}: the grid holds no trials")
        if any_reported:
            raise ConfigError(
                f"no trial has a finite {scope!r} value of metric {metric!r} (every value "
                "is NaN or infinite); pass filter_nan_and_inf=False to consider them"
            )
        known = sorted({k for trial in self._trials for k in _metric_names(trial.last_result)})
        raise ConfigError(
            f"no trial reported the metric {metric!r} (metrics reported: "
            f"{', '.join(known) or 'none'}); pass one of them as `metric` or report "
            f"{metric!r} from the trainable"
        )

    def get_dataframe(
        self, filter_metric: str | None = None, filter_mode: str | None = None
    ) -> pd.DataFrame:
        """Return one row per trial, for ad-hoc analysis.

        A row is the trial's last result with nested keys flattened (``"a/b"``), the
        config as ``config/<key>`` columns (nested keys flattened too, e.g.
        ``config/model/lr``), ``trial_id`` and ``logdir`` (the trial directory).
        Trials that reported nothing still have a row (their metrics are NaN).

        Args:
            filter_metric: If given, each row is the trial's best result for this
                metric (from its history) instead of its last; NaN values are
                ignored, and a trial that never reported it keeps its last result.
            filter_mode: ``"min"`` or ``"max"``; required with ``filter_metric``.

        Raises:
            ConfigError: Only one of ``filter_metric`` and ``filter_mode`` is given, or
                ``filter_mode`` is invalid.
        """
        import pandas as pd

        if filter_metric is None and filter_mode is not None:
            raise ConfigError(
                f"`filter_metric` must be set when `filter_mode` is, got filter_mode="
                f"{filter_mode!r} and filter_metric=None"
            )
        if filter_metric is not None:
            check_mode(filter_mode, name="filter_mode")
        rows = []
        for trial in self._trials:
            if filter_metric is not None:
                assert filter_mode is not None
                row = _best_row(trial, filter_metric, filter_mode)
            else:
                row = trial.last_result
            flat = flatten_dict({k: v for k, v in row.items() if k != result_fields.CONFIG})
            flat[result_fields.TRIAL_ID] = trial.trial_id
            flat.update(flatten_dict(trial.config, prefix=f"{result_fields.CONFIG}{KEY_SEPARATOR}"))
            flat["logdir"] = trial.local_path
            rows.append(flat)
        return pd.DataFrame(rows)

    def __len__(self) -> int:
        return len(self._results)

    @overload
    def __getitem__(self, index: int) -> Result: ...

    @overload
    def __getitem__(self, index: slice) -> list[Result]: ...

    def __getitem__(self, index: int | slice) -> Result | list[Result]:
        return self._results[index]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {result!r}" for result in self._results)
        return f"ResultGrid<[\n{inner}\n]>" if inner else "ResultGrid<[]>"


# --------------------------------------------------------------------------- helpers


def _read_params(file: str) -> dict[str, Any]:
    """The config in ``params.json``; ``{}`` with a warning if the file is damaged."""
    try:
        with open(file, "rb") as f:
            config = json.loads(f.read().decode("utf-8"))
    except ValueError as exc:
        log.warning(
            "%s is damaged (%s: %s); the config is taken from the last result instead.",
            file,
            type(exc).__name__,
            exc,
        )
        return {}
    if not isinstance(config, dict):
        log.warning("%s holds no config object; it is taken from the last result.", file)
        return {}
    return config


def read_result_history(path: str) -> list[dict[str, Any]]:
    """Return the results in ``<path>/result.json``, oldest first.

    A missing file or an empty ``path`` gives ``[]``. A line that is not a whole JSON
    object (cut off by a crash, damaged bytes) is skipped, with a warning that names
    the file and the lines; the other results are read.
    """
    if not path:
        return []
    file = os.path.join(path, result_fields.RESULT_FILE)
    rows: list[dict[str, Any]] = []
    bad: list[int] = []
    try:
        with open(file, "rb") as f:
            for number, raw in enumerate(f, 1):
                line = raw.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line.decode("utf-8"))
                except ValueError:  # JSONDecodeError and UnicodeDecodeError
                    bad.append(number)
                    continue
                if isinstance(row, dict):
                    rows.append(row)
                else:
                    bad.append(number)
    except (FileNotFoundError, NotADirectoryError):
        return []
    if bad:
        _warn_damaged(file, bad, len(rows))
    return rows


_warned_damaged: set[tuple[str, tuple[int, ...]]] = set()


def _warn_damaged(file: str, lines: list[int], kept: int) -> None:
    key = (file, tuple(lines))
    if key in _warned_damaged:
        return
    _warned_damaged.add(key)
    shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
    log.warning(
        "%s: skipped %d line(s) that are not a whole JSON result (line %s), e.g. one cut "
        "off by a crash or damaged bytes; the other %d results are read.",
        file,
        len(lines),
        shown,
        kept,
    )


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


_NOT_REPORTED = _Marker("<not reported>")
_FILTERED = _Marker("<filtered>")


def _better(score: float, best: float, mode: str) -> bool:
    """True if ``score`` beats ``best`` in ``mode``; NaN ranks below every number."""
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score > best if mode == "max" else score < best


def _metric_names(result: Mapping[str, Any]) -> list[str]:
    """Flattened keys of ``result`` with numeric values, the config left out."""
    flat = flatten_dict({k: v for k, v in result.items() if k != result_fields.CONFIG})
    return [key for key, value in flat.items() if metric_number(value) is not None]


def _metric_values(trial: Trial, metric: str) -> list[float]:
    """The trial's numeric values of ``metric``, oldest first (history, else last result)."""
    history = read_result_history(trial.local_path) or [trial.last_result]
    values = (metric_number(lookup(row, metric)) for row in history)
    return [value for value in values if value is not None]


def _trial_score(
    trial: Trial, metric: str, mode: str, scope: str, filter_nan_and_inf: bool
) -> float | _Marker:
    """The trial's score for ``scope``, ``_NOT_REPORTED`` or ``_FILTERED``."""
    if scope == "last":
        values = [v for v in [metric_number(lookup(trial.last_result, metric))] if v is not None]
    else:
        values = _metric_values(trial, metric)
    if not values:
        return _NOT_REPORTED
    if scope == "all":
        if filter_nan_and_inf:
            values = [v for v in values if is_rankable(v)]
        numbers_only = [v for v in values if not math.isnan(v)]
        if not numbers_only:
            return _FILTERED if filter_nan_and_inf else math.nan
        return max(numbers_only) if mode == "max" else min(numbers_only)
    if scope == "last":
        score = values[-1]
    else:
        window = _WINDOWS[scope]
        tail = values if window is None else values[-window:]
        score = sum(tail) / len(tail)
    if filter_nan_and_inf and not is_rankable(score):
        return _FILTERED
    return score


def _best_row(trial: Trial, metric: str, mode: str) -> dict[str, Any]:
    """The trial's result that is best for ``metric`` (NaN ignored; ties: the earliest)."""
    history = read_result_history(trial.local_path) or [trial.last_result]
    best_row: dict[str, Any] | None = None
    best_value = math.nan
    for row in history:
        value = metric_number(lookup(row, metric))
        if value is None or math.isnan(value):
            continue
        if best_row is None or _better(value, best_value, mode):
            best_row, best_value = row, value
    return best_row if best_row is not None else history[-1]


def _trial_to_result(trial: Trial) -> Result:
    error: BaseException | None = None
    if trial.status == Trial.ERROR:
        error = trial.error or TrialError(
            f"trial {trial.trial_id} ended in ERROR without a recorded exception"
        )
    return Result(
        metrics=dict(trial.last_result),
        config=dict(trial.config),
        checkpoint=trial.checkpoint,
        best_checkpoints=list(trial.checkpoints),
        path=trial.local_path,
        error=error,
    )


def _find_checkpoints(
    path: str, history: list[dict[str, Any]]
) -> list[tuple[Checkpoint, dict[str, Any]]]:
    """The ``checkpoint_<n>`` dirs of a trial dir, oldest first, each with its metrics.

    A checkpoint's metrics are the result naming it in ``checkpoint_dir_name``, else
    the result whose ``training_iteration`` is ``n``, else ``{}``.
    """
    found: list[tuple[int, str]] = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    for entry in entries:
        match = _CHECKPOINT_DIR.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry.name))
    by_name = {row["checkpoint_dir_name"]: row for row in history if "checkpoint_dir_name" in row}
    by_iteration = {
        row[result_fields.TRAINING_ITERATION]: row
        for row in history
        if isinstance(row.get(result_fields.TRAINING_ITERATION), int)
    }
    checkpoints = []
    for number, name in sorted(found):
        metrics = by_name.get(name) or by_iteration.get(number) or {}
        checkpoints.append((Checkpoint(os.path.join(path, name)), metrics))
    return checkpoints


def _read_error(path: str) -> TrialError | None:
    """A :class:`TrialError` from the trial's ``error.txt``, or None if there is none."""
    error_file = os.path.join(path, result_fields.ERROR_FILE)
    try:
        with open(error_file, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    message = lines[-1].strip() if lines else "trial failed (empty error file)"
    exc_type = message.split(":", 1)[0] if ":" in message else ""
    return TrialError(message, exc_type=exc_type, traceback=text)
