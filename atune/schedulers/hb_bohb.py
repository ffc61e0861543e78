"""HyperBand for BOHB: brackets fill largest first, and halving waits for full brackets.

The variant Ray Tune pairs with its BOHB searcher (``TuneBOHB``). It is true to the
original HyperBand: no pipelining, no straggler mitigation.

* Trials fill the **largest** bracket of a band first (the one with the most halvings),
  so the searcher's early suggestions are judged on small budgets.
* A trial that reaches its milestone is **paused even when its bracket is not full**, so
  the searcher can still add trials to that stage; a bracket halves once it is full and
  all its live trials wait, or when no trial is running at all (nothing else can come).
* Each result carries ``result["hyperband_info"]``; at a milestone it holds ``{"budget":
  <milestone>}``, which the BOHB searcher uses as the budget of that observation.
* The searcher is told about pauses and resumptions through its optional
  ``on_pause(trial_id)`` / ``on_unpause(trial_id)`` methods, so a concurrency limit can
  count paused trials as not running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atune._engine.api import TuneController

import inspect
from typing import Any, ClassVar

from atune._trial import Trial
from atune.schedulers._base import TrialScheduler
from atune.schedulers.hyperband import HyperBandScheduler, _Bracket

__all__ = ["HyperBandForBOHB"]

#: The result key HyperBandForBOHB fills in for the BOHB searcher.
HYPERBAND_INFO = "hyperband_info"


class HyperBandForBOHB(HyperBandScheduler):
    """HyperBand variant for the BOHB searcher (use it only with ``TuneBOHB``).

    Differs from :class:`HyperBandScheduler` in that the largest bracket fills first,
    trials pause at milestones even in brackets that are not full yet, brackets are
    scanned in order (not by completion), and a bracket whose trials all wait is halved
    as soon as no trial is running. Needs checkpointing, like HyperBand.

    Args:
        time_attr: The result field that measures progress (it must only grow).
        metric: The result field to compare trials by.
        mode: ``"min"`` or ``"max"``.
        max_t: Time units per trial; trials are stopped there.
        reduction_factor: ``eta``: each halving keeps ``1 / eta`` of a bracket.
        stop_last_trials: Stop trials at ``max_t``.
    """

    _largest_bracket_first: ClassVar[bool] = True

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        super().__init__(
            time_attr=time_attr,
            metric=metric,
            mode=mode,
            max_t=max_t,
            reduction_factor=reduction_factor,
            stop_last_trials=stop_last_trials,
        )

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        """Like HyperBand, but pause at the milestone until the bracket is full."""
        usable = self._check_result(trial, result)
        self._flush_stops(tune_controller)
        result[HYPERBAND_INFO] = {}
        bracket = self._bracket_of.get(trial)
        if bracket is None:
            return TrialScheduler.CONTINUE
        if trial not in bracket.live:
            return TrialScheduler.STOP
        if not usable:
            return TrialScheduler.CONTINUE
        bracket.update(trial, result)
        if not bracket.waits(trial):
            return TrialScheduler.CONTINUE
        result[HYPERBAND_INFO]["budget"] = bracket.milestone
        if bracket.halves > 0 and not (bracket.filled() and bracket.all_reached()):
            await _call_searcher(tune_controller, "on_pause", trial)
            return TrialScheduler.PAUSE
        action = self._process(tune_controller, bracket, trial)
        await self._after_process(tune_controller)
        if action == TrialScheduler.PAUSE:
            await _call_searcher(tune_controller, "on_pause", trial)
        return action

    async def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        """The first runnable trial; with none running, halve brackets that all wait.

        Brackets are scanned in band order. When nothing runs and nothing can start,
        a bracket whose live trials all wait at the milestone is halved even if it is
        not full (no trial is coming to fill it), one bracket at a time, as in Ray Tune.
        """
        self._flush_stops(tune_controller)
        trial = self._pick(tune_controller)
        if trial is not None:
            return trial
        if any(t.status == Trial.RUNNING for t in tune_controller.get_trials()):
            return None
        for band in self._bands:
            for bracket in band:
                if bracket is None or not any(t.status == Trial.PAUSED for t in bracket.live):
                    continue
                self._process(tune_controller, bracket, None)
                await self._after_process(tune_controller)
                if any(self._runnable(bracket, t) for t in bracket.live):
                    return self._pick(tune_controller)
        return None

    # -------------------------------------------------------------- internals
    def _ordered(self, brackets: list[_Bracket]) -> list[_Bracket]:
        return brackets  # no fair scheduling: band order

    async def _after_process(self, tune_controller: TuneController) -> None:
        promoted, self._unpaused = self._unpaused, []
        for trial in promoted:
            await _call_searcher(tune_controller, "on_unpause", trial)


def _searcher_of(tune_controller: TuneController) -> Any:
    """The experiment's searcher (None with controllers that have none, as in tests)."""
    return getattr(tune_controller, "searcher", None)


async def _call_searcher(tune_controller: TuneController, name: str, trial: Trial) -> None:
    """Call the searcher's optional ``on_pause``/``on_unpause`` (sync or async)."""
    hook = getattr(_searcher_of(tune_controller), name, None)
    if hook is None:
        return
    out = hook(trial.trial_id)
    if inspect.isawaitable(out):
        await out
