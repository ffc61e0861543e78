"""Console progress output: the ``== Status ==`` table and per-result blocks.

The controller owns *when* to print: it asks :meth:`ProgressReporter.should_report`
and then calls :meth:`ProgressReporter.report` with the trials and an
:class:`ExperimentStatus` it fills in. Everything here is pure formatting except the
final ``print``; :meth:`CLIReporter.render` returns the text without printing it.

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
import math
import numbers
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from atune._metric import is_rankable, metric_number
from atune._trial import Trial
from atune.errors import ConfigError
from atune.result import CONFIG, ERROR_FILE

if TYPE_CHECKING:
    from collections.abc import Iterable

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
#: Significant digits of floats in the table: enough to compare close trials.
FLOAT_SIGNIFICANT_DIGITS = 5
#: Marks a truncated cell or header (one terminal column wide).
ELLIPSIS = "…"

#: Metric columns shown by default when some result has them: key -> header.
DEFAULT_METRIC_COLUMNS: Mapping[str, str] = {
    "mean_accuracy": "acc",
    "mean_loss": "loss",
    "training_iteration": "iter",
    "time_total_s": "total time (s)",
    "timesteps_total": "ts",
    "episode_reward_mean": "reward",
}

#: Order of the status groups in the trial table.
STATUS_ORDER = (Trial.RUNNING, Trial.PAUSED, Trial.PENDING, Trial.TERMINATED, Trial.ERROR)

_NO_VALUE = object()


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
        if mode not in (None, "min", "max"):
            raise ConfigError(f"`mode` must be 'min' or 'max', got {mode!r}")
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
        if metric in self._metric_columns:
            raise ConfigError(f"metric column {metric!r} already exists")
        self._metric_columns[metric] = representation or metric

    def add_parameter_column(self, parameter: str, representation: str | None = None) -> None:
        """Adds a config key as a column, after the default (sampled) parameters.

        Args:
            parameter: The config key (``"a/b"`` for nested ones).
            representation: The column header (default: the key).

        Raises:
            ConfigError: The column is already shown.
        """
        if parameter in self._parameter_columns:
            raise ConfigError(f"parameter column {parameter!r} already exists")
        self._parameter_columns[parameter] = representation or parameter

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
            best = _best_trial(trials, metric, mode)
            if best is not None:
                lines.append(self._best_line(best, metric))
        lines.append(_count_line(trials, total))
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
            line += f" (running for {_duration(now - status.start_time)})"
        return line

    def _best_line(self, trial: Trial, metric: str) -> str:
        value = _format_value(_lookup(trial.last_result, metric), self._max_column_length)
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
            if any(_param_value(t, key) is not None for t in trials):
                columns.append((key, header, True))
        for key, header in metrics.items():
            if any(_lookup(t.last_result, key) is not None for t in trials):
                columns.append((key, header, False))
        return columns

    def _trial_table(
        self, trials: list[Trial], done: bool, metric: str | None, mode: str | None
    ) -> list[str]:
        columns = self._columns(trials, metric)
        by_metric = metric if (self._sort_by_metric and metric and mode) else None
        groups = _group_by_status(trials, by_metric, mode)
        limit = None if done else self._max_progress_rows
        shown, omitted = _fair_select(groups, limit)

        headers = ["Trial name", "status"]
        headers += [_cut_head(header, self._max_column_length) for _, header, _ in columns]
        rows = []
        for trial in shown:
            row: list[Any] = [trial.name, trial.status]
            for key, _, is_param in columns:
                value = _param_value(trial, key) if is_param else _lookup(trial.last_result, key)
                row.append(value)
            rows.append(row)
        lines = _table(headers, rows, self._max_column_length, free_columns=(0, 1))
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
        lines += _table(
            ["Trial name", "# failures", "error file"],
            rows,
            self._max_column_length,
            free_columns=(0, 2),
        )
        if len(errored) > limit:
            lines.append(f"... {len(errored) - limit} more errored trials not shown")
        return lines


# ------------------------------------------------------------------ pure formatting


def _as_columns(columns: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(columns, Mapping):
        return {str(k): str(v) for k, v in columns.items()}
    if isinstance(columns, str):
        raise ConfigError(f"columns must be a list or a dict of keys, got the string {columns!r}")
    return {str(k): str(k) for k in columns}


def _lookup(data: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``data[key]``, or the nested value for ``"a/b"`` keys; ``default`` if absent."""
    if key in data:
        return data[key]
    node: Any = data
    for part in key.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _param_value(trial: Trial, key: str) -> Any:
    if key in trial.evaluated_params:
        return trial.evaluated_params[key]
    return _lookup(trial.config, key)


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (not a bool), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return float(value)
        except (OverflowError, TypeError, ValueError):
            return None
    return None


