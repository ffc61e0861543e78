"""Synchronous HyperBand: brackets of trials that wait for each other at shared milestones.

Three levels, as in Ray Tune. A *band* (printed ``Round #k``) holds up to ``s_max + 1``
*brackets*; bracket ``s`` holds up to ``n0(s)`` trials. Every trial of a bracket runs to
the bracket's milestone and waits there (PAUSED, its worker released) until all live
trials of the bracket have reached it. Then *successive halving* keeps the best
``ceil(n / eta)`` of them, stops the others, and moves the milestone up. After ``s``
halvings the survivors run to ``max_t``.

With ``eta = reduction_factor``::

    s_max + 1 = round(log(max_t) / log(eta)) + 1       # brackets per band
    n0(s)     = ceil((s_max + 1) / (s + 1) * eta**s)    # capacity of bracket s
    r0(s)     = int(max_t * eta**-s)                     # its first milestone

For ``max_t=81`` or ``100`` and ``eta=3``: 5 brackets of 5, 8, 15, 34, 81 trials, first
milestones 81, 27, 9, 3, 1 (or 100, 33, 11, 3, 1). Milestones are cumulative: a halving
multiplies the increment by ``eta`` and adds it, capped at ``max_t`` (11 -> 44 -> 100,
9 -> 36 -> 81).

The arithmetic and the bookkeeping live in :class:`_Bracket` (plain, synchronous); the
scheduler is the thin async shell the controller calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atune._engine.api import TuneController

import math
from collections import Counter
from fractions import Fraction
from typing import Any, ClassVar

from atune._metric import legacy_metric_mode
from atune._trial import Trial
from atune.errors import ConfigError
from atune.schedulers._base import TrialScheduler
from atune.schedulers._result_fields import numeric_fields
from atune.schedulers.fifo import FIFOScheduler

__all__ = [
    "HyperBandScheduler",
    "bracket_size",
    "brackets_per_band",
    "first_milestone",
]

#: Set to 1 to let results without the scheduler's metric or time attribute through
#: (they are then ignored by the scheduler) instead of failing the experiment.


def brackets_per_band(max_t: float, eta: float) -> int:
    """``s_max + 1 = round(log(max_t) / log(eta)) + 1``: brackets in one band."""
    return round(math.log(max_t) / math.log(eta)) + 1


def bracket_size(s: int, s_max_1: int, eta: float) -> int:
    """``n0(s) = ceil(s_max_1 / (s + 1) * eta**s)``: how many trials bracket ``s`` takes.

    Computed exactly (with fractions), so no rounding error can add a trial.
    """
    return math.ceil(Fraction(s_max_1, s + 1) * Fraction(eta) ** s)


def first_milestone(s: int, max_t: float, eta: float) -> int:
    """``r0(s) = int(max_t * eta**-s)``: where bracket ``s`` halves first (0: skip it)."""
    return math.floor(Fraction(max_t) / Fraction(eta) ** s)


def _total_work(n0: int, r0: int, s: int, eta: float, max_t: float) -> int:
    """The work a bracket is expected to do, the denominator of its ``completed`` %.

    Ray Tune's estimate, kept as is so the percentages match its output (the seed's
    ``completed=34.2%`` and ``22.6%``): each stage counts ``n * r`` with the increment
    capped at ``max_t - r0`` (not at what is left of ``max_t``).
    """
    work = 0
    n, r = n0, r0
    for _ in range(s + 1):
        work += int(n) * int(r)
        n = math.ceil(Fraction(n) / Fraction(eta))
        r = int(min(r * eta, max_t - r0))
    return work


class _Bracket:
    """One bracket: its trials, its milestone, and successive halving.

    Attributes:
        s: Halvings this bracket was created with (its index in the band).
        n: Max size: how many trials survive the current stage (``Max Size (n)``).
        milestone: The ``time_attr`` value the live trials run to before the next
            halving (``Milestone (r)``), cumulative; ``max_t`` once no halving is left.
        halves: Halvings still to come.
        live: Trials still in the bracket, each with its last result (None: none yet).
        promoted: Paused trials that survived the last halving and may resume.
    """

    def __init__(
        self,
        *,
        s: int,
        n0: int,
        r0: int,
        max_t: float,
        eta: float,
        time_attr: str,
        stop_last_trials: bool,
    ) -> None:
        self.s = s
        self.n = n0
        self.increment: float = r0
        self.milestone: float = r0
        self.halves = s
        self.max_t = max_t
        self.eta = eta
        self.time_attr = time_attr
        self.stop_last_trials = stop_last_trials
        self.live: dict[Trial, dict[str, Any] | None] = {}
        self.trials: list[Trial] = []
        self.promoted: set[Trial] = set()
        self.progress: float = 0.0
        self.total_work = _total_work(n0, r0, s, eta, max_t)

    # ------------------------------------------------------------------ state
    def add(self, trial: Trial) -> None:
        self.live[trial] = None
        self.trials.append(trial)

    def filled(self) -> bool:
        """True when as many trials are live as the current stage holds."""
        return len(self.live) >= self.n

    def time_of(self, trial: Trial) -> float:
        result = self.live.get(trial)
        if result is None:
            return 0
        value = result.get(self.time_attr)
        return value if isinstance(value, (int, float)) else 0

    def reached(self, trial: Trial) -> bool:
        """The trial's last result is at or past the milestone."""
        return self.time_of(trial) >= self.milestone

    def runs_free(self) -> bool:
        """No decision is left: last stage and trials are not stopped at ``max_t``."""
        return self.halves == 0 and not self.stop_last_trials

    def waits(self, trial: Trial) -> bool:
        """The trial must stop running now: it reached the milestone (or ``max_t``)."""
        return not self.runs_free() and self.reached(trial)

    def all_reached(self) -> bool:
        return all(self.reached(t) for t in self.live)

    def finished(self) -> bool:
        """The last halving is done and every live trial reached ``max_t``."""
        return self.stop_last_trials and self.halves == 0 and self.all_reached()

    def update(self, trial: Trial, result: dict[str, Any]) -> None:
        """Record a result; progress grows by the time it moved (less after a restore)."""
        before = self.time_of(trial)
        self.live[trial] = result
        self.progress += self.time_of(trial) - before
        self.promoted.discard(trial)

    def remove(self, trial: Trial) -> bool:
        """Drop a trial from the live set; True if it was live."""
        self.promoted.discard(trial)
        if trial not in self.live:
            return False
        del self.live[trial]
        return True

    # ---------------------------------------------------------------- halving
    def successive_halving(self, metric: str, sign: float) -> tuple[list[Trial], list[Trial]]:
        """Advance one stage: keep the best ``ceil(n / eta)`` live trials.

        Returns ``(good, bad)``: the survivors and the trials to stop, by ``sign *
        metric`` of their last result (NaN or missing counts as worst; ties go to the
        trial added later, as in Ray Tune). The milestone moves up by the increment
        times ``eta``, capped at ``max_t``; after the last halving it is ``max_t``.
        """
        assert self.halves > 0, "no halving left in this bracket"
        self.halves -= 1
        self.n = math.ceil(Fraction(self.n) / Fraction(self.eta))
        if self.halves == 0:
            self.increment = self.max_t - self.milestone
            self.milestone = self.max_t
        else:
            self.increment = int(min(self.increment * self.eta, self.max_t - self.milestone))
            self.milestone += self.increment

        def score(trial: Trial) -> float:
            result = self.live[trial] or {}
            value = result.get(metric)
            if not isinstance(value, (int, float)) or math.isnan(value):
                return -math.inf
            return sign * float(value)

        ranked = sorted(self.live, key=score)
        cut = max(0, len(ranked) - self.n)
        return ranked[cut:], ranked[:cut]

    # ---------------------------------------------------------------- display
    def completion(self) -> float:
        """Approximate progress in [0, 1]; unfilled brackets may never reach 1."""
        if self.finished():
            return 1.0
        if self.total_work <= 0:
            return 0.0
        return min(self.progress / self.total_work, 1.0)

    def __str__(self) -> str:
        counts = Counter(t.status for t in self.trials)
        statuses = ", ".join(sorted(f"{k}: {v}" for k, v in counts.items()))
        # The trailing space is Ray Tune's (seen in its console output).
        return (
            f"Bracket(Max Size (n)={self.n}, Milestone (r)={self.milestone}, "
            f"completed={self.completion():.1%}): {{{statuses}}} "
        )


