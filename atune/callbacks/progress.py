"""Console progress output: the ``== Status ==`` table and per-result blocks.

The controller owns *when* to print: it asks :meth:`ProgressReporter.should_report`
and then calls :meth:`ProgressReporter.report` with the trials and an
:class:`ExperimentStatus` it fills in. Everything here is pure formatting except the
final ``print``; :meth:`CLIReporter.render` returns the text without printing it.
The cells and the grid come from :mod:`atune.callbacks._status_table`, the
per-result block (:func:`format_result`) from :mod:`atune.callbacks._result_yaml`.

Example output (``CLIReporter().render(trials, False, status)``)::

    == Status ==
    Current time: 2026-11-22 10:19:34 (running for 00:00:04.54)
    Using FIFO scheduling algorithm.
    Logical resource usage: 4.0/8 CPUs, 0/0 GPUs
    Result logdir: /root/atune_results/exp
    Number of trials: 4/20 (1 PENDING, 2 RUNNING, 1 TERMINATED)
    +----------------------+------------+--------+---------+--------+------------------+
    | Trial name           | status     |     lr |    loss |   iter |   total time (s) |
    |----------------------+------------+--------+---------+--------+------------------|
    | train_fn_3a1f2_00001 | RUNNING    | 0.01   | 0.41235 |      7 |           3.2101 |
    ...
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from atune._metric import validate_mode
from atune._trial import Trial
from atune._util import lookup
from atune.callbacks._result_yaml import format_result
from atune.callbacks._status_table import (
    best_trial,
    count_line,
    cut_head,
    duration,
    fair_select,
    format_value,
    group_by_status,
    param_value,
    table,
)
from atune.errors import ConfigError
from atune.result import ERROR_FILE

__all__ = [
    "DEFAULT_METRIC_COLUMNS",
    "CLIReporter",
    "ExperimentStatus",
    "ProgressReporter",
    "format_result",
]

#: Rows of the trial table in intermediate reports: about one terminal screen.
DEFAULT_MAX_PROGRESS_ROWS = 20
#: Rows of the error table in intermediate reports: about one terminal screen.
DEFAULT_MAX_ERROR_ROWS = 20
#: Characters per parameter/metric cell and header: keeps 5-6 columns within 120.
DEFAULT_MAX_COLUMN_LENGTH = 20
#: Seconds between two intermediate reports: often enough to follow, rare enough
#: that the table does not scroll the terminal away (Ray Tune's default).
DEFAULT_MAX_REPORT_FREQUENCY_S = 5.0
#: Metric columns shown by default when some result has them: key -> header.
DEFAULT_METRIC_COLUMNS: Mapping[str, str] = {
    "mean_accuracy": "acc",
    "mean_loss": "loss",
    "training_iteration": "iter",
    "time_total_s": "total time (s)",
    "timesteps_total": "ts",
    "episode_reward_mean": "reward",
}


@dataclass(frozen=True)
class ExperimentStatus:
    """What the controller knows about the experiment, for the status header.

    Attributes:
        start_time: When the experiment started (seconds since the epoch).
        scheduler_line: The scheduler's ``debug_string()``,
            e.g. ``"Using FIFO scheduling algorithm."``.
        resources_line: e.g. ``"Logical resource usage: 4.0/8 CPUs, 0/0 GPUs"``.
        logdir: The experiment directory.
        total_samples: Trials the experiment will create (None if unknown, ``math.inf``
            or ``-1`` for no limit).
        metric: The experiment's metric (TuneConfig), shown as a column.
        mode: ``"min"`` or ``"max"``.
    """

    start_time: float
    scheduler_line: str = ""
    resources_line: str = ""
    logdir: str = ""
    total_samples: float | None = None
    metric: str | None = None
    mode: str | None = None

    def sys_info(self) -> tuple[str, ...]:
        """The scheduler, resources and logdir lines (the non-empty ones)."""
        lines = [self.scheduler_line, self.resources_line]
        if self.logdir:
            lines.append(f"Result logdir: {self.logdir}")
        return tuple(line for line in lines if line)

    def __str__(self) -> str:
        return "\n".join(self.sys_info())


class ProgressReporter:
    """Interface of progress reporters: when to report, and how.

    Subclass it to send progress anywhere (a file, a logger, a web page). The
    controller calls ``report(trials, done, status)`` with an :class:`ExperimentStatus`
    as the only ``sys_info`` item; ``str(status)`` gives its lines.
    """

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        """Whether to report now.

        Args:
            trials: Every trial of the experiment.
            done: True for the last call, once the experiment is over.
        """
        raise NotImplementedError

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        """Reports progress.

        Args:
            trials: Every trial of the experiment.
            done: True for the final report.
            *sys_info: An :class:`ExperimentStatus` (from the controller), and any
                extra lines.
        """
        raise NotImplementedError


class CLIReporter(ProgressReporter):
    """Prints a status table of the trials to the terminal.

    Args:
        metric_columns: Result keys to show, as a list or ``{key: header}``. Default:
            :data:`DEFAULT_METRIC_COLUMNS` preceded by the experiment's metric.
            Nested keys are written ``"a/b"``.
        parameter_columns: Config keys to show, as a list or ``{key: header}``.
            Default: the keys of the trials' ``evaluated_params`` (the sampled ones).
        total_samples: Shown as ``Number of trials: n/total``; defaults to the
            status' ``total_samples``.
        max_progress_rows: Trial rows of an intermediate report; the final report
            shows every trial.
        max_error_rows: Rows of the error table of an intermediate report.
        max_column_length: Longer cells and headers are cut, marked with ``…``.
        max_report_frequency: Minimum seconds between two intermediate reports.
        metric: Metric for the "current best trial" line and ``sort_by_metric``;
            defaults to the status' metric.
        mode: ``"min"`` or ``"max"``; defaults to the status' mode.
        sort_by_metric: Sort the trials of each status group best first instead of
            by trial id.
        file: Where to print (default: ``sys.stdout`` at each report).
        clock: Monotonic clock for ``max_report_frequency`` (injectable for tests).
        wall_clock: Wall clock for the "Current time" line.

    Columns whose cells are all empty are hidden. Columns that hold only numbers are
    right-aligned.

    Example:
        >>> reporter = CLIReporter(max_progress_rows=10)
        >>> reporter.add_metric_column("custom_metric")
    """

    def __init__(
        self,
        *,
        metric_columns: Sequence[str] | Mapping[str, str] | None = None,
        parameter_columns: Sequence[str] | Mapping[str, str] | None = None,
        total_samples: int | None = None,
        max_progress_rows: int = DEFAULT_MAX_PROGRESS_ROWS,
        max_error_rows: int = DEFAULT_MAX_ERROR_ROWS,
        max_column_length: int = DEFAULT_MAX_COLUMN_LENGTH,
        max_report_frequency: float = DEFAULT_MAX_REPORT_FREQUENCY_S,
        metric: str | None = None,
        mode: str | None = None,
        sort_by_metric: bool = False,
        file: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value, low in (
            ("max_progress_rows", max_progress_rows, 1),
            ("max_error_rows", max_error_rows, 1),
            ("max_column_length", max_column_length, 2),
        ):
            if value < low:
                raise ConfigError(f"`{name}` must be >= {low}, got {value!r}")
        if max_report_frequency < 0:
            raise ConfigError(f"`max_report_frequency` must be >= 0, got {max_report_frequency!r}")
        validate_mode(mode)
        self._infer_metrics = metric_columns is None
        self._metric_columns = _as_columns(
            DEFAULT_METRIC_COLUMNS if metric_columns is None else metric_columns
        )
        self._infer_parameters = parameter_columns is None
        self._parameter_columns = _as_columns(parameter_columns or ())
        self._total_samples = total_samples
        self._max_progress_rows = max_progress_rows
        self._max_error_rows = max_error_rows
        self._max_column_length = max_column_length
        self._max_report_frequency = max_report_frequency
        self._metric = metric
        self._mode = mode
        self._sort_by_metric = sort_by_metric
        self._file = file
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_report: float | None = None

    def add_metric_column(self, metric: str, representation: str | None = None) -> None:
        """Adds a result key as a column (shown once some result has it).

        Args:
            metric: The result key (``"a/b"`` for nested ones).
            representation: The column header (default: the key).

        Raises:
            ConfigError: The column is already shown.
        """
        _add_column(self._metric_columns, "metric", metric, representation)

    def add_parameter_column(self, parameter: str, representation: str | None = None) -> None:
        """Adds a config key as a column, after the default (sampled) parameters.

        Args:
            parameter: The config key (``"a/b"`` for nested ones).
            representation: The column header (default: the key).

        Raises:
            ConfigError: The column is already shown.
        """
        _add_column(self._parameter_columns, "parameter", parameter, representation)

    def should_report(self, trials: list[Trial], done: bool = False) -> bool:
        """True at most once per ``max_report_frequency`` seconds, and always when done."""
        now = self._clock()
        if self._last_report is None or now - self._last_report >= self._max_report_frequency:
            self._last_report = now
            return True
        return done

    def report(self, trials: list[Trial], done: bool, *sys_info: Any) -> None:
        """Prints :meth:`render` (a short blocking write to the terminal)."""
        print(self.render(trials, done, *sys_info), file=self._file or sys.stdout, flush=True)

    def render(self, trials: list[Trial], done: bool = False, *sys_info: Any) -> str:
        """The status text: header lines, the trial table and the error table.

        Args:
            trials: Every trial of the experiment.
            done: Final report: every trial and every error is listed.
            *sys_info: An :class:`ExperimentStatus` and/or extra lines (strings).
        """
        status = next((s for s in sys_info if isinstance(s, ExperimentStatus)), None)
        extra = [str(s) for s in sys_info if not isinstance(s, ExperimentStatus)]
        metric = self._metric or (status.metric if status else None)
        mode = self._mode or (status.mode if status else None)
        total: float | None = self._total_samples
        if total is None and status is not None:
            total = status.total_samples

        lines = ["== Status =="]
        lines.append(self._time_line(status))
        if status is not None:
            lines.extend(status.sys_info())
        lines.extend(extra)
        if metric and mode:
            best = best_trial(trials, metric, mode)
            if best is not None:
                lines.append(self._best_line(best, metric))
        lines.append(count_line(trials, total))
        if trials:
            lines.extend(self._trial_table(trials, done, metric, mode))
        errored = [t for t in trials if t.status == Trial.ERROR]
        if errored:
            lines.append("")
            lines.extend(self._error_table(errored, done))
        return "\n".join(lines)

    # Pieces of the report.

    def _time_line(self, status: ExperimentStatus | None) -> str:
        now = self._wall_clock()
        line = f"Current time: {datetime.datetime.fromtimestamp(now):%Y-%m-%d %H:%M:%S}"
        if status is not None:
            line += f" (running for {duration(now - status.start_time)})"
        return line

    def _best_line(self, trial: Trial, metric: str) -> str:
        value = format_value(lookup(trial.last_result, metric), self._max_column_length)
        params = dict(trial.evaluated_params)
        return f"Current best trial: {trial.trial_id} with {metric}={value} and parameters={params}"

    def _columns(self, trials: list[Trial], metric: str | None) -> list[tuple[str, str, bool]]:
        """``(key, header, is_parameter)`` of every column that has a value somewhere."""
        params: dict[str, str] = {}
        if self._infer_parameters:
            for trial in trials:
                for key in trial.evaluated_params:
                    params.setdefault(key, key)
        for key, header in self._parameter_columns.items():
            params.setdefault(key, header)
        metrics: dict[str, str] = {}
        if self._infer_metrics and metric and metric not in self._metric_columns:
            metrics[metric] = metric
        metrics.update(self._metric_columns)

        columns = []
        for key, header in params.items():
            if any(param_value(t, key) is not None for t in trials):
                columns.append((key, header, True))
        for key, header in metrics.items():
            if any(lookup(t.last_result, key) is not None for t in trials):
                columns.append((key, header, False))
        return columns

    def _trial_table(
        self, trials: list[Trial], done: bool, metric: str | None, mode: str | None
    ) -> list[str]:
        columns = self._columns(trials, metric)
        by_metric = metric if (self._sort_by_metric and metric and mode) else None
        groups = group_by_status(trials, by_metric, mode)
        limit = None if done else self._max_progress_rows
        shown, omitted = fair_select(groups, limit)

        headers = ["Trial name", "status"]
        headers += [cut_head(header, self._max_column_length) for _, header, _ in columns]
        rows = []
        for trial in shown:
            row: list[Any] = [trial.name, trial.status]
            for key, _, is_param in columns:
                value = param_value(trial, key) if is_param else lookup(trial.last_result, key)
                row.append(value)
            rows.append(row)
        lines = table(headers, rows, self._max_column_length, free_columns=(0, 1))
        if omitted:
            detail = ", ".join(f"{n} {s}" for s, n in omitted.items())
            lines.append(f"... {sum(omitted.values())} more trials not shown ({detail})")
        return lines

    def _error_table(self, errored: list[Trial], done: bool) -> list[str]:
        errored = sorted(errored, key=lambda t: t.trial_id)
        limit = len(errored) if done else self._max_error_rows
        rows: list[list[Any]] = [
            [t.name, t.num_failures, os.path.join(t.local_path, ERROR_FILE) if t.local_path else ""]
            for t in errored[:limit]
        ]
        lines = [f"Number of errored trials: {len(errored)}"]
        lines += table(
            ["Trial name", "# failures", "error file"],
            rows,
            self._max_column_length,
            free_columns=(0, 2),
        )
        if len(errored) > limit:
            lines.append(f"... {len(errored) - limit} more errored trials not shown")
        return lines


def _as_columns(columns: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(columns, Mapping):
        return {str(k): str(v) for k, v in columns.items()}
    if isinstance(columns, str):
        raise ConfigError(f"columns must be a list or a dict of keys, got the string {columns!r}")
    return {str(k): str(k) for k in columns}


def _add_column(columns: dict[str, str], kind: str, key: str, header: str | None) -> None:
    if key in columns:
        raise ConfigError(f"{kind} column {key!r} already exists")
    columns[key] = header or key
