"""The controller: one task group running the whole experiment.

Data flow::

    searcher.suggest ──► Trial (PENDING) ──► scheduler.choose_trial_to_run
        ──► one task per running trial: launch worker, stream result batches
        ──► per result, in order: stoppers → scheduler → searcher → callbacks
        ──► background task: flush loggers, delete old checkpoints, progress table

The main task (``_schedule``) creates trials and starts them while resources allow;
it sleeps on ``_changed`` until something it depends on changes (a trial ended, a
new decision, stop-all).
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import pickle
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiofiles
import anyio
import anyio.lowlevel

if sys.version_info < (3, 11):  # anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

from atune import result as R
from atune._engine import events as E
from atune._engine.state import ExperimentState
from atune._executor._base import Executor, TrialHandle, WorkerSpec
from atune._metric import metric_number
from atune._trial import Trial
from atune.callbacks._base import Callback
from atune.checkpoint import Checkpoint
from atune.config import CheckpointConfig, FailureConfig
from atune.errors import AtuneError, ClusterDiedError, ConfigError, TrialWorkerDiedError
from atune.schedulers._base import TrialScheduler
from atune.search._base import FINISHED, SEARCHER_STATE_FILE, Searcher
from atune.search._wrappers import call_handler, experiment_state
from atune.search.variant_generator import flatten_resolved, flatten_suggested, format_vars
from atune.trainable.util import TrainableInfo, resolve_resources

__all__ = ["Controller", "ExperimentSpec"]

log = logging.getLogger("atune")

#: Results one ``next_results`` call may return; also each trial's buffer size, so a
#: trial runs at most this many results ahead of the driver.
RESULT_BUFFER_SIZE = 1024
#: When a trial reports fast (its last batch held several results), let the worker
#: gather results this long before answering, to cut round trips per result.
BATCH_LINGER_S = 0.002
#: Inside a large batch, give the event loop to other tasks after this many results,
#: so an application hosting fit() stays responsive (about 5 ms of work at most).
YIELD_EVERY_RESULTS = 64
#: Results recorded but not yet flushed by the callbacks, beyond which trials stop
#: fetching until a flush lands: bounds logger memory (and the garbage collector's
#: work) when results arrive faster than they can be written.
MAX_UNFLUSHED_RESULTS = 8_192
#: How often the searcher's state is written to the experiment dir (it may be large).
SEARCHER_SAVE_INTERVAL_S = 10.0
#: How often loggers flush to disk and old checkpoints are deleted.
FLUSH_INTERVAL_S = 0.5
#: Trials created ahead of time when the searcher is the default random/grid search.
#: A model-based searcher is asked for one config at a time, each when a trial can
#: start with it, so every suggestion sees all results reported until then.
MAX_PENDING_TRIALS = 16
#: Upper bound on the length of the tag part of a trial directory name.
MAX_LEN_IDENTIFIER = int(os.environ.get("TUNE_MAX_LEN_IDENTIFIER", "130"))
#: How long a shutdown may spend flushing loggers after cancellation.
SHUTDOWN_FLUSH_TIMEOUT_S = 10.0

_DECISION_DONE = "DONE"  # a stop criterion or `done=True`: the trial completed


@dataclass
class ExperimentSpec:
    """Everything the controller needs, resolved and validated by the Tuner."""

    trainable: TrainableInfo
    param_space: dict[str, Any]
    experiment_name: str
    experiment_path: str
    searcher: Searcher
    scheduler: TrialScheduler
    stopper: Any = None  # atune.stopper.Stopper | None
    metric: str | None = None
    mode: str | None = None
    callbacks: list[Callback] = field(default_factory=list)
    progress_reporter: Any = None
    verbose: int = 1
    time_budget_s: float | None = None
    max_concurrent_trials: int | None = None
    reuse_actors: bool = False
    trial_name_creator: Callable[[Trial], str] | None = None
    trial_dirname_creator: Callable[[Trial], str] | None = None
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    failure_config: FailureConfig = field(default_factory=FailureConfig)
    log_to_file: bool | str | tuple[str, str] = False
    total_samples: int | None = None
    chdir_to_trial_dir: bool = True


class Controller:
    """Runs one experiment. Schedulers and searchers receive it as ``tune_controller``."""

    def __init__(self, spec: ExperimentSpec, executor: Executor) -> None:
        self.spec = spec
        self.executor = executor
        self.state = ExperimentState(checkpoint_config=spec.checkpoint_config)
        self.experiment_id = uuid.uuid4().hex
        self._changed = anyio.Event()
        self._stop_all = False
        self._fatal: BaseException | None = None
        self._searcher_finished = False
        self._searcher_waiting = False
        self._fetch_scopes: dict[str, anyio.CancelScope] = {}
        self._idle_workers: list[TrialHandle] = []
        self._to_delete: list[str] = []
        self._metric_seen: set[str] = set()
        self._metric_checked: set[str] = set()  # trials whose metric value was type-checked
        self._checked_stop_keys: set[str] = set()
        self._iteration = 0
        self._start_time = time.time()
        self._params_ref: Any = None
        self._async_hooks: dict[tuple[int, str], bool] = {}
        self._print_results = spec.verbose >= 2
        self._warned_pause = False
        self._warned_should_checkpoint = False
        self._warned_searcher_state = False
        self._next_searcher_save = time.monotonic() + SEARCHER_SAVE_INTERVAL_S
        self._handles: dict[str, TrialHandle] = {}  # workers of RUNNING trials
        self._requests: dict[str, str] = {}  # scheduler's STOP/PAUSE for other trials
        self._idle_finished: list[Trial] = []  # stopped while PENDING/PAUSED, to announce
        self._held: dict[str, bool] = {}  # trial id -> its worker waits at the current result
        self._unflushed = 0  # results recorded since the callbacks last flushed
        self._flush_needed = anyio.Event()
        self._flushed = anyio.Event()
        self._cluster_lost: ClusterDiedError | None = None

    @property
    def trials(self) -> list[Trial]:
        """The experiment's trials, in scheduling order."""
        return self.state.trials

    def _apply(self, event: E.Event) -> None:
        """Apply an event to the experiment state; delete what it no longer keeps."""
        self._to_delete.extend(self.state.apply(event))

    # ---------------------------------------------------------- scheduler API
    def get_trials(self) -> list[Trial]:
        return self.trials

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self.trials if not t.is_finished]

    def total_resources(self) -> dict[str, float]:
        """All resources of the cluster, e.g. ``{"CPU": 8.0}``."""
        return dict(self.state.pool.total)

    def has_resources_for_trial(self, trial: Trial) -> bool:
        return self.state.pool.fits(trial.resources, self.spec.max_concurrent_trials)

    def stop_all(self) -> None:
        """Stop every trial after the result it is on; start no new ones."""
        if not self._stop_all:
            self._stop_all = True
            for scope in self._fetch_scopes.values():
                scope.cancel()
        self._changed.set()

    # ----------------------------------------------------------------- running
    async def run(self) -> list[Trial]:
        """Run the experiment to its end; returns the trials."""
        await self.executor.start()
        self.state.pool.total = self.executor.total_resources()
        self._params_ref = await self.executor.put(self.spec.trainable.parameters)
        await anyio.to_thread.run_sync(
            lambda: os.makedirs(self.spec.experiment_path, exist_ok=True)
        )
        self._start_time = time.time()
        for cb in self.spec.callbacks:
            await self._call(
                cb,
                "setup",
                stop=self.spec.stopper,
                num_samples=self.spec.total_samples,
                total_num_samples=self.spec.total_samples,
                experiment_path=self.spec.experiment_path,
                metric=self.spec.metric,
                mode=self.spec.mode,
            )
        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._background)
                async with anyio.create_task_group() as trials_tg:
                    outer.start_soon(self._watch_cluster, trials_tg.cancel_scope)
                    await self._schedule(trials_tg)
                outer.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Surface a lone error as itself: `except ConfigError` should just work.
            leaves = _leaves(group)
            if len(leaves) == 1 and not isinstance(leaves[0], anyio.get_cancelled_exc_class()):
                raise leaves[0] from group
            raise
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(SHUTDOWN_FLUSH_TIMEOUT_S):
                    await self._shutdown()
                await self.executor.aclose()
        if self._fatal is not None:
            raise self._fatal
        return self.trials

    async def _watch_cluster(self, trials: anyio.CancelScope) -> None:
        """End the experiment at once, with a clear error, if the cluster dies."""
        try:
            await self.executor.watch()
        except ClusterDiedError as exc:
            self._cluster_lost = exc
            self._fail_experiment(exc)
            trials.cancel()  # nothing can be stopped gracefully any more

    async def _schedule(self, tg: anyio.abc.TaskGroup) -> None:
        while True:
            self._changed = anyio.Event()
            self._iteration += 1
            await self._hook("on_step_begin", self._iteration, self.trials)
            await self._finish_idle_trials()
            # Fill every free slot: a model-based searcher is asked for one config at a
            # time, each as soon as a trial can start with it.
            while not self._stop_all:
                await self._create_trials()
                if not await self._start_trials(tg):
                    break
            await self._hook("on_step_end", self._iteration, self.trials)
            running = self.state.pool.live > 0
            startable = any(t.status in (Trial.PENDING, Trial.PAUSED) for t in self.trials)
            if self._stop_all and not running:
                return
            if not running and not startable:
                if self._searcher_finished:
                    return
                if self._searcher_waiting:
                    log.warning(
                        "The searcher suggests no new trial while none is running; "
                        "ending the experiment."
                    )
                    return
            if not running and startable and not self._searcher_waiting:
                # Nothing runs and nothing fits: the resources can never be enough.
                trial = next(t for t in self.trials if t.status in (Trial.PENDING, Trial.PAUSED))
                if not self.has_resources_for_trial(trial):
                    self._fail_experiment(self._unschedulable_error(trial))
                    return
            await self._changed.wait()

    def _unschedulable_error(self, trial: Trial) -> ConfigError:
        have = {k: self.state.pool.total.get(k, 0.0) for k in trial.resources}
        return ConfigError(
            f"trial {trial.name} asks for resources {trial.resources}, but the Ray cluster "
            f"has {have} in total, so it can never start. Ask for less with "
            "atune.with_resources(trainable, {...}), or start Ray with more, e.g. "
            "ray.init(num_cpus=8)."
        )

    async def _create_trials(self) -> None:
        from atune.search.basic_variant import BasicVariantGenerator

        eager = isinstance(self.spec.searcher, BasicVariantGenerator)
        bound = MAX_PENDING_TRIALS if eager else 1
        self._searcher_waiting = False
        while not self._searcher_finished and not self._stop_all:
            pending = sum(1 for t in self.trials if t.status == Trial.PENDING)
            if pending >= bound or (not eager and not self._slot_free()):
                return
            index, trial_id = self.state.table.peek_id()
            suggestion = await call_handler(self.spec.searcher, "suggest", trial_id)
            if suggestion == FINISHED or (suggestion is None and self.spec.searcher.is_finished()):
                self._searcher_finished = True
                return
            if suggestion is None:
                self._searcher_waiting = True
                return
            if not isinstance(suggestion, dict):
                raise AtuneError(
                    f"{type(self.spec.searcher).__name__}.suggest() must return a config dict, "
                    f"None or FINISHED, got {suggestion!r}"
                )
            try:
                trial = self._new_trial(index, trial_id, suggestion)
            except AtuneError as exc:
                self._fail_experiment(exc)
                return
            self.state.table.new_id()  # the id is taken now
            self.state.add_trial(trial)
            await self.spec.scheduler.on_trial_add(self, trial)

    def _slot_free(self) -> bool:
        """Could one more trial start now? Judged by the last trial's resource request.

        A model-based searcher is asked for a config only then, so each suggestion
        sees every result reported before a trial can use it.
        """
        if self.state.pool.live == 0 or not self.trials:
            return True
        return self.has_resources_for_trial(self.trials[-1])

    def _new_trial(self, index: int, trial_id: str, config: dict[str, Any]) -> Trial:
        spec = self.spec
        evaluated = flatten_suggested(spec.param_space, config)
        tag = format_vars(evaluated)
        trial = Trial(
            trial_id=trial_id,
            trainable_name=spec.trainable.name,
            config=config,
            experiment_tag=f"{index}_{tag}" if tag else str(index),
            evaluated_params=evaluated,
            resources=resolve_resources(spec.trainable, config, None),
        )
        if spec.trial_name_creator is not None:
            trial.custom_name = str(spec.trial_name_creator(trial))
        if spec.trial_dirname_creator is not None:
            dirname = str(spec.trial_dirname_creator(trial))
            if not dirname or os.sep in dirname or dirname in (".", ".."):
                raise ConfigError(
                    f"`trial_dirname_creator` must return a directory name, not a path, "
                    f"got {dirname!r}"
                )
        else:
            date = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            dirname = f"{trial.name}_{trial.experiment_tag[:MAX_LEN_IDENTIFIER]}_{date}"
        trial.local_path = os.path.join(spec.experiment_path, dirname)
        if not self.state.pool.could_ever_fit(trial.resources):
            raise self._unschedulable_error(trial)
        return trial

    async def _start_trials(self, tg: anyio.abc.TaskGroup) -> int:
        """Start trials while the scheduler picks one that fits; return how many."""
        started = 0
        while not self._stop_all:
            trial = await self.spec.scheduler.choose_trial_to_run(self)
            if trial is None or not self.has_resources_for_trial(trial):
                return started
            started += 1
            resume = trial.status == Trial.PAUSED
            kind = E.TrialResumed if resume else E.TrialStarted
            self._apply(kind(trial_id=trial.trial_id, resources=dict(trial.resources)))
            tg.start_soon(self._run_trial, trial, resume, name=f"trial {trial.trial_id}")
        return started

    # ------------------------------------------------------------ one trial
    async def _run_trial(self, trial: Trial, resume: bool) -> None:
        handle: TrialHandle | None = None
        pool = False  # hand the worker to the idle pool when done
        cancelled = True
        try:
            restoring = resume
            while True:
                outcome: str
                error: BaseException | None
                try:
                    handle = await self._acquire_worker(trial, restore=restoring)
                except TrialWorkerDiedError as exc:  # died while starting
                    await self._write_error(trial, exc, "")
                    outcome, error = "error", exc
                else:
                    self._handles[trial.trial_id] = handle
                    await self._hook(
                        "on_trial_restore" if restoring else "on_trial_start",
                        self._iteration,
                        self.trials,
                        trial=trial,
                    )
                    outcome, error = await self._stream(trial, handle)
                if outcome == "error":
                    self._handles.pop(trial.trial_id, None)
                    self._discard_worker(handle)
                    handle = None
                    if not await self._retry_or_fail(trial, error):
                        cancelled = False
                        return
                    if self._requeue_behind_waiting(trial):
                        cancelled = False
                        return
                    restoring = trial.checkpoint is not None
                    continue
                assert handle is not None  # only an error comes without a worker
                if outcome == TrialScheduler.PAUSE:
                    pool = await self._pause(trial, handle)
                    if self._requests.pop(trial.trial_id, None) == TrialScheduler.STOP:
                        # A scheduler stopped it while it was pausing.
                        self._apply(E.TrialCompleted(trial_id=trial.trial_id, reason="stopped"))
                        self._idle_finished.append(trial)
                    cancelled = False
                    return
                # The trial ended: finished on its own, stopped, or stop-all.
                if outcome != "finished":
                    if self.spec.checkpoint_config.checkpoint_at_end and (
                        self.spec.trainable.kind == "class"
                    ):
                        await self._save_now(trial, handle)
                    pool = await handle.stop()
                else:
                    pool = True
                pool = pool and self.spec.reuse_actors
                await self._complete(trial, outcome)
                cancelled = False
                return
        except ClusterDiedError:
            return  # the cluster watch ends the experiment and marks the trial
        finally:
            self._handles.pop(trial.trial_id, None)
            with anyio.CancelScope(shield=True):
                if handle is not None:
                    if pool and not self._stop_all:
                        self._idle_workers.append(handle)
                    else:
                        await self._retire_worker(handle, graceful=not cancelled)
                self._apply(E.ResourcesReleased(trial_id=trial.trial_id))
                self._changed.set()

    def _requeue_behind_waiting(self, trial: Trial) -> bool:
        """Send a failed trial to retry behind the trials waiting to start, if any.

        It gives up its resources, goes back to PENDING at the end of the trial list
        and restores from its latest checkpoint when it starts again, so a trial that
        keeps failing (``max_failures=-1``) cannot starve the others.
        """
        waiting = any(
            t is not trial and t.status in (Trial.PENDING, Trial.PAUSED) for t in self.trials
        )
        if not waiting:
            return False  # retry at once, in the slot it holds
        trial.restore_from = trial.restore_from or trial.checkpoint
        self._apply(E.TrialRequeued(trial_id=trial.trial_id))
        return True

    async def _retire_worker(self, handle: TrialHandle, *, graceful: bool) -> None:
        """Kill a worker; first let a class trainable kept for reuse run cleanup()."""
        if graceful and self.spec.trainable.kind == "class":
            await handle.stop(final=True)
        self._discard_worker(handle)

    def _worker_spec(self, trial: Trial, restore: bool) -> WorkerSpec:
        spec = self.spec
        restore_path = None
        start_iter, start_time = 0, 0.0
        source = trial.restore_from or (trial.checkpoint if restore else None)
        trial.restore_from = None
        if source is not None:
            restore_path = source.path
            start_iter, start_time = self.state.book.meta(source.path)
        return WorkerSpec(
            trial_id=trial.trial_id,
            trial_name=trial.name,
            experiment_id=self.experiment_id,
            experiment_name=spec.experiment_name,
            trainable=spec.trainable,
            config=trial.config,
            trial_dir=trial.local_path,
            resources=trial.resources,
            restore_path=restore_path,
            start_iteration=start_iter,
            start_time_total=start_time,
            buffer_size=RESULT_BUFFER_SIZE,
            checkpoint_frequency=spec.checkpoint_config.checkpoint_frequency,
            checkpoint_at_end=bool(spec.checkpoint_config.checkpoint_at_end),
            log_to_file=spec.log_to_file,
            chdir=spec.chdir_to_trial_dir,
            lockstep=self._lockstep(),
            keep_for_reuse=spec.trainable.kind == "class",
            sync_point=spec.scheduler.sync_point(trial),
        )

    async def _acquire_worker(self, trial: Trial, restore: bool) -> TrialHandle:
        await anyio.to_thread.run_sync(lambda: os.makedirs(trial.local_path, exist_ok=True))
        wspec = self._worker_spec(trial, restore)
        matching = [w for w in self._idle_workers if w.resources == trial.resources]
        if matching:
            # The trial's own previous worker first: it keeps the trial's Trainable.
            idle = min(matching, key=lambda w: w.name != trial.name)
            self._idle_workers.remove(idle)
            try:
                await idle.reset(wspec, self._params_ref)
                return idle
            except AtuneError:
                self._discard_worker(idle)
        # Idle workers still hold their resources in Ray: free them before launching.
        idle_workers, self._idle_workers = self._idle_workers, []
        for idle in idle_workers:
            await idle.stop(final=True)
            self._discard_worker(idle)
        return await self.executor.launch(wspec, trial.resources, self._params_ref)

    def _discard_worker(self, handle: TrialHandle | None) -> None:
        if handle is not None:
            self.executor.release(handle)

    def _lockstep(self) -> bool:
        spec = self.spec
        return bool(
            spec.scheduler.requires_sync_point
            or (spec.checkpoint_config.checkpoint_at_end and spec.trainable.kind == "class")
        )

    async def _stream(self, trial: Trial, handle: TrialHandle) -> tuple[str, BaseException | None]:
        """Process the trial's results in order until it ends or a decision ends it."""
        tid = trial.trial_id
        acked = 0
        lockstep = self._lockstep()
        scheduler = self.spec.scheduler
        last_batch = 0
        while True:
            if self._stop_all:
                return "stop_all", None
            if tid in self._requests:
                return self._requests.pop(tid), None
            linger = BATCH_LINGER_S if last_batch > 1 else 0.0
            with anyio.CancelScope() as scope:
                self._fetch_scopes[tid] = scope
                try:
                    await self._wait_for_sinks()
                    batch = await handle.next_results(
                        RESULT_BUFFER_SIZE, acked, lockstep, linger, scheduler.sync_point(trial)
                    )
                except TrialWorkerDiedError as exc:
                    await self._write_error(trial, exc, "")
                    return "error", exc
                finally:
                    self._fetch_scopes.pop(tid, None)
            if scope.cancelled_caught:
                continue  # stop-all or a scheduler's request: checked at the top
            last_batch = len(batch.results)
            for i, (res, ckpt_path) in enumerate(batch.results):
                # Is the trainable waiting right after this result (exact pause point)?
                self._held[tid] = i == batch.held_index
                if i and i % YIELD_EVERY_RESULTS == 0:
                    await anyio.lowlevel.checkpoint()  # let the host's other tasks run
                request = self._requests.pop(tid, None)
                if request is not None:
                    self._drop_unrecorded(batch.results[i:])
                    return request, None
                acked += 1
                decision = await self._on_result(trial, res, ckpt_path)
                if decision != TrialScheduler.CONTINUE:
                    self._drop_unrecorded(batch.results[i + 1 :])
                    return decision, None
            if batch.finished:
                if batch.error is not None:
                    await self._write_error(trial, batch.error, batch.error_traceback)
                    return "error", batch.error
                return "finished", None

    # ------------------------------------------------------ scheduler actions
    def stop_trial(self, trial: Trial) -> None:
        """Stop a trial (for schedulers): now if PENDING/PAUSED, at once if RUNNING.

        A RUNNING trial records nothing after the result being processed. The
        scheduler that asked is not notified again (it made the decision).
        """
        if trial.status == Trial.RUNNING:
            self._request(trial, TrialScheduler.STOP)
        elif trial.status in (Trial.PENDING, Trial.PAUSED):
            self._apply(E.TrialCompleted(trial_id=trial.trial_id, reason="stopped"))
            self._idle_finished.append(trial)
            self._changed.set()

    def pause_trial(self, trial: Trial) -> None:
        """Pause a RUNNING trial (for schedulers); it resumes from its checkpoint."""
        if trial.status == Trial.RUNNING:
            self._request(trial, TrialScheduler.PAUSE)

    def _request(self, trial: Trial, decision: str) -> None:
        self._requests[trial.trial_id] = decision
        scope = self._fetch_scopes.get(trial.trial_id)
        if scope is not None:
            scope.cancel()

    async def _finish_idle_trials(self) -> None:
        """Tell the searcher and callbacks about trials stopped while not running."""
        while self._idle_finished:
            trial = self._idle_finished.pop(0)
            await call_handler(
                self.spec.searcher,
                "on_trial_complete",
                trial.trial_id,
                trial.last_result,
                error=False,
            )
            await self._hook("on_trial_complete", self._iteration, self.trials, trial=trial)

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

    async def save_trial(self, trial: Trial) -> Checkpoint | None:
        """Checkpoint a RUNNING trial at its current decision point (for schedulers).

        Class trainables waiting at a decision point are saved now; otherwise (and for
        function trainables) this is the latest checkpoint recorded for the trial.
        Call it from ``on_trial_result`` of that trial.
        """
        handle = self._handles.get(trial.trial_id)
        if (
            handle is not None
            and self.spec.trainable.kind == "class"
            and self._held.get(trial.trial_id, False)
        ):
            await self._save_now(trial, handle)
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
        for key in trial.evaluated_params:  # keep showing what was shown, updated
            found, value = _lookup_path(config, key)
            if found:
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
        target = os.path.join(trial.local_path, f"checkpoint_{iteration:06d}")

        def _copy() -> None:
            if os.path.abspath(target) != os.path.abspath(checkpoint.path):
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(checkpoint.path, target)

        await anyio.to_thread.run_sync(_copy)
        copied = Checkpoint(target)
        self._record_checkpoint(
            trial, copied, {R.TRAINING_ITERATION: iteration, R.TIME_TOTAL_S: time_total}
        )
        trial.restore_from = copied

    def set_trial_resources(self, trial: Trial, resources: dict[str, float]) -> None:
        """Change what a trial asks for (for schedulers); applies at its next start."""
        from atune.trainable.util import normalize_resources

        trial.resources = normalize_resources(resources)

    def _drop_unrecorded(self, items: list[tuple[dict[str, Any], str | None]]) -> None:
        """Results past a decision are never recorded; delete their checkpoints."""
        self._to_delete.extend(p for _, p in items if p)

    async def _on_result(self, trial: Trial, result: dict[str, Any], ckpt_path: str | None) -> str:
        spec = self.spec
        result[R.CONFIG] = trial.config
        result[R.EXPERIMENT_TAG] = trial.experiment_tag
        self._apply(E.ResultRecorded(trial_id=trial.trial_id, result=result))
        self._unflushed += 1
        bad_metric: ConfigError | None = None
        if spec.metric is not None and spec.metric in result:
            self._metric_seen.add(trial.trial_id)
            if trial.trial_id not in self._metric_checked and result[spec.metric] is not None:
                self._metric_checked.add(trial.trial_id)
                bad_metric = _check_metric_value(trial, spec.metric, result[spec.metric])
        if ckpt_path is not None:
            self._record_checkpoint(trial, Checkpoint(ckpt_path), result)
        if bad_metric is not None:
            self._fail_experiment(bad_metric)
            return _DECISION_DONE

        stopper = spec.stopper
        stop = False
        if stopper is not None:
            if trial.trial_id not in self._checked_stop_keys:
                self._checked_stop_keys.add(trial.trial_id)
                check = getattr(stopper, "check_keys", None)
                if check is not None:
                    try:
                        check(result)
                    except ConfigError as exc:
                        self._fail_experiment(exc)
                        return _DECISION_DONE
            stop = bool(stopper(trial.trial_id, result))
            if stopper.stop_all():
                self.stop_all()
        if stop or result.get(R.DONE):
            result[R.DONE] = True
            decision = _DECISION_DONE
        else:
            decision = await spec.scheduler.on_trial_result(self, trial, result)
            await call_handler(spec.searcher, "on_trial_result", trial.trial_id, result)
        for cb in spec.callbacks:
            hook = cb.on_trial_result
            if self._is_async(cb, "on_trial_result"):
                await hook(self._iteration, self.trials, trial, result)  # type: ignore[func-returns-value,misc]
            else:
                hook(self._iteration, self.trials, trial, result)
        # Set by a callback, as Ray Tune allows (a pause checkpoints on its own).
        if (
            result.get(R.SHOULD_CHECKPOINT)
            and ckpt_path is None
            and decision != TrialScheduler.PAUSE
        ):
            await self._checkpoint_requested(trial)
        if ckpt_path is not None:
            await self._hook("on_trial_save", self._iteration, self.trials, trial=trial)
            await self._hook(
                "on_checkpoint",
                self._iteration,
                self.trials,
                trial=trial,
                checkpoint=trial.checkpoint,
            )
        if self._print_results:
            from atune.callbacks.progress import format_result

            print(format_result(trial, result), flush=False)
        if decision == TrialScheduler.NOOP:
            decision = TrialScheduler.CONTINUE
        return decision

    def _record_checkpoint(self, trial: Trial, ckpt: Checkpoint, result: dict[str, Any]) -> None:
        self._apply(
            E.CheckpointRecorded(
                trial_id=trial.trial_id,
                path=ckpt.path,
                iteration=int(result.get(R.TRAINING_ITERATION, 0)),
                time_total_s=float(result.get(R.TIME_TOTAL_S, 0.0)),
                result=result,
            )
        )

    async def _save_now(self, trial: Trial, handle: TrialHandle) -> None:
        iteration = trial.last_result.get(R.TRAINING_ITERATION)
        ckpt = trial.checkpoint
        if ckpt is not None and self.state.book.meta(ckpt.path)[0] == iteration:
            return  # already saved at this very result (e.g. by save_trial)
        path = await handle.save()
        if path is not None and (trial.checkpoint is None or trial.checkpoint.path != path):
            self._record_checkpoint(trial, Checkpoint(path), trial.last_result)
            await self._hook("on_trial_save", self._iteration, self.trials, trial=trial)

    async def _checkpoint_requested(self, trial: Trial) -> None:
        """``should_checkpoint`` in a recorded result: save where exact, else warn once.

        A class trainable waiting at this result (lockstep, or a decision point) is
        saved now, as Ray Tune does. One running ahead of the driver has already moved
        past the result, so a save would hold a later state than it: not done. A
        function trainable checkpoints only through ``report(checkpoint=...)``; Ray
        Tune ignores the key for it without a word.
        """
        handle = self._handles.get(trial.trial_id)
        if self.spec.trainable.kind == "class":
            if handle is not None and self._held.get(trial.trial_id, False):
                await self._save_now(trial, handle)
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
        if not self._warned_should_checkpoint:
            self._warned_should_checkpoint = True
            log.warning(
                "Trial %s: a result has 'should_checkpoint': True (set by a callback or "
                "reported by the trainable) and no checkpoint was taken: %s.",
                trial.name,
                why,
            )

    async def _pause(self, trial: Trial, handle: TrialHandle) -> bool:
        """Checkpoint (class trainables at a decision point) and stop; True if reusable."""
        held = self._held.get(trial.trial_id, False)
        if not held and trial.restore_from is None and not self._warned_pause:
            self._warned_pause = True
            log.warning(
                "%s paused a trial at a result that was not a decision point (see "
                "TrialScheduler.sync_point / requires_sync_point): the trainable may have "
                "run past it, so it resumes from its last checkpoint at or before that "
                "point (or from scratch without one).",
                type(self.spec.scheduler).__name__,
            )
        if self.spec.trainable.kind == "class" and held and trial.restore_from is None:
            await self._save_now(trial, handle)
        reusable = await handle.stop()
        self._apply(E.TrialPaused(trial_id=trial.trial_id))
        return reusable

    async def _complete(self, trial: Trial, outcome: str) -> None:
        spec = self.spec
        reason = {
            "finished": "finished",
            _DECISION_DONE: "finished",
            "stop_all": "experiment_stopped",
        }.get(outcome, "stopped")
        self._apply(E.TrialCompleted(trial_id=trial.trial_id, reason=reason))
        if outcome == "finished" and trial.last_result:
            trial.last_result[R.DONE] = True
        result = trial.last_result
        if outcome == "stop_all":
            await spec.scheduler.on_trial_remove(self, trial)
        elif outcome != TrialScheduler.STOP:
            await spec.scheduler.on_trial_complete(self, trial, result)
        await call_handler(spec.searcher, "on_trial_complete", trial.trial_id, result, error=False)
        await self._hook("on_trial_complete", self._iteration, self.trials, trial=trial)
        if (
            spec.metric is not None
            and trial.num_results > 0
            and trial.trial_id not in self._metric_seen
            and not self._metric_seen
            and self._fatal is None
        ):
            reported = sorted(k for k in result if k not in R.FILLED_RESULT_KEYS)
            self._fail_experiment(
                ConfigError(
                    f"metric {spec.metric!r} was never reported by trial {trial.name} (it "
                    f"reported {reported}). Report it, e.g. atune.report({{{spec.metric!r}: "
                    "...}), or fix TuneConfig(metric=...)."
                )
            )

    async def _retry_or_fail(self, trial: Trial, error: BaseException | None) -> bool:
        """Count a failure; True if the trial will be retried."""
        spec = self.spec
        trial.num_failures += 1
        max_failures = spec.failure_config.max_failures
        retry = not self._stop_all and (max_failures < 0 or trial.num_failures <= max_failures)
        if retry:
            log.warning(
                "Trial %s failed (%s); retrying (%d/%s)%s.",
                trial.name,
                _describe(error),
                trial.num_failures,
                "inf" if max_failures < 0 else max_failures,
                f" from {trial.checkpoint.path}" if trial.checkpoint else " from scratch",
            )
            await self._hook("on_trial_recover", self._iteration, self.trials, trial=trial)
            return True
        self._apply(E.TrialErrored(trial_id=trial.trial_id, error=error))
        if spec.verbose >= 1:
            log.error(
                "Trial %s failed: %s (traceback in %s)",
                trial.name,
                _describe(error),
                os.path.join(trial.local_path, R.ERROR_FILE),
            )
        await spec.scheduler.on_trial_error(self, trial)
        await call_handler(
            spec.searcher,
            "on_trial_complete",
            trial.trial_id,
            trial.last_result or None,
            error=True,
        )
        await self._hook("on_trial_error", self._iteration, self.trials, trial=trial)
        if spec.failure_config.fail_fast:
            if spec.failure_config.fail_fast == "raise" and error is not None:
                self._fail_experiment(error)
            self.stop_all()
        return False

    async def _write_error(self, trial: Trial, error: BaseException, tb: str) -> None:
        """Append the failure to ``error.txt`` in the trial directory."""
        text = tb or f"{type(error).__name__}: {error}\n"
        when = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        path = os.path.join(trial.local_path, R.ERROR_FILE)
        async with aiofiles.open(path, "a") as f:
            await f.write(f"Failure # {trial.num_failures + 1} (occurred at {when})\n{text}\n")

    def _fail_experiment(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self.stop_all()

    # --------------------------------------------------------------- callbacks
    def _is_async(self, cb: Callback, name: str) -> bool:
        key = (id(cb), name)
        known = self._async_hooks.get(key)
        if known is None:
            known = inspect.iscoroutinefunction(getattr(cb, name))
            self._async_hooks[key] = known
        return known

    async def _call(self, cb: Callback, name: str, *args: Any, **kwargs: Any) -> None:
        out = getattr(cb, name)(*args, **kwargs)
        if inspect.isawaitable(out):
            await out

    async def _hook(self, name: str, *args: Any, **kwargs: Any) -> None:
        for cb in self.spec.callbacks:
            await self._call(cb, name, *args, **kwargs)

    # -------------------------------------------------------------- background
    async def _background(self) -> None:
        """Flush loggers, delete old checkpoints, print progress, watch the time budget."""
        budget = self.spec.time_budget_s
        deadline = None if budget is None else time.monotonic() + budget
        while True:
            timeout = FLUSH_INTERVAL_S
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - time.monotonic()))
            with anyio.move_on_after(timeout):
                await self._flush_needed.wait()  # the sinks are full: flush right away
            if deadline is not None and time.monotonic() >= deadline and not self._stop_all:
                if self.spec.verbose >= 1:
                    log.info("Time budget of %.1f s reached; stopping all trials.", budget)
                self.stop_all()
            await self._flush()
            if time.monotonic() >= self._next_searcher_save:
                await self._save_searcher()
            self._report_progress(done=False)

    async def _flush(self) -> None:
        """Flush every callback; then release trials waiting for the sinks to drain."""
        flushing = self._unflushed
        self._flush_needed = anyio.Event()
        for cb in self.spec.callbacks:
            try:
                await cb.flush()
            except Exception:
                log.exception("Callback %s failed to flush", type(cb).__name__)
        if self._to_delete:
            paths, self._to_delete = self._to_delete, []

            def _rm() -> None:
                for p in paths:
                    shutil.rmtree(p, ignore_errors=True)

            await anyio.to_thread.run_sync(_rm)
        self._unflushed -= flushing
        self._flushed.set()
        self._flushed = anyio.Event()

    async def _save_searcher(self) -> None:
        """Write the searcher's state to the experiment dir (atomically, off the loop).

        The snapshot is taken on the loop (the searcher is only touched there; one with
        model work in progress is awaited, see ``Searcher.snapshot``) and written by a
        thread, so a restored experiment continues the search.
        """
        self._next_searcher_save = time.monotonic() + SEARCHER_SAVE_INTERVAL_S
        try:
            data = pickle.dumps(await experiment_state(self.spec.searcher))
        except Exception as exc:
            if not self._warned_searcher_state:
                self._warned_searcher_state = True
                log.warning(
                    "The state of %s cannot be pickled (%s); it is not saved with the experiment.",
                    type(self.spec.searcher).__name__,
                    exc,
                )
            return
        path = os.path.join(self.spec.experiment_path, SEARCHER_STATE_FILE)

        def _write() -> None:
            tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)

        await anyio.to_thread.run_sync(_write)

    async def _wait_for_sinks(self) -> None:
        """Backpressure: hold off fetching while too many results wait to be written."""
        while self._unflushed >= MAX_UNFLUSHED_RESULTS:
            self._flush_needed.set()
            await self._flushed.wait()

    def _report_progress(self, done: bool) -> None:
        reporter = self.spec.progress_reporter
        if reporter is None or self.spec.verbose < 1:
            return
        if reporter.should_report(self.trials, done=done):
            reporter.report(self.trials, done, *self._sys_info())

    def _sys_info(self) -> list[str]:
        from atune.callbacks.progress import ExperimentStatus

        total = self.state.pool.total
        used = self.state.pool.used
        parts = [f"{used.get('CPU', 0):g}/{total.get('CPU', 0):g} CPUs"]
        parts.append(f"{used.get('GPU', 0):g}/{total.get('GPU', 0):g} GPUs")
        status = ExperimentStatus(
            start_time=self._start_time,
            scheduler_line=self.spec.scheduler.debug_string(),
            resources_line="Logical resource usage: " + ", ".join(parts),
            logdir=self.spec.experiment_path,
            total_samples=self.spec.total_samples,
            metric=self.spec.metric,
            mode=self.spec.mode,
        )
        return [status]  # type: ignore[list-item]

    async def _shutdown(self) -> None:
        lost = self._cluster_lost
        idle, self._idle_workers = self._idle_workers, []
        for handle in idle:
            if lost is None:
                await handle.stop(final=True)  # cleanup() of a trainable kept for reuse
            self._discard_worker(handle)
        if lost is not None:
            await self._mark_lost_trials(lost)
        # Trials never started when stop-all hit are not part of the experiment.
        if self._stop_all:
            dropped = [t for t in self.trials if t.status == Trial.PENDING and not t.num_results]
            for t in dropped:
                self.state.table.remove(t)
                await self.spec.scheduler.on_trial_remove(self, t)
        await self._finish_idle_trials()
        await self._save_searcher()
        await self._hook("on_experiment_end", self.trials)
        await self._flush()
        self._report_progress(done=True)
        sys.stdout.flush()

    async def _mark_lost_trials(self, lost: ClusterDiedError) -> None:
        """Trials that were running on a cluster that died end in ERROR; say so clearly."""
        running = [t for t in self.trials if t.status == Trial.RUNNING]
        for trial in running:
            self._apply(E.TrialErrored(trial_id=trial.trial_id, error=lost))
            with anyio.move_on_after(2.0):
                await self._write_error(trial, lost, "")
        finished = sum(1 for t in self.trials if t.status == Trial.TERMINATED)
        searcher = os.path.join(self.spec.experiment_path, SEARCHER_STATE_FILE)
        self._fatal = ClusterDiedError(
            f"the Ray cluster stopped under the experiment: {lost}. atune disconnected "
            f"from it and ended the experiment: {finished} trials had finished, "
            f"{len(running)} that were running are marked ERROR. Everything recorded is "
            f"saved in {self.spec.experiment_path} (each trial's results and checkpoints, "
            f"and the searcher's state in {searcher}). To continue, run the experiment "
            "again: atune starts a new local Ray (or call ray.init(address=...) for your "
            "cluster), and a model-based searcher continues its search with "
            f"searcher.restore_from_dir({self.spec.experiment_path!r})."
        )
        self._fatal.__cause__ = lost


def _lookup_path(config: dict[str, Any], key: str) -> tuple[bool, Any]:
    """``config["a"]["b"]`` for the flat key ``"a/b"``."""
    value: Any = config
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _check_metric_value(trial: Trial, metric: str, value: Any) -> ConfigError | None:
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


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {error}"