class HyperBandScheduler(FIFOScheduler):
    """Synchronous HyperBand: early-stops trials by successive halving in brackets.

    New trials fill the current bracket; when it is full the next bracket of the band
    opens (smallest first: bracket 0 never halves, so with few trials there is little
    early stopping), and when the band is full a new band starts. A trial that reaches
    its bracket's milestone is PAUSED until every live trial of the bracket got there;
    then the best ``ceil(n / eta)`` by ``metric`` go on (paused ones resume from their
    checkpoint) and the rest are stopped. Trials are stopped at ``max_t``.

    Needs checkpointing: class trainables are saved at the milestone; function
    trainables resume from the latest checkpoint they reported (report one with each
    result, or at least at the milestones), else from scratch.

    Example::

        scheduler = HyperBandScheduler(metric="loss", mode="min", max_t=81)
        tune.Tuner(train, tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=30))

    Args:
        time_attr: The result field that measures progress; it must only grow
            (``training_iteration``, ``time_total_s``, ...).
        metric: The result field to compare trials by.
        mode: ``"min"`` or ``"max"``.
        max_t: Time units per trial (in ``time_attr``): trials are stopped there. Unlike
            the HyperBand paper's ``R``, this is the whole budget of one trial.
        reduction_factor: ``eta``: each halving keeps ``1 / eta`` of a bracket.
        stop_last_trials: Stop trials at ``max_t``. If False, the survivors of the last
            halving run on until something else stops them.
        reward_attr: Ray Tune 0.7's name: ``reward_attr="x"`` is ``metric="x", mode="max"``.

    Raises:
        ConfigError: ``max_t`` < 1, ``reduction_factor`` <= 1, a bad ``mode``, or (when
            the first trial is added) no metric/mode from here or ``TuneConfig``.
    """

    #: Fill order of the brackets in a band: smallest (``s = 0``) first.
    _largest_bracket_first: ClassVar[bool] = False

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
        *,
        reward_attr: str | None = None,
    ) -> None:
        metric, mode = legacy_metric_mode(metric, mode, reward_attr)
        super().__init__(metric, mode)
        if not isinstance(time_attr, str) or not time_attr:
            raise ConfigError(f"`time_attr` must be a result field name, got {time_attr!r}")
        if isinstance(max_t, bool) or not isinstance(max_t, (int, float)) or not max_t >= 1:
            # Milestones are whole numbers: below 1 even the first one would be 0.
            raise ConfigError(f"`max_t` must be >= 1, got {max_t!r}")
        if (
            isinstance(reduction_factor, bool)
            or not isinstance(reduction_factor, (int, float))
            or not reduction_factor > 1
        ):
            raise ConfigError(f"`reduction_factor` must be > 1, got {reduction_factor!r}")
        self._time_attr = time_attr
        self._max_t = max_t
        self._eta = reduction_factor
        self._stop_last_trials = bool(stop_last_trials)
        self._s_max_1 = brackets_per_band(max_t, reduction_factor)
        # Skipped brackets (first milestone 0) are kept as None, as in Ray Tune.
        self._bands: list[list[_Bracket | None]] = [[]]
        self._current: _Bracket | None = None
        self._bracket_of: dict[Trial, _Bracket] = {}
        self._num_stopped = 0
        # Bad trials told to PAUSE whose worker is still being saved: stopped once PAUSED
        # (asking the controller to stop a RUNNING trial would outlive the pause).
        self._stop_when_paused: dict[Trial, None] = {}
        self._unpaused: list[Trial] = []  # promoted by the last _process call

    # ------------------------------------------------------------ properties
    @property
    def time_attr(self) -> str:
        return self._time_attr

    @property
    def max_t(self) -> float:
        return self._max_t

    @property
    def reduction_factor(self) -> float:
        return self._eta

    def sync_point(self, trial: Trial) -> tuple[str, float] | None:
        """The trial's bracket milestone: the trainable waits exactly there."""
        bracket = self._bracket_of.get(trial)
        if bracket is None or bracket.runs_free():
            return None
        return self._time_attr, bracket.milestone

    # ----------------------------------------------------------------- events
    async def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        """Put the trial into the current bracket, opening brackets/bands as they fill."""
        self._require_metric_mode()
        bracket = self._current
        if bracket is None or bracket.filled():
            bracket = self._open_bracket()
        bracket.add(trial)
        self._bracket_of[trial] = bracket

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        """CONTINUE below the milestone; at it PAUSE, or halve now if it is the last one."""
        usable = self._check_result(trial, result)
        self._flush_stops(tune_controller)
        bracket = self._bracket_of.get(trial)
        if bracket is None:
            return TrialScheduler.CONTINUE  # not one of ours
        if trial not in bracket.live:
            return TrialScheduler.STOP  # already stopped by a halving: STOP is final
        if not usable:
            return TrialScheduler.CONTINUE
        bracket.update(trial, result)
        if not bracket.waits(trial):
            return TrialScheduler.CONTINUE
        action = self._process(tune_controller, bracket, trial)
        await self._after_process(tune_controller)
        return action

    async def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        """A trial ended on its own: drop it; its bracket may now halve."""
        await self._drop(tune_controller, trial)

    async def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        """A trial failed for good: drop it; its bracket may now halve."""
        await self._drop(tune_controller, trial)

    async def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        """A trial was removed: drop it; its bracket may now halve."""
        await self._drop(tune_controller, trial)

    async def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        """Bands in order; in a band, the least complete bracket first.

        Returns the first PENDING trial, or PAUSED trial promoted by a halving, that the
        cluster has resources for. Paused trials waiting for a halving never run.
        """
        self._flush_stops(tune_controller)
        return self._pick(tune_controller)

    def debug_string(self) -> str:
        """``Using HyperBand: num_stopped=<k> total_brackets=<m>``, then each band.

        Each bracket line reads ``Bracket(Max Size (n)=5, Milestone (r)=33,
        completed=14.6%): {PENDING: 2, RUNNING: 3, TERMINATED: 2}``: the trials the
        current stage holds, where it halves next, approximate progress (unfilled
        brackets may never reach 100%), and the statuses of all its trials.
        """
        total = sum(1 for band in self._bands for b in band if b is not None)
        lines = [f"Using HyperBand: num_stopped={self._num_stopped} total_brackets={total}"]
        for i, band in enumerate(self._bands):
            lines.append(f"Round #{i}:")
            lines.extend(f"  {bracket}" for bracket in band if bracket is not None)
        return "\n".join(lines)

    # -------------------------------------------------------------- internals
    def _require_metric_mode(self) -> None:
        if self._metric is None or self._mode is None:
            raise ConfigError(
                f"{type(self).__name__} needs `metric` and `mode`, got metric="
                f"{self._metric!r}, mode={self._mode!r}: pass them to the scheduler or to "
                "TuneConfig(metric=..., mode=...)"
            )

    def _check_result(self, trial: Trial, result: dict[str, Any]) -> bool:
        """True if the result has the metric and time attribute; else raise or skip it."""
        fields = (self._time_attr, self._metric or "")
        return numeric_fields(type(self).__name__, result, fields) is not None

    def _next_s(self, brackets_in_band: int) -> int:
        if self._largest_bracket_first:
            return self._s_max_1 - 1 - brackets_in_band
        return brackets_in_band

    def _open_bracket(self) -> _Bracket:
        """Open the next bracket of the band (or of a new band), skipping empty ones."""
        while True:
            band = self._bands[-1]
            if len(band) >= self._s_max_1:
                band = []
                self._bands.append(band)
            s = self._next_s(len(band))
            r0 = first_milestone(s, self._max_t, self._eta)
            if r0 == 0:
                band.append(None)  # too small a budget for this many halvings
                continue
            bracket = _Bracket(
                s=s,
                n0=bracket_size(s, self._s_max_1, self._eta),
                r0=r0,
                max_t=self._max_t,
                eta=self._eta,
                time_attr=self._time_attr,
                stop_last_trials=self._stop_last_trials,
            )
            band.append(bracket)
            self._current = bracket
            return bracket

    def _process(
        self, tune_controller: TuneController, bracket: _Bracket, current: Trial | None
    ) -> str:
        """Halve the bracket while all its live trials wait; the decision for ``current``.

        ``current`` is the trial whose result is being decided (it is RUNNING): it gets
        PAUSE (wait for the others), CONTINUE (promoted) or STOP (halved out, or at
        ``max_t``). Other trials are stopped or promoted through the controller.
        """
        assert self._metric is not None
        sign = 1.0 if self._mode == "max" else -1.0
        action = TrialScheduler.PAUSE
        # More than one halving at once only if survivors are already past the next
        # milestone (a time_attr that jumps); a bracket without trials never halves.
        while bracket.live and bracket.halves > 0 and bracket.all_reached():
            good, bad = bracket.successive_halving(self._metric, sign)
            self._num_stopped += len(bad)
            for t in bad:
                bracket.remove(t)
                if t is current:
                    action = TrialScheduler.STOP
                else:
                    self._stop_other(tune_controller, t)
            for t in good:
                if bracket.reached(t):
                    continue  # already past the new milestone: waits for the next halving
                if t is current:
                    action = TrialScheduler.CONTINUE
                else:
                    bracket.promoted.add(t)
                    self._unpaused.append(t)
        if bracket.halves == 0 and bracket.stop_last_trials:
            for t in [t for t in bracket.live if bracket.reached(t)]:
                bracket.remove(t)  # at max_t: done
                if t is current:
                    action = TrialScheduler.STOP
                else:
                    self._stop_other(tune_controller, t)
        return action

    async def _after_process(self, tune_controller: TuneController) -> None:
        """Hook after a halving, with the paused trials it promoted (none by default)."""
        self._unpaused.clear()

    def _stop_other(self, tune_controller: TuneController, trial: Trial) -> None:
        if trial.status == Trial.RUNNING:
            # Told to PAUSE at its milestone; the controller is still saving it.
            self._stop_when_paused[trial] = None
        elif trial.status in (Trial.PENDING, Trial.PAUSED):
            tune_controller.stop_trial(trial)

    def _flush_stops(self, tune_controller: TuneController) -> None:
        """Stop the halved-out trials whose pause has completed since."""
        for trial in list(self._stop_when_paused):
            if trial.status == Trial.PAUSED:
                del self._stop_when_paused[trial]
                tune_controller.stop_trial(trial)
            elif trial.status != Trial.RUNNING:
                del self._stop_when_paused[trial]

    async def _drop(self, tune_controller: TuneController, trial: Trial) -> None:
        self._stop_when_paused.pop(trial, None)
        bracket = self._bracket_of.get(trial)
        if bracket is None or not bracket.remove(trial):
            return
        # While the controller stops everything (time budget, stop_all) no halving
        # matters; it also removes the never-started trials then.
        if getattr(tune_controller, "stopping", False):
            return
        self._flush_stops(tune_controller)
        self._process(tune_controller, bracket, None)
        await self._after_process(tune_controller)

    def _ordered(self, brackets: list[_Bracket]) -> list[_Bracket]:
        """Fair scheduling within a band: least complete bracket first (stable)."""
        return sorted(brackets, key=lambda b: b.completion())

    def _runnable(self, bracket: _Bracket, trial: Trial) -> bool:
        return trial.status == Trial.PENDING or (
            trial.status == Trial.PAUSED and trial in bracket.promoted
        )

    def _pick(self, tune_controller: TuneController) -> Trial | None:
        for band in self._bands:
            for bracket in self._ordered([b for b in band if b is not None]):
                for trial in bracket.live:
                    if self._runnable(bracket, trial) and tune_controller.has_resources_for_trial(
                        trial
                    ):
                        return trial
        # Trials this scheduler never saw (none in a normal run) run as under FIFO.
        for trial in tune_controller.get_trials():
            if (
                trial.status == Trial.PENDING
                and trial not in self._bracket_of
                and tune_controller.has_resources_for_trial(trial)
            ):
                return trial
        return None
