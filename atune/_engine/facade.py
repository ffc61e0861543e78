"""What schedulers (and searchers) may call on a running experiment.

:class:`SchedulerAPI` implements the :class:`~atune._engine.api.TuneController`
protocol for the :class:`~atune._engine.controller.Controller`, which inherits it:
reading the trials and resources, stopping, pausing, checkpointing and resetting
trials. Each call changes the experiment through an event, like everything else.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

import anyio

from atune import result as R
from atune._engine import events as E
from atune._engine.proxy import Outcome, TrialProxy
from atune._engine.spec import ExperimentSpec
from atune._engine.state import ExperimentState
from atune._executor._class_checkpoint import checkpoint_dir_name
from atune._trial import Trial
from atune._util import lookup
from atune.checkpoint import Checkpoint
from atune.config import CheckpointConfig
from atune.search._base import Searcher
from atune.search.variant_generator import flatten_resolved

__all__ = ["SchedulerAPI"]


class SchedulerAPI:
    """The TuneController protocol, over the controller's state and trial proxies."""

    spec: ExperimentSpec
    state: ExperimentState
    changed: anyio.Event
    #: Trials paused by a PauseTrial command: not started again until ResumeTrial.
    held_by_command: set[str]
    #: Trials stopped while PENDING or PAUSED, for the searcher and callbacks to hear of.
    idle_finished: list[Trial]
    _stop_all: bool
    _proxies: dict[str, TrialProxy]

    if TYPE_CHECKING:

        @property
        def trials(self) -> list[Trial]: ...

        def emit_nowait(self, event: E.Event) -> None: ...

        async def emit(self, event: E.Event, *, inline: bool = True) -> None: ...

    async def record_checkpoint(
        self,
        trial: Trial,
        ckpt: Checkpoint,
        result: dict[str, Any],
        *,
        inline: bool = True,
        copied_from: str | None = None,
    ) -> E.CheckpointRecorded:
        """Record a checkpoint of ``trial`` taken at ``result`` (the book decides what stays)."""
        event = E.CheckpointRecorded(
            trial_id=trial.trial_id,
            path=ckpt.path,
            iteration=int(result.get(R.TRAINING_ITERATION, 0)),
            time_total_s=float(result.get(R.TIME_TOTAL_S, 0.0)),
            result=result,
            copied_from=copied_from,
        )
        await self.emit(event, inline=inline)
        return event

    def get_trials(self) -> list[Trial]:
        return self.trials

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self.trials if not t.is_finished]

    def total_resources(self) -> dict[str, float]:
        """All resources of the cluster, e.g. ``{"CPU": 8.0}``."""
        return dict(self.state.pool.total)

    def has_resources_for_trial(self, trial: Trial) -> bool:
        if trial.trial_id in self.held_by_command:
            return False  # held by a PauseTrial command until ResumeTrial
        return self.state.pool.fits(trial.resources, self.spec.max_concurrent_trials)

    def stop_all(self) -> None:
        """Stop every trial after the result it is on; start no new ones."""
        if not self._stop_all:
            self._stop_all = True
            for proxy in self._proxies.values():
                proxy.interrupt()
        self.changed.set()

    def stop_trial(self, trial: Trial) -> None:
        """Stop a trial: at its current result if RUNNING, at once if PENDING/PAUSED.

        A RUNNING trial records nothing after the result being processed. The
        scheduler that asked is not notified again (it made the decision).
        """
        self.held_by_command.discard(trial.trial_id)
        proxy = self._proxies.get(trial.trial_id)
        if trial.status == Trial.RUNNING and proxy is not None:
            proxy.request(Outcome.STOPPED)
        elif trial.status in (Trial.PENDING, Trial.PAUSED):
            self.emit_nowait(E.TrialCompleted(trial_id=trial.trial_id, reason="stopped"))
            self.idle_finished.append(trial)

    def pause_trial(self, trial: Trial) -> None:
        """Pause a RUNNING trial at its current result; it resumes from its checkpoint."""
        proxy = self._proxies.get(trial.trial_id)
        if trial.status == Trial.RUNNING and proxy is not None:
            proxy.request(Outcome.PAUSED)

    async def save_trial(self, trial: Trial) -> Checkpoint | None:
        """Checkpoint a RUNNING trial at its current decision point (for schedulers).

        Class trainables waiting at a decision point are saved now; otherwise (and for
        function trainables) this is the latest checkpoint recorded for the trial.
        Call it from ``on_trial_result`` of that trial.
        """
        proxy = self._proxies.get(trial.trial_id)
        if proxy is not None:
            await proxy.save_if_held()
        return trial.checkpoint

    async def reset_trial(
        self,
        trial: Trial,
        config: dict[str, Any],
        experiment_tag: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Give a trial a new config and, optionally, another trial's checkpoint.

        For PBT's exploit: the checkpoint is copied into ``trial``'s directory, and
        the trial restores from it the next time it starts. Return PAUSE from
        ``on_trial_result`` to restart it now; its worker is reused where possible
        (a class trainable gets ``reset_config(config)``).
        """
        trial.config = config
        shown = flatten_resolved(self.spec.param_space, config)
        missing = object()
        for key in trial.evaluated_params:  # keep showing what was shown, updated
            value = lookup(config, key, missing)
            if value is not missing:
                shown.setdefault(key, value)
        trial.evaluated_params = shown
        if experiment_tag is not None:
            trial.experiment_tag = experiment_tag
        if checkpoint is None:
            return
        if self.state.book.owns(trial.trial_id, checkpoint):
            trial.restore_from = checkpoint  # its own: nothing to copy
            return
        iteration, time_total = self.state.book.meta(checkpoint.path)
        target = os.path.join(trial.local_path, checkpoint_dir_name(iteration))

        def _copy() -> None:
            if os.path.abspath(target) != os.path.abspath(checkpoint.path):
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(checkpoint.path, target)

        await anyio.to_thread.run_sync(_copy)
        copied = Checkpoint(target)
        result = {R.TRAINING_ITERATION: iteration, R.TIME_TOTAL_S: time_total}
        await self.record_checkpoint(trial, copied, result, copied_from=checkpoint.path)
        trial.restore_from = copied

    def set_trial_resources(self, trial: Trial, resources: dict[str, float]) -> None:
        """Change what a trial asks for (for schedulers); applies at its next start."""
        from atune.trainable.util import normalize_resources

        trial.resources = normalize_resources(resources)

    @property
    def searcher(self) -> Searcher:
        """The experiment's searcher (for schedulers that work with one, e.g. BOHB)."""
        return self.spec.searcher

    @property
    def checkpoint_config(self) -> CheckpointConfig:
        """The experiment's CheckpointConfig."""
        return self.spec.checkpoint_config

    @property
    def stopping(self) -> bool:
        """True once the experiment is ending (time budget, stop_all, failure)."""
        return self._stop_all
