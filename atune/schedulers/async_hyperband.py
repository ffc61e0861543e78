"""Asynchronous successive halving (ASHA): stop the worse trials at geometric milestones.

The algorithm of Li et al., "A System for Massively Parallel Hyperparameter Tuning"
(https://arxiv.org/abs/1810.05934), with the decisions Ray Tune's
``AsyncHyperBandScheduler`` makes:

* Bracket ``s`` (``0 <= s < brackets``) has a rung at each milestone
  ``grace_period * reduction_factor**(k + s)``, ``k = 0, 1, ...``, while it is
  ``<= max_t``; rungs are kept highest first.
* A new trial joins bracket ``s`` with probability proportional to
  ``exp(n_s - max(n))``, where ``n_s`` is the number of rungs of bracket ``s``.
* For a result with time ``t = result[time_attr]`` and reward
  ``r = result[metric]`` (negated when ``mode="min"``, so higher is better):
  if ``stop_last_trials`` and ``t >= max_t``: STOP. Otherwise walk the trial's
  rungs from the highest down and take the first one with ``milestone <= t`` at
  which the trial has no reward recorded yet. Its cutoff is the
  ``100 * (1 - 1/reduction_factor)``-th percentile (linear interpolation, NaNs
  ignored) of the rewards recorded there so far, or none while the rung is empty.
  Record ``r`` there; STOP if there was a cutoff and ``r < cutoff``, else CONTINUE.

Only one rung is considered per result. A trial whose time jumps past several
milestones in one result is recorded at the highest of them only; each later result
then fills in the highest rung it passed without recording (Ray Tune's walk skips
rungs already recorded and goes on down). With ``stop_last_trials=False`` the walk
instead ends at the first passed rung already recorded, so skipped rungs stay empty.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from atune._metric import legacy_metric_mode
from atune.errors import ConfigError, ConfigTypeError
from atune.schedulers._base import TrialScheduler, real_number
from atune.schedulers._result_fields import numeric_fields
from atune.schedulers.fifo import FIFOScheduler

if TYPE_CHECKING:
    from atune._engine.api import TuneController
    from atune._trial import Trial

__all__ = ["ASHAScheduler", "AsyncHyperBandScheduler", "rung_milestones"]

#: Relative slack when comparing a milestone with ``max_t``: ``grace * rf**k`` is
#: computed in floating point, and a milestone meant to equal ``max_t`` (0.1 * 3**2
#: for max_t=0.9) can land a few ulps above it.
_MILESTONE_RTOL = 1e-9


def rung_milestones(
    grace_period: float, max_t: float, reduction_factor: float, s: int = 0
) -> list[float]:
    """The rung milestones of bracket ``s``, highest first.

    ``grace_period * reduction_factor**(k + s)`` for ``k = 0, 1, ...`` while the value
    is ``<= max_t``; empty when even the first exceeds ``max_t``.

    Example:
        >>> rung_milestones(5, 100, 3, 0), rung_milestones(5, 100, 3, 1)
        ([45, 15, 5], [45, 15])
    """
    out: list[float] = []
    limit = max_t * (1 + _MILESTONE_RTOL)
    k = s
    while (milestone := grace_period * reduction_factor**k) <= limit:
        out.append(milestone)
        k += 1
    out.reverse()
    return out


class _Bracket:
    """The rungs of one bracket: per milestone, the reward each trial recorded there."""

    def __init__(
        self, milestones: list[float], reduction_factor: float, stop_last_trials: bool
    ) -> None:
        self.percentile = (1 - 1 / reduction_factor) * 100
        self.rungs: list[tuple[float, dict[str, float]]] = [(m, {}) for m in milestones]
        self.stop_last_trials = stop_last_trials

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        """The rung's percentile of the recorded rewards; None while it is empty."""
        if not recorded:
            return None
        values = np.fromiter(recorded.values(), dtype=float, count=len(recorded))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: the cutoff is NaN
            return float(np.nanpercentile(values, self.percentile, method="linear"))

    def on_result(self, trial_id: str, t: float, reward: float) -> str:
        for milestone, recorded in self.rungs:
            if not t >= milestone:  # (a NaN time passes no milestone)
                continue
            if trial_id in recorded:
                if not self.stop_last_trials:
                    break  # decided at this rung already; lower rungs are not revisited
                continue
            cutoff = self.cutoff(recorded)
            recorded[trial_id] = reward
            # NaN never compares less: a NaN reward (or cutoff) lets the trial continue.
            if cutoff is not None and reward < cutoff:
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE

    def debug_str(self) -> str:
        parts = [f"Iter {m:.3f}: {self.cutoff(recorded)}" for m, recorded in self.rungs]
        return "Bracket: " + " | ".join(parts)


