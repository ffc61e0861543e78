"""The median stopping rule of Google Vizier, with the decisions Ray Tune makes.

Golovin et al., "Google Vizier: A Service for Black-Box Optimization" (2017),
https://research.google.com/pubs/pub46180.html. For a result of trial ``T`` with time
``t = result[time_attr]``, first recorded in ``T``'s history:

1. ``t < grace_period``: CONTINUE.
2. The comparison set: every *other* trial whose latest recorded result has time
   ``>= t`` (running, paused, finished and stopped trials alike), each summarised
   by its running mean: the mean of its rewards whose time lies in
   ``[grace_period, t]``. Trials without such a result, or with a non-finite mean,
   are left out.
3. Fewer than ``min_samples_required`` means: not enough evidence. ``T`` yields
   (PAUSE) if some trial is waiting (PENDING or PAUSED) and ``T`` has advanced more
   than ``min_time_slice`` since it last yielded (always true the first time, even
   with ``min_time_slice=0``); else CONTINUE.
4. Otherwise ``M`` = the median of the running means and ``B`` = ``T``'s best
   reward so far (over all its results, the ones before ``grace_period`` too; NaNs
   ignored, all-NaN counts as worst). If ``B`` is strictly worse than ``M``
   (``B < M`` for ``mode="max"``, ``B > M`` for ``"min"``): STOP, or PAUSE when
   ``hard_stop=False``. A tie continues.

A trial stopped with ``hard_stop=False`` is only paused; when it resumes (after the
waiting trials, FIFO) it is never judged again and its later results are not
recorded, as in Ray Tune.
"""

from __future__ import annotations

import logging
import math
import numbers
import statistics
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

from atune._metric import legacy_metric_mode
from atune.errors import ConfigError, ConfigTypeError
from atune.schedulers._base import TrialScheduler, real_number
from atune.schedulers._result_fields import numeric_fields
from atune.schedulers.fifo import FIFOScheduler

if TYPE_CHECKING:
    from atune._engine.api import TuneController
    from atune._trial import Trial

__all__ = ["MedianStoppingRule"]

log = logging.getLogger("atune")

_WAITING = ("PENDING", "PAUSED")


