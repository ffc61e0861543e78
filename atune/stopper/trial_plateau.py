"""Stop a single trial once its metric has stopped moving."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from atune._metric import check_mode
from atune.errors import ConfigError
from atune.stopper._base import (
    Stopper,
    as_number,
    check_int,
    check_metric,
    check_positive,
    metric_value,
    pstdev,
)

__all__ = ["TrialPlateauStopper"]


class TrialPlateauStopper(Stopper):
    """Stop a trial when the standard deviation of its recent values falls below ``std``.

    For each trial the stopper keeps the last ``num_results`` values of ``metric``. On a
    result it stops the trial when all of these hold:

    * the trial has reported ``metric`` at least ``grace_period`` times;
    * at least ``num_results`` values are kept;
    * if ``metric_threshold`` is set, the current value is at least as good as it:
      ``value <= metric_threshold`` for ``mode="min"``, ``value >= metric_threshold``
      for ``mode="max"``;
    * the population standard deviation of the kept values is ``< std``.

    Results that do not carry ``metric`` as a number (missing, None, NaN) are ignored.
    Never stops the whole experiment.

    Args:
        metric: Metric to watch; ``"a/b"`` looks into nested result dicts.
        std: A trial has plateaued when the std of its last values is below this (> 0).
        num_results: How many of the last values the std is computed over (>= 1).
        grace_period: Minimum number of values before a trial can be stopped (>= 0).
        metric_threshold: Value the metric must reach before the trial may stop.
        mode: ``"min"`` or ``"max"``; required with ``metric_threshold``.

    Example:
        >>> stopper = TrialPlateauStopper("loss", std=0.01, num_results=2, grace_period=2)
        >>> [stopper("t1", {"loss": v}) for v in (1.0, 0.5, 0.5)]
        [False, False, True]
    """

    def __init__(
        self,
        metric: str,
        std: float = 0.01,
        num_results: int = 4,
        grace_period: int = 4,
        metric_threshold: float | None = None,
        mode: str | None = None,
    ) -> None:
        self._metric = check_metric(metric)
        self._std = check_positive(std, name="std")
        self._num_results = check_int(num_results, name="num_results", minimum=1)
        self._grace_period = check_int(grace_period, name="grace_period", minimum=0)
        if mode is not None:
            check_mode(mode)
        if metric_threshold is not None:
            threshold = as_number(metric_threshold)
            if threshold is None:
                raise ConfigError(
                    f"`metric_threshold` must be a number (not NaN) or None, "
                    f"got {metric_threshold!r}"
                )
            if mode is None:
                raise ConfigError(
                    "`mode` must be 'min' or 'max' when `metric_threshold` is set, got None"
                )
            metric_threshold = threshold
        self._metric_threshold = metric_threshold
        self._mode = mode
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._values: dict[str, deque[float]] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = metric_value(result, self._metric)
        if value is None:
            return False
        window = self._values.get(trial_id)
        if window is None:
            window = self._values[trial_id] = deque(maxlen=self._num_results)
        window.append(value)
        self._counts[trial_id] += 1
        if self._counts[trial_id] < self._grace_period or len(window) < self._num_results:
            return False
        if self._metric_threshold is not None:
            if self._mode == "min" and value > self._metric_threshold:
                return False
            if self._mode == "max" and value < self._metric_threshold:
                return False
        spread = pstdev(window)
        return spread < self._std  # False for NaN

    def __repr__(self) -> str:
        return (
            f"TrialPlateauStopper(metric={self._metric!r}, std={self._std}, "
            f"num_results={self._num_results}, grace_period={self._grace_period}, "
            f"metric_threshold={self._metric_threshold}, mode={self._mode!r})"
        )