class AsyncHyperBandScheduler(FIFOScheduler):
    """Asynchronous successive halving: the easiest early-stopping scheduler to start with.

    Trials never wait for each other: at each rung milestone a trial continues if its
    reward is at least the ``1 - 1/reduction_factor`` percentile of the rewards
    recorded at that rung before it (so about the best ``1/reduction_factor`` go on),
    and stops otherwise. Needs no checkpointing and works with any searcher. The
    decision rule is stated in full in the module docstring.

    Args:
        time_attr: The result field that measures progress; any monotonically
            increasing field works (``training_iteration``, ``time_total_s``, ...).
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        max_t: Trials stop once ``time_attr`` reaches this (when ``stop_last_trials``).
        grace_period: No trial is stopped before ``time_attr`` reaches this; the
            lowest rung's milestone.
        reduction_factor: Rung spacing and cull rate: milestones grow by this factor
            and about ``1/reduction_factor`` of the trials pass each rung.
        brackets: Number of brackets; bracket ``s`` starts its rungs at
            ``grace_period * reduction_factor**s``. The default 1 is what the
            authors recommend.
        stop_last_trials: Stop trials at ``max_t``; if False they run on, and trials
            that passed the last rung are never judged again.
        reward_attr: Ray Tune 0.7's name for a metric to maximise (sets
            ``metric=reward_attr, mode="max"``). The 0.7 defaults were
            ``grace_period=10, reduction_factor=3, brackets=3``; pass them to get
            0.7's rungs.
        seed: (atune addition) Seed of the generator that assigns trials to brackets,
            for reproducible runs. Without it the generator is seeded from NumPy's
            global generator, so ``np.random.seed(...)`` makes runs reproducible as in
            Ray Tune. Irrelevant with one bracket.

    Example:
        >>> from atune.schedulers.async_hyperband import ASHAScheduler
        >>> sched = ASHAScheduler(metric="loss", mode="min", max_t=100,
        ...                       grace_period=5, reduction_factor=3, brackets=3)
        >>> sched.milestones
        [[45, 15, 5], [45, 15], [45]]
        >>> print(sched.debug_string())
        Using AsyncHyperBand: num_stopped=0
        Bracket: Iter 45.000: None | Iter 15.000: None | Iter 5.000: None
        Bracket: Iter 45.000: None | Iter 15.000: None
        Bracket: Iter 45.000: None
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
        *,
        reward_attr: str | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(time_attr, str):
            raise ConfigTypeError(f"`time_attr` must be a result field name, got {time_attr!r}")
        max_t_f = real_number("max_t", max_t)
        grace_f = real_number("grace_period", grace_period)
        rf = real_number("reduction_factor", reduction_factor)
        if not (max_t_f > 0 and math.isfinite(max_t_f)):
            raise ConfigError(f"`max_t` must be a finite number > 0, got {max_t!r}")
        if not grace_f > 0:
            raise ConfigError(f"`grace_period` must be > 0, got {grace_period!r}")
        if not max_t_f >= grace_f:
            raise ConfigError(
                f"`grace_period` must be <= `max_t` ({max_t!r}), got {grace_period!r}"
            )
        if not (rf > 1 and math.isfinite(rf)):
            raise ConfigError(f"`reduction_factor` must be > 1, got {reduction_factor!r}")
        if isinstance(brackets, bool) or not isinstance(brackets, numbers.Integral):
            raise ConfigTypeError(f"`brackets` must be an int, got {brackets!r}")
        if brackets < 1:
            raise ConfigError(f"`brackets` must be >= 1, got {brackets!r}")
        metric, mode = legacy_metric_mode(metric, mode, reward_attr)
        super().__init__(metric, mode)
        self._time_attr: str = time_attr
        self._max_t: float = max_t
        self._grace_period: float = grace_period
        self._reduction_factor: float = reduction_factor
        self._stop_last_trials: bool = bool(stop_last_trials)
        self._brackets: list[_Bracket] = [
            _Bracket(
                rung_milestones(grace_period, max_t, reduction_factor, s),
                rf,
                self._stop_last_trials,
            )
            for s in range(int(brackets))
        ]
        sizes = np.array([len(b.rungs) for b in self._brackets], dtype=float)
        weights = np.exp(sizes - sizes.max())
        self._bracket_probs: np.ndarray = weights / weights.sum()
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        self._rng: np.random.Generator = np.random.default_rng(seed)
        self._trial_bracket: dict[str, int] = {}  # trial id -> index into _brackets
        self._stopped: set[str] = set()
        self._num_stopped: int = 0

    # ------------------------------------------------------------------ queries
    @property
    def milestones(self) -> list[list[float]]:
        """Each bracket's rung milestones, highest first."""
        return [[m for m, _ in b.rungs] for b in self._brackets]

    @property
    def bracket_probabilities(self) -> list[float]:
        """The probability that a new trial joins each bracket."""
        return [float(p) for p in self._bracket_probs]

    def debug_string(self) -> str:
        """``Using AsyncHyperBand: num_stopped=<k>`` and one ``Bracket:`` line each.

        Each bracket line lists its rungs, highest first, as ``Iter <milestone>:
        <cutoff>``; the cutoff is in the scheduler's internal sign (negated for
        ``mode="min"``, as in Ray Tune) and ``None`` while the rung is empty.
        """
        lines = [f"Using AsyncHyperBand: num_stopped={self._num_stopped}"]
        lines.extend(b.debug_str() for b in self._brackets)
        return "\n".join(lines)

    # ----------------------------------------------------------------- handlers
    async def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        self._require_metric_mode()
        self._bracket_of(trial.trial_id)

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        metric, sign = self._require_metric_mode()
        tid = trial.trial_id
        if tid in self._stopped:
            return TrialScheduler.STOP  # a stop is final, whatever the trial reports after
        fields = numeric_fields(type(self).__name__, result, (self._time_attr, metric))
        if fields is None:
            return TrialScheduler.CONTINUE
        t, value = fields
        if self._stop_last_trials and t >= self._max_t:
            action = TrialScheduler.STOP
        else:
            action = self._bracket_of(tid).on_result(tid, t, sign * value)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
            self._stopped.add(tid)
        return action

    async def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        """Record the final result at its rung (it may not have been decided on).

        A trial ended by a stopper or by ``done=True`` has a last result that
        :meth:`on_trial_result` never saw; it counts for the rung cutoffs as in Ray Tune.
        """
        tid = trial.trial_id
        index = self._trial_bracket.pop(tid, None)
        metric = self.metric
        if index is None or tid in self._stopped or metric is None or self.mode is None:
            return
        if result.get(self._time_attr) is None or result.get(metric) is None:
            return
        fields = numeric_fields(type(self).__name__, result, (self._time_attr, metric))
        if fields is not None:
            t, value = fields
            sign = 1.0 if self.mode == "max" else -1.0
            self._brackets[index].on_result(tid, t, sign * value)

    async def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        # The rewards it recorded stay in the rungs: they still shape the cutoffs.
        self._trial_bracket.pop(trial.trial_id, None)

    # ------------------------------------------------------------------ helpers
    def _require_metric_mode(self) -> tuple[str, float]:
        """The metric and the sign that makes larger rewards better."""
        metric, mode = self._metric_and_mode()
        return metric, 1.0 if mode == "max" else -1.0

    def _bracket_of(self, trial_id: str) -> _Bracket:
        index = self._trial_bracket.get(trial_id)
        if index is None:
            if len(self._brackets) == 1:
                index = 0
            else:
                index = int(self._rng.choice(len(self._brackets), p=self._bracket_probs))
            self._trial_bracket[trial_id] = index
        return self._brackets[index]


#: Ray Tune's short name for the same scheduler.
ASHAScheduler = AsyncHyperBandScheduler