class _History:
    """One trial's recorded ``(time, reward)`` pairs and its best rewards."""

    __slots__ = ("best_max", "best_min", "monotone", "rewards", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.rewards: list[float] = []
        # Times only go back when a paused trial without a checkpoint restarts from
        # scratch; until then the running mean finds its window by bisection.
        self.monotone = True
        self.best_max = math.nan
        self.best_min = math.nan

    def add(self, t: float, reward: float) -> None:
        if self.times and t < self.times[-1]:
            self.monotone = False
        self.times.append(t)
        self.rewards.append(reward)
        if not math.isnan(reward):
            if math.isnan(self.best_max) or reward > self.best_max:
                self.best_max = reward
            if math.isnan(self.best_min) or reward < self.best_min:
                self.best_min = reward

    @property
    def last_time(self) -> float:
        return self.times[-1]

    def running_mean(self, start: float, end: float) -> float:
        """Mean reward over the results with ``start <= time <= end``; NaN if none."""
        if self.monotone:
            values = self.rewards[bisect_left(self.times, start) : bisect_right(self.times, end)]
        else:
            values = [r for t, r in zip(self.times, self.rewards) if start <= t <= end]
        if not values:
            return math.nan
        try:
            mean = math.fsum(values) / len(values)
        except (ValueError, OverflowError):  # inf - inf, or a sum beyond float range
            return math.nan
        # Rounding can put the mean of equal values an ulp above them (3 * 0.1 / 3);
        # keep it within their range so that equally good trials tie exactly.
        return min(max(mean, min(values)), max(values))


class MedianStoppingRule(FIFOScheduler):
    """Stop a trial whose best result is worse than the median of the others' averages.

    Cheap and robust when many trials learn at a similar pace: a trial past the grace
    period stops as soon as its best reward so far is strictly worse than the median,
    over the other trials that got at least as far, of their average rewards from the
    grace period up to the same time. Needs no checkpointing and works with any
    searcher. The decision rule is stated in full in the module docstring.

    Args:
        time_attr: The result field that measures progress; any monotonically
            increasing field works (``training_iteration``, ``time_total_s``, ...).
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        grace_period: No trial is judged before ``time_attr`` reaches this, and the
            running means only count results from it on.
        min_samples_required: How many other trials must have reached the same time
            before a trial is judged.
        min_time_slice: When a trial cannot be judged yet and other trials wait, it
            yields its slot (PAUSE), but at most once per this much ``time_attr``.
            Yielding pauses the trial: give it a checkpoint to resume from (a class
            trainable is saved at the pause point; a function trainable resumes from
            the last checkpoint it reported, or from scratch).
        hard_stop: If False, a trial that falls below the median is paused instead of
            stopped; paused trials resume, FIFO, once no PENDING trial waits.
        reward_attr: Ray Tune 0.7's name for a metric to maximise (sets
            ``metric=reward_attr, mode="max"``).

    Example:
        >>> from atune.schedulers.median_stopping_rule import MedianStoppingRule
        >>> rule = MedianStoppingRule(time_attr="training_iteration", metric="acc",
        ...                           mode="max", grace_period=5)
        >>> rule.debug_string()
        'Using MedianStoppingRule: num_stopped=0.'
    """

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 60.0,
        min_samples_required: int = 3,
        min_time_slice: float = 0,
        hard_stop: bool = True,
        *,
        reward_attr: str | None = None,
    ) -> None:
        if not isinstance(time_attr, str):
            raise ConfigTypeError(f"`time_attr` must be a result field name, got {time_attr!r}")
        grace = real_number("grace_period", grace_period)
        if not (grace >= 0 and math.isfinite(grace)):
            raise ConfigError(f"`grace_period` must be a finite number >= 0, got {grace_period!r}")
        if isinstance(min_samples_required, bool) or not isinstance(
            min_samples_required, numbers.Integral
        ):
            raise ConfigTypeError(
                f"`min_samples_required` must be an int, got {min_samples_required!r}"
            )
        if min_samples_required < 1:
            raise ConfigError(f"`min_samples_required` must be >= 1, got {min_samples_required!r}")
        if not real_number("min_time_slice", min_time_slice) >= 0:
            raise ConfigError(f"`min_time_slice` must be >= 0, got {min_time_slice!r}")
        metric, mode = legacy_metric_mode(metric, mode, reward_attr)
        super().__init__(metric, mode)
        self._time_attr: str = time_attr
        self._grace_period: float = grace_period
        self._min_samples_required: int = int(min_samples_required)
        self._min_time_slice: float = min_time_slice
        self._hard_stop: bool = bool(hard_stop)
        self._histories: dict[str, _History] = {}  # trial id -> history, first result order
        self._stopped: set[str] = set()
        self._last_pause: dict[str, float] = {}  # trial id -> time of its last yield

    def debug_string(self) -> str:
        """``Using MedianStoppingRule: num_stopped=<k>.`` (trials stopped or, with
        ``hard_stop=False``, paused for falling below the median)."""
        return f"Using MedianStoppingRule: num_stopped={len(self._stopped)}."

    def sync_point(self, trial: Trial) -> tuple[str, float] | None:
        """Hold the trial at each result where this rule may PAUSE it.

        That is every result from ``grace_period`` on, except, with ``hard_stop``,
        results within ``min_time_slice`` of its last yield. A PAUSE then acts on
        exactly the state it was decided on (a class trainable is saved there).
        """
        tid = trial.trial_id
        if tid in self._stopped:
            # Stopped, or (hard_stop=False) paused below the median: no further decision;
            # it runs on FIFO when resumed.
            return None
        point = float(self._grace_period)
        history = self._histories.get(tid)
        if history is not None:
            point = max(point, history.last_time)
        if self._hard_stop and tid in self._last_pause:
            next_yield = self._last_pause[tid] + self._min_time_slice
            point = max(point, math.nextafter(next_yield, math.inf))
        return (self._time_attr, point)

    # ----------------------------------------------------------------- handlers
    async def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        self._metric_and_mode()

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        metric, mode = self._metric_and_mode()
        tid = trial.trial_id
        if tid in self._stopped:
            # Stopping is final; a trial paused below the median runs on FIFO.
            return TrialScheduler.STOP if self._hard_stop else TrialScheduler.CONTINUE
        fields = numeric_fields(type(self).__name__, result, (self._time_attr, metric))
        if fields is None or math.isnan(fields[0]):
            return TrialScheduler.CONTINUE
        t, value = fields
        history = self._histories.get(tid)
        if history is None:
            history = self._histories[tid] = _History()
        history.add(t, value)
        if t < self._grace_period:
            return TrialScheduler.CONTINUE

        means = self._running_means(tid, t)
        if len(means) < self._min_samples_required:
            return self._on_insufficient_samples(tune_controller, trial, t, len(means))
        median = statistics.median(means)
        best = history.best_max if mode == "max" else history.best_min
        log.debug("MedianStoppingRule: trial %s best=%s median=%s at t=%s", tid, best, median, t)
        worse = math.isnan(best) or (best < median if mode == "max" else best > median)
        if not worse:
            return TrialScheduler.CONTINUE
        self._stopped.add(tid)
        return TrialScheduler.STOP if self._hard_stop else TrialScheduler.PAUSE

    async def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        """Record the final result, unless it is the one already recorded.

        A trial ended by a stopper or by ``done=True`` has a last result that
        :meth:`on_trial_result` never saw. (Ray Tune appends the final result even
        when it was recorded already, counting it twice in the running mean; atune
        records each result once.)
        """
        metric = self.metric
        if metric is None or result.get(self._time_attr) is None or result.get(metric) is None:
            return
        fields = numeric_fields(type(self).__name__, result, (self._time_attr, metric))
        if fields is None or math.isnan(fields[0]):
            return
        t, value = fields
        history = self._histories.get(trial.trial_id)
        if history is None:
            history = self._histories[trial.trial_id] = _History()
        elif history.last_time == t:
            return
        history.add(t, value)

    # ------------------------------------------------------------------ helpers
    def _running_means(self, trial_id: str, t: float) -> list[float]:
        """Running means up to ``t`` of the other trials that reached ``t``."""
        means = []
        for other, history in self._histories.items():
            if other == trial_id or not history.last_time >= t:
                continue
            mean = history.running_mean(self._grace_period, t)
            if math.isfinite(mean):
                means.append(mean)
        return means

    def _on_insufficient_samples(
        self, tune_controller: TuneController, trial: Trial, t: float, samples: int
    ) -> str:
        since = t - self._last_pause.get(trial.trial_id, -math.inf)
        waiting = since > self._min_time_slice and any(
            other is not trial and other.status in _WAITING
            for other in tune_controller.get_live_trials()
        )
        log.debug(
            "MedianStoppingRule: %d samples < %d to judge trial %s at t=%s; %s",
            samples,
            self._min_samples_required,
            trial.trial_id,
            t,
            "yielding to waiting trials" if waiting else "continuing",
        )
        if not waiting:
            return TrialScheduler.CONTINUE
        self._last_pause[trial.trial_id] = t
        return TrialScheduler.PAUSE
