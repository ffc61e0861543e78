"""The ``metric``/``mode`` pair shared by searchers and schedulers."""

from __future__ import annotations

import math
import numbers
from typing import Any

from atune.errors import ConfigError

__all__ = [
    "MetricMode",
    "check_mode",
    "is_rankable",
    "legacy_metric_mode",
    "metric_number",
    "validate_mode",
]


def metric_number(value: Any) -> float | None:
    """``float(value)`` for a real number (NaN and inf included), else None.

    Python and numpy ints and floats count; bools, strings and other objects do not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        return None


def is_rankable(score: float) -> bool:
    """Whether a metric value takes part in "which trial is best" by default.

    NaN and infinite values do not. This is the rule of
    ``ResultGrid.get_best_result(filter_nan_and_inf=True)`` and of the status table's
    "Current best trial" line.
    """
    return math.isfinite(score)


def check_mode(mode: Any, *, name: str = "mode") -> str:
    """Return ``mode`` if it is ``"min"`` or ``"max"``; raise :class:`ConfigError` else."""
    if mode not in ("min", "max"):
        raise ConfigError(f"`{name}` must be 'min' or 'max', got {mode!r}")
    return mode


def validate_mode(mode: str | None, *, name: str = "mode") -> str | None:
    """Return ``mode`` if it is None, ``"min"`` or ``"max"``; raise :class:`ConfigError` else."""
    return None if mode is None else check_mode(mode, name=name)


def legacy_metric_mode(
    metric: str | None, mode: str | None, reward_attr: str | None
) -> tuple[str | None, str | None]:
    """Map the 0.7 ``reward_attr`` (always maximised) onto ``metric``/``mode``."""
    if reward_attr is None:
        return metric, mode
    if metric is not None and metric != reward_attr:
        raise ConfigError(
            f"give either `metric` or the 0.7 `reward_attr`, not both (got metric={metric!r}, "
            f"reward_attr={reward_attr!r})"
        )
    if mode not in (None, "max"):
        raise ConfigError(f"`reward_attr` is always maximised, but mode={mode!r} was given")
    return reward_attr, "max"


class MetricMode:
    """Holds the metric to optimise and its mode, validated.

    Args:
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
    """

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        self._metric = metric
        self._mode = validate_mode(mode)

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def _fill_metric_mode(self, metric: str | None, mode: str | None) -> None:
        """Take the experiment's metric and mode where none was given at construction."""
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = validate_mode(mode)
