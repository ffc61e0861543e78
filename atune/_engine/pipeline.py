"""The decision on each result, in Ray Tune's order.

For every result a trial reports, in order, before its next one is recorded:

1. record it (and the checkpoint that came with it) in the experiment state, and
   publish it on the bus (the loggers and the progress view take it from there);
2. check the metric's type (once per trial) and the stopper's keys (once per trial);
3. the stopper, the stop dict and ``done``: the trial ends;
4. else the scheduler decides (CONTINUE, PAUSE, STOP) and the searcher is told;
5. the user's callbacks (inline: they may set ``should_checkpoint`` in the result);
6. a ``should_checkpoint`` from a callback or the trainable is honoured where exact.

The result is then "decided": what the scheduler said applies exactly at it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio

from atune import result as R
from atune._engine import events as E
from atune._engine.endings import checkpoint_requested
from atune._engine.plugins import call_plugin, call_plugin_sync
from atune._engine.proxy import Outcome, TrialProxy
from atune._metric import metric_number
from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.errors import ConfigError
from atune.schedulers._base import TrialScheduler

if TYPE_CHECKING:
    from atune._engine.controller import Controller

__all__ = ["ResultPipeline", "check_metric_value"]

_SCHEDULER_OUTCOMES = {TrialScheduler.STOP: Outcome.STOPPED, TrialScheduler.PAUSE: Outcome.PAUSED}


class ResultPipeline:
    """Decides on each result of each trial of one experiment."""

    def __init__(self, engine: Controller) -> None:
        self.engine = engine
        self._metric_seen: set[str] = set()
        self._metric_checked: set[str] = set()  # trials whose metric type was checked
        self._keys_checked: set[str] = set()  # trials whose keys the stopper checked

    @property
    def metric_seen(self) -> bool:
        """Did any trial report the experiment's metric?"""
        return bool(self._metric_seen)

    def saw_metric(self, trials: Iterable[Trial]) -> None:
        """These trials reported the metric before (a restored experiment)."""
        self._metric_seen.update(t.trial_id for t in trials)

    def trial_saw_metric(self, trial: Trial) -> bool:
        return trial.trial_id in self._metric_seen

    async def decide(
        self, proxy: TrialProxy, result: dict[str, Any], ckpt_path: str | None
    ) -> Outcome | None:
        """Record ``result`` and decide on it; None to continue, else how the run ends."""
        engine, trial = self.engine, proxy.trial
        spec = engine.spec
        tid = trial.trial_id
        result[R.CONFIG] = trial.config
        result[R.EXPERIMENT_TAG] = trial.experiment_tag
        # A result the experiment cannot use ends it before it is recorded.
        metric = spec.metric
        if metric is not None and metric in result:
            self._metric_seen.add(tid)
            if tid not in self._metric_checked and result[metric] is not None:
                self._metric_checked.add(tid)
                bad = check_metric_value(trial, metric, result[metric])
                if bad is not None:
                    engine.fail_experiment(bad)
                    engine.drop_unrecorded([(result, ckpt_path)])
                    return Outcome.DONE
        stopper = spec.stopper
        if stopper is not None and tid not in self._keys_checked:
            self._keys_checked.add(tid)
            if hasattr(stopper, "check_keys"):
                try:
                    stopper.check_keys(result)
                except ConfigError as exc:
                    engine.fail_experiment(exc)
                    engine.drop_unrecorded([(result, ckpt_path)])
                    return Outcome.DONE
        stop = False
        if stopper is not None:
            stop = bool(call_plugin_sync(stopper, "__call__", tid, result))
            if call_plugin_sync(stopper, "stop_all"):
                engine.stop_all()
        if stop or result.get(R.DONE):
            result[R.DONE] = True
            stop = True

        recorded = E.ResultRecorded(trial_id=tid, result=result)
        saved = None
        if ckpt_path is None:
            await engine.emit(recorded, inline=False)
        else:
            # A result and its checkpoint are recorded together or not at all: a restore
            # continues from the checkpoint of every result in the trial's files.
            with anyio.CancelScope(shield=True):
                await engine.emit(recorded, inline=False)
                saved = await engine.record_checkpoint(
                    trial, Checkpoint(ckpt_path), result, inline=False
                )
        outcome: Outcome | None
        if stop:
            outcome = Outcome.DONE
            decision = TrialScheduler.STOP
        else:
            decision = await call_plugin(spec.scheduler, "on_trial_result", engine, trial, result)
            outcome = _SCHEDULER_OUTCOMES.get(decision)
            gate = engine.searcher_gate
            if gate.listens_to_results and engine.searcher_knows(trial):
                await gate.call("on_trial_result", tid, result)
        inline = engine.inline_hooks
        if inline:
            await inline.deliver(recorded)
        # Set by a callback, as Ray Tune allows, or reported (a pause checkpoints anyway).
        if (
            result.get(R.SHOULD_CHECKPOINT)
            and ckpt_path is None
            and decision != TrialScheduler.PAUSE
        ):
            await checkpoint_requested(engine, proxy)
        if saved is not None and inline:
            await inline.deliver(saved)
        return outcome


def check_metric_value(trial: Trial, metric: str, value: Any) -> ConfigError | None:
    """The error for a non-numeric value of the experiment's metric, or None."""
    if metric_number(value) is not None:
        return None
    return ConfigError(
        f"trial {trial.name} reported the metric {metric!r} as {value!r} (a "
        f"{type(value).__name__}), but TuneConfig(metric={metric!r}) must name a number (an "
        f"int or a float; NaN is fine) to compare trials. Report a number, e.g. "
        f"atune.report({{{metric!r}: float(...)}}), or set TuneConfig(metric=...) to a numeric "
        "field."
    )