def _is_number(value: Any) -> bool:
    return _number(value) is not None


def _format_value(value: Any, max_length: int) -> str:
    """A table cell: floats to 5 significant digits, long text cut with ``…``."""
    if value is None:
        return ""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{FLOAT_SIGNIFICANT_DIGITS}g}"
    return _cut_tail(str(value), max_length)


def _cut_tail(text: str, max_length: int) -> str:
    """Keeps the start of a value: ``"adam_with_warm…"``."""
    return text if len(text) <= max_length else text[: max_length - 1] + ELLIPSIS


def _cut_head(text: str, max_length: int) -> str:
    """Keeps the end of a header, where nested keys differ: ``"…ptimizer/lr"``."""
    return text if len(text) <= max_length else ELLIPSIS + text[-(max_length - 1) :]


def _duration(seconds: float) -> str:
    """``HH:MM:SS.ss``, e.g. ``00:00:04.54``."""
    centis = max(0, round(seconds * 100))
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6_000)
    return f"{hours:02d}:{minutes:02d}:{centis / 100:05.2f}"


def _count_line(trials: list[Trial], total: float | None) -> str:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    if total is None or total == 0:
        of = ""
    elif total < 0 or math.isinf(total) or total >= sys.maxsize:
        of = "/infinite"
    else:
        of = f"/{int(total)}"
    detail = ", ".join(f"{counts[s]} {s}" for s in sorted(counts))
    line = f"Number of trials: {len(trials)}{of}"
    return f"{line} ({detail})" if detail else line


def _metric_key(trial: Trial, metric: str, mode: str | None) -> tuple[int, float]:
    """Sort key putting the best value of ``metric`` first and missing/NaN/inf values last.

    Which values count is :func:`atune._metric.is_rankable`, the rule of
    ``ResultGrid.get_best_result``.
    """
    value = metric_number(_lookup(trial.last_result, metric))
    if value is None or not is_rankable(value):
        return (1, 0.0)
    return (0, -value if mode == "max" else value)


def _best_trial(trials: Iterable[Trial], metric: str, mode: str) -> Trial | None:
    ranked = [(_metric_key(t, metric, mode), t.trial_id, t) for t in trials]
    ranked = [r for r in ranked if r[0][0] == 0]
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def _group_by_status(
    trials: list[Trial], metric: str | None, mode: str | None
) -> dict[str, list[Trial]]:
    """Trials per status, in :data:`STATUS_ORDER` (unknown statuses last, by name)."""
    groups: dict[str, list[Trial]] = {}
    for trial in trials:
        groups.setdefault(trial.status, []).append(trial)
    order = [s for s in STATUS_ORDER if s in groups]
    order += sorted(s for s in groups if s not in STATUS_ORDER)
    out = {}
    for status in order:
        members = groups[status]
        if metric is not None:
            members.sort(key=lambda t: (_metric_key(t, metric, mode), t.trial_id))
        else:
            members.sort(key=lambda t: t.trial_id)
        out[status] = members
    return out


def _fair_select(
    groups: dict[str, list[Trial]], limit: int | None
) -> tuple[list[Trial], dict[str, int]]:
    """At most ``limit`` trials, shared out round-robin between status groups.

    Returns:
        The trials to show (group by group) and, per status, how many are left out.
    """
    total = sum(len(g) for g in groups.values())
    if limit is None or total <= limit:
        return [t for g in groups.values() for t in g], {}
    quota = dict.fromkeys(groups, 0)
    left = limit
    while left > 0:
        for status, members in groups.items():
            if left > 0 and quota[status] < len(members):
                quota[status] += 1
                left -= 1
    shown = [t for status, members in groups.items() for t in members[: quota[status]]]
    omitted = {s: len(m) - quota[s] for s, m in groups.items() if len(m) > quota[s]}
    return shown, omitted


