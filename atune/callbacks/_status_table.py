"""The pure formatting of the status report: cells, row selection and the grid.

No state and no I/O: :class:`~atune.callbacks.CLIReporter` decides what to show and
these functions turn it into lines of text.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable
from typing import Any

from atune._metric import is_rankable, metric_number
from atune._trial import Trial
from atune._util import lookup

__all__ = [
    "ELLIPSIS",
    "FLOAT_SIGNIFICANT_DIGITS",
    "STATUS_ORDER",
    "best_trial",
    "count_line",
    "cut_head",
    "duration",
    "fair_select",
    "format_value",
    "group_by_status",
    "param_value",
    "table",
]

#: Significant digits of floats in the table: enough to compare close trials.
FLOAT_SIGNIFICANT_DIGITS = 5
#: Marks a truncated cell or header (one terminal column wide).
ELLIPSIS = "…"


#: Order of the status groups in the trial table.
STATUS_ORDER = (Trial.RUNNING, Trial.PAUSED, Trial.PENDING, Trial.TERMINATED, Trial.ERROR)


def param_value(trial: Trial, key: str) -> Any:
    """The trial's value of a parameter column: the sampled one, else the config's."""
    if key in trial.evaluated_params:
        return trial.evaluated_params[key]
    return lookup(trial.config, key)


def format_value(value: Any, max_length: int) -> str:
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


def cut_head(text: str, max_length: int) -> str:
    """Keeps the end of a header, where nested keys differ: ``"…ptimizer/lr"``."""
    return text if len(text) <= max_length else ELLIPSIS + text[-(max_length - 1) :]


def duration(seconds: float) -> str:
    """``HH:MM:SS.ss``, e.g. ``00:00:04.54``."""
    centis = max(0, round(seconds * 100))
    hours, centis = divmod(centis, 360_000)
    minutes, centis = divmod(centis, 6_000)
    return f"{hours:02d}:{minutes:02d}:{centis / 100:05.2f}"


def count_line(trials: list[Trial], total: float | None) -> str:
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
    value = metric_number(lookup(trial.last_result, metric))
    if value is None or not is_rankable(value):
        return (1, 0.0)
    return (0, -value if mode == "max" else value)


def best_trial(trials: Iterable[Trial], metric: str, mode: str) -> Trial | None:
    ranked = [(_metric_key(t, metric, mode), t.trial_id, t) for t in trials]
    ranked = [r for r in ranked if r[0][0] == 0]
    return min(ranked, key=lambda r: (r[0], r[1]))[2] if ranked else None


def group_by_status(
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


def fair_select(
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


def table(
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
                numeric[i] = numeric[i] and metric_number(value) is not None
            else:
                text = format_value(value, max_length)
                if value is not None:
                    numeric[i] = numeric[i] and metric_number(value) is not None
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
