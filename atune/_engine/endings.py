"""How a run of a trial ends: completion, pause, the failure policy, checkpoint requests.

The controller calls :func:`settle` with the :class:`~atune._engine.proxy.Outcome` a
:class:`~atune._engine.proxy.TrialProxy` returned, before the proxy gives the
trial's resources back, so schedulers and searchers hear of the end before any
other trial takes the slot. The proxy calls :func:`on_trial_failure` each time its
trial fails, to learn whether to retry it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from atune import result as R
from atune._engine import events as E
from atune._engine.plugins import call_plugin
from atune._engine.proxy import Outcome, TrialProxy, describe
from atune._trial import Trial
from atune.errors import ConfigError

if TYPE_CHECKING:
    from atune._engine.controller import Controller

__all__ = ["checkpoint_requested", "finish_idle_trials", "on_trial_failure", "settle"]

log = logging.getLogger("atune")


async def settle(ctl: Controller, proxy: TrialProxy, outcome: Outcome) -> None:
    trial = proxy.trial
    if outcome is Outcome.PAUSED:
        await ctl.emit(E.TrialPaused(trial_id=trial.trial_id))
        if proxy.stop_requested:  # stopped while it was pausing
            await ctl.emit(E.TrialCompleted(trial_id=trial.trial_id, reason="stopped"))
            ctl.idle_finished.append(trial)
    elif outcome not in (Outcome.ERROR, Outcome.REQUEUED, Outcome.LOST):
        await complete(ctl, trial, outcome)


async def complete(ctl: Controller, trial: Trial, outcome: Outcome) -> None:
    spec = ctl.spec
    reason = {
        Outcome.FINISHED: "finished",
        Outcome.DONE: "finished",
        Outcome.EXPERIMENT_STOPPED: "experiment_stopped",
    }.get(outcome, "stopped")
    if outcome is Outcome.FINISHED and trial.last_result:
        trial.last_result[R.DONE] = True
    completed = E.TrialCompleted(trial_id=trial.trial_id, reason=reason)
    await ctl.emit(completed, inline=False)
    result = trial.last_result
    if outcome is Outcome.EXPERIMENT_STOPPED:
        await call_plugin(spec.scheduler, "on_trial_remove", ctl, trial)
    elif outcome is not Outcome.STOPPED:
        await call_plugin(spec.scheduler, "on_trial_complete", ctl, trial, result)
    if ctl.searcher_knows(trial):
        await ctl.searcher_gate.call("on_trial_complete", trial.trial_id, result, error=False)
    await ctl.inline_hooks.deliver(completed)
    if (
        spec.metric is not None
        and trial.num_results > 0
        and not ctl.pipeline.metric_seen
        and ctl.fatal is None
    ):
        reported = sorted(k for k in result if k not in R.FILLED_RESULT_KEYS)
        ctl.fail_experiment(
            ConfigError(
                f"metric {spec.metric!r} was never reported by trial {trial.name} (it "
                f"reported {reported}). Report it, e.g. atune.report({{{spec.metric!r}: "
                "...}), or fix TuneConfig(metric=...)."
            )
        )


async def on_trial_failure(
    ctl: Controller, trial: Trial, error: BaseException | None
) -> Outcome | None:
    """Apply the failure policy: None to retry now, else how the run ends."""
    spec = ctl.spec
    max_failures = spec.failure_config.max_failures
    failures = trial.num_failures + 1
    if not ctl.stopping and (max_failures < 0 or failures <= max_failures):
        log.warning(
            "Trial %s failed (%s); retrying (%d/%s)%s.",
            trial.name,
            describe(error),
            failures,
            "inf" if max_failures < 0 else max_failures,
            f" from {trial.checkpoint.path}" if trial.checkpoint else " from scratch",
        )
        await ctl.emit(E.TrialRetrying(trial_id=trial.trial_id, error=error))
        waiting = any(
            t is not trial and t.status in (Trial.PENDING, Trial.PAUSED) for t in ctl.trials
        )
        if not waiting:
            return None  # retry at once, in the slot it holds
        # Behind the waiting trials, so one that keeps failing cannot starve them.
        trial.restore_from = trial.restore_from or trial.checkpoint
        await ctl.emit(E.TrialRequeued(trial_id=trial.trial_id))
        ctl.requeued[trial.trial_id] = True
        return Outcome.REQUEUED
    errored = E.TrialErrored(trial_id=trial.trial_id, error=error)
    await ctl.emit(errored, inline=False)
    if spec.verbose >= 1:
        log.error(
            "Trial %s failed: %s (traceback in %s)",
            trial.name,
            describe(error),
            os.path.join(trial.local_path, R.ERROR_FILE),
        )
    await call_plugin(spec.scheduler, "on_trial_error", ctl, trial)
    if ctl.searcher_knows(trial):
        await ctl.searcher_gate.call(
            "on_trial_complete", trial.trial_id, trial.last_result or None, error=True
        )
    await ctl.inline_hooks.deliver(errored)
    if spec.failure_config.fail_fast:
        if spec.failure_config.fail_fast == "raise" and error is not None:
            ctl.fail_experiment(error)
        ctl.stop_all()
    return Outcome.ERROR


async def checkpoint_requested(ctl: Controller, proxy: TrialProxy) -> None:
    """``should_checkpoint`` in a recorded result: save where exact, else warn once.

    A class trainable waiting at this result (lockstep, or a decision point) is
    saved now, as Ray Tune does. One running ahead of the driver has already moved
    past the result, so a save would hold a later state than it: not done. A
    function trainable checkpoints only through ``report(checkpoint=...)``; Ray
    Tune ignores the key for it without a word.
    """
    if ctl.spec.class_trainable:
        if proxy.held:
            await proxy.save_now()
            return
        why = (
            "the trainable runs ahead of the driver, so a save now would hold a later "
            "state than this result. Return {'should_checkpoint': True} from step(), or "
            "set CheckpointConfig(checkpoint_frequency=N)"
        )
    else:
        why = (
            "a function trainable is checkpointed only by the checkpoint it passes to "
            "report(metrics, checkpoint=...) (Ray Tune ignores the key for function "
            "trainables too). Pass a checkpoint to report() at that point instead"
        )
    ctl.warn_once(
        "should_checkpoint",
        "Trial %s: a result has 'should_checkpoint': True (set by a callback or "
        "reported by the trainable) and no checkpoint was taken: %s.",
        proxy.trial.name,
        why,
    )


async def finish_idle_trials(ctl: Controller) -> None:
    """Tell the searcher and callbacks about trials stopped while not running."""
    while ctl.idle_finished:
        trial = ctl.idle_finished.pop(0)
        if ctl.searcher_knows(trial):
            await ctl.searcher_gate.call(
                "on_trial_complete", trial.trial_id, trial.last_result, error=False
            )
        await ctl.inline_hooks.trial_hook("on_trial_complete", trial)