def _table(
    headers: list[str],
    rows: list[list[Any]],
    max_length: int,
    free_columns: tuple[int, ...] = (),
) -> list[str]:
    """A psql-style grid; numeric columns right-aligned.

    Args:
        headers: Column headers (already cut to length).
        rows: Raw cell values.
        max_length: Cut for text cells, except those of ``free_columns``.
        free_columns: Columns never cut (trial names, file paths).
    """
    cells = []
    numeric = [True] * len(headers)
    filled = [False] * len(headers)
    for row in rows:
        texts = []
        for i, value in enumerate(row):
            if i in free_columns:
                text = "" if value is None else str(value)
                numeric[i] = numeric[i] and _is_number(value)
            else:
                text = _format_value(value, max_length)
                if value is not None:
                    numeric[i] = numeric[i] and _is_number(value)
            filled[i] = filled[i] or bool(text)
            texts.append(text)
        cells.append(texts)
    numeric = [n and f for n, f in zip(numeric, filled)]
    widths = [len(h) for h in headers]
    for texts in cells:
        widths = [max(w, len(t)) for w, t in zip(widths, texts)]

    def line(texts: list[str]) -> str:
        parts = [t.rjust(w) if num else t.ljust(w) for t, w, num in zip(texts, widths, numeric)]
        return "| " + " | ".join(parts) + " |"

    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    under_header = "|" + "+".join("-" * (w + 2) for w in widths) + "|"
    return [border, line(headers), under_header, *(line(t) for t in cells), border]


# ------------------------------------------------------------------------- verbose=2


def format_result(trial: Trial, result: Mapping[str, Any]) -> str:
    """The verbose (``verbose=2``) block printed for one result.

    ``Result for <trial name>:`` then one ``key: value`` line per field, sorted by
    key, YAML-like (nested dicts indented by two more spaces). ``config`` and fields
    whose value is None are left out, as in Ray Tune.

    Example:
        >>> print(format_result(trial, {"done": False, "loss": 0.5}))  # doctest: +SKIP
        Result for train_fn_3a1f2_00000:
          done: false
          loss: 0.5
    """
    lines = [f"Result for {trial.name}:"]
    fields = {k: v for k, v in result.items() if k != CONFIG and v is not None}
    _yaml_lines(fields, 1, lines)
    return "\n".join(lines)


#: Nesting shown by :func:`format_result`; deeper (or self-referencing) dicts are
#: printed as one value.
_MAX_YAML_DEPTH = 16
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "~"})
_YAML_SPECIAL = frozenset(":#{}[],&*!|>'\"%@`\n")


def _yaml_lines(data: Mapping[Any, Any], depth: int, out: list[str]) -> None:
    pad = "  " * depth
    for key in sorted(data, key=str):
        value = data[key]
        if isinstance(value, Mapping) and value and depth < _MAX_YAML_DEPTH:
            out.append(f"{pad}{key}:")
            _yaml_lines(value, depth + 1, out)
        else:
            out.append(f"{pad}{key}: {_yaml_scalar(value)}")


def _yaml_scalar(value: Any) -> str:
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if tolist is not None and not isinstance(value, (str, bytes)):
        try:
            value = tolist()
        except Exception:  # a foreign tolist(): print the object itself
            pass
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _yaml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml_scalar(v)}" for k, v in value.items()) + "}"
    return _yaml_string(repr(value))


def _yaml_string(text: str) -> str:
    """``text`` as is, or quoted when YAML would read it as something else."""
    plain = (
        text
        and text.strip() == text
        and text.lower() not in _YAML_WORDS
        and not _YAML_SPECIAL.intersection(text)
        and not _number_like(text)
    )
    return text if plain else "'" + text.replace("'", "''") + "'"


def _number_like(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
