"""The controller: the coroutine graph that runs one experiment.

::

    run ─┬─ sinks (shielded, end with the bus): LoggerSink · ProgressSink
         └─ experiment ─┬─ upkeep.upkeep: time budget, dropped checkpoints, searcher save
                        ├─ commands.read_commands: stop/pause/resume/add trial, stop-all
                        ├─ _watch_cluster: executor.watch() → ClusterDiedError
                        └─ _schedule: searcher → trials → scheduler picks → one task per
                           running trial: TrialProxy.run() → ResultPipeline.decide()
                           → endings.settle(); at the end shutdown.finish()

Every change goes through :meth:`Controller.emit`: applied to the
:class:`~atune._engine.state.ExperimentState`, published on the
:class:`~atune._engine.bus.EventBus`, then (for user callbacks) delivered inline.
The controller is also the :class:`~atune._engine.api.TuneController` schedulers see.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections import deque
from typing import Any

import anyio

if sys.version_info < (3, 11):  # anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

from atune._engine import commands as C
from atune._engine import endings, shutdown, upkeep
from atune._engine import events as E
from atune._engine.bus import EventBus
from atune._engine.facade import SchedulerAPI
from atune._engine.hooks import CallbackHooks
from atune._engine.journal import JournalSink, JournalState
from atune._engine.pipeline import ResultPipeline
from atune._engine.plugins import call_plugin, call_plugin_sync
from atune._engine.proxy import TrialProxy
from atune._engine.restore import Restored, capture, install
from atune._engine.searching import SearcherGate
from atune._engine.sinks import LoggerSink, ProgressSink
from atune._engine.spec import (
    COMMAND_QUEUE_SIZE,
    IDLE_WORKER_S,
    MAX_PENDING_TRIALS,
    ExperimentSpec,
)
from atune._engine.state import ExperimentState
from atune._engine.trials import make_trial, unschedulable_error
from atune._engine.workers import WorkerPool
from atune._executor._base import Executor
from atune._storage import RemoteSync
from atune._trial import Trial
from atune.callbacks._base import LoggerCallback
from atune.errors import AtuneError, ClusterDiedError, ConfigError, PluginError
from atune.search._base import FINISHED

__all__ = ["Controller", "ExperimentSpec"]

log = logging.getLogger("atune")


class Controller(SchedulerAPI):
    """Runs one experiment. Schedulers and searchers receive it as ``tune_controller``."""

    def __init__(
        self, spec: ExperimentSpec, executor: Executor, restored: Restored | None = None
    ) -> None:
        self.spec = spec
        self.executor = executor
        self.restored = restored
        if restored is None:
            self.state = ExperimentState(checkpoint_config=spec.checkpoint_config)
        else:
            self.state = ExperimentState(
                checkpoint_config=spec.checkpoint_config,
                id_prefix=restored.state.prefix,
                next_index=restored.state.next_index,
            )
        self.experiment_id = uuid.uuid4().hex
        self.bus = EventBus()
        self.commands = C.CommandQueue(COMMAND_QUEUE_SIZE)
        self.pool = WorkerPool(executor, spec.class_trainable)
        self.searcher_gate = SearcherGate(spec.searcher, spec.experiment_path)
        self.pipeline = ResultPipeline(self)
        table = self.state.table
        loggers = [cb for cb in spec.callbacks if isinstance(cb, LoggerCallback)]
        users = [cb for cb in spec.callbacks if not isinstance(cb, LoggerCallback)]
        self.inline_hooks = CallbackHooks(users, table, lambda: self.iteration)
        self._all_hooks = CallbackHooks(spec.callbacks, table, lambda: self.iteration)
        self.external: set[str] = set()  # added by a command: the searcher does not know
        self.sinks: list[JournalSink | LoggerSink | ProgressSink] = []
        written = None
        if loggers:
            hooks = CallbackHooks(loggers, table, lambda: self.iteration)
            logger_sink = LoggerSink(self.bus, hooks, self.fail_experiment)
            self.sinks.append(logger_sink)
            written = logger_sink.written
        if restored is not None:
            jstate = restored.state
        else:
            jstate = JournalState(
                spec.experiment_path, spec.checkpoint_config, prefix=table.id_prefix
            )
        self.journal = JournalSink(
            self.bus,
            jstate,
            table,
            lambda: capture(self),
            self.external,
            self.fail_experiment,
            follows=written,
        )
        self.sinks.append(self.journal)
        reporter = spec.progress_reporter if spec.verbose >= 1 else None
        if reporter is not None or spec.verbose >= 2:
            self.sinks.append(
                ProgressSink(
                    self.bus,
                    reporter,
                    table,
                    lambda: upkeep.status(self),
                    spec.verbose >= 2,
                    self.fail_experiment,
                )
            )
        self.changed = anyio.Event()
        self._stop_all = False
        self.fatal: BaseException | None = None
        self.cluster_lost: ClusterDiedError | None = None
        self._searcher_finished = False
        self._searcher_waiting = False
        self._proxies: dict[str, TrialProxy] = {}  # RUNNING trials
        self.idle_finished: list[Trial] = []  # stopped while PENDING/PAUSED, to announce
        self.held_by_command: set[str] = set()  # paused by a command: not started again
        #: Trials requeued after a failure: their next start continues after it.
        self.requeued: dict[str, bool] = {}
        #: Commands waiting for a trial's status: trial id -> [(statuses, reply)].
        self._waiters: dict[str, list[tuple[frozenset[str], C.Reply]]] = {}
        self._outbox: deque[E.Event] = deque()  # applied, not yet published
        #: Checkpoint directories no longer kept, each with the count of events applied
        #: when it was dropped: deleted once the journal has recorded that far (so a
        #: restore never looks for a checkpoint that is gone).
        self.to_delete: list[tuple[int, str]] = []
        self.applied = 0
        self._warned: set[str] = set()
        self.iteration = 0
        self.start_time = time.time()
        self.remote_sync: RemoteSync | None = None
        if spec.storage is not None and spec.storage.remote:
            self.remote_sync = RemoteSync(spec.storage, spec.experiment_path, spec.experiment_name)

    @property
    def trials(self) -> list[Trial]:
        """The experiment's trials, in scheduling order."""
        return self.state.trials

    # ------------------------------------------------------------------ events
    async def emit(self, event: E.Event, *, inline: bool = True) -> None:
        """Apply ``event``, publish it (after those applied before it), then run the
        user callbacks' hook for it (``inline=False``: the caller does, later)."""
        dropped = self.state.apply(event)
        self.applied += 1
        if dropped:
            self.to_delete.extend((self.applied, p) for p in dropped)
        if self._waiters and isinstance(event, E.TrialEvent):
            self._settle_waiters(event.trial_id)
        if self._outbox:  # events applied before this one go first
            self._outbox.append(event)
            await self.publish_pending()
        else:
            await self.bus.publish(event)
        if inline and self.inline_hooks:
            await self.inline_hooks.deliver(event)

    def emit_nowait(self, event: E.Event) -> None:
        """:meth:`emit` from sync code: published by the next emit or scheduling step."""
        dropped = self.state.apply(event)
        self.applied += 1
        if dropped:
            self.to_delete.extend((self.applied, p) for p in dropped)
        if self._waiters and isinstance(event, E.TrialEvent):
            self._settle_waiters(event.trial_id)
        self._outbox.append(event)
        self.changed.set()

    async def publish_pending(self) -> None:
        outbox = self._outbox
        while outbox:
            await self.bus.publish(outbox.popleft())

    def drop_unrecorded(self, items: list[tuple[dict[str, Any], str | None]]) -> None:
        """Results past a decision are never recorded; delete their checkpoints."""
        self.to_delete.extend((0, p) for _, p in items if p)

    def wait_for_status(self, trial: Trial, statuses: frozenset[str], reply: C.Reply) -> None:
        """Set ``reply`` once ``trial`` is in one of ``statuses`` or has ended."""
        if trial.status in statuses or trial.is_finished:
            reply.set()
        else:
            self._waiters.setdefault(trial.trial_id, []).append((statuses, reply))

    def _settle_waiters(self, trial_id: str) -> None:
        waiting = self._waiters.get(trial_id)
        if not waiting:
            return
        trial = self.state.table.get(trial_id)
        left = []
        for statuses, reply in waiting:
            if trial is None or trial.status in statuses or trial.is_finished:
                reply.set()
            else:
                left.append((statuses, reply))
        if left:
            self._waiters[trial_id] = left
        else:
            del self._waiters[trial_id]

    def release_waiters(self) -> None:
        """The experiment is over: every command still waiting is as applied as it gets."""
        waiters, self._waiters = self._waiters, {}
        for waiting in waiters.values():
            for _, reply in waiting:
                reply.set()

    def fail_experiment(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
        self.stop_all()

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def searcher_knows(self, trial: Trial) -> bool:
        return trial.trial_id not in self.external

    # ------------------------------------------------------------- running
    async def run(self) -> list[Trial]:
        """Run the experiment to its end; returns the trials."""
        spec = self.spec
        await self.executor.start()
        try:
            self.state.pool.total = self.executor.total_resources()
            self.pool.parameters = await self.executor.put(spec.trainable.parameters)
            await anyio.to_thread.run_sync(lambda: os.makedirs(spec.experiment_path, exist_ok=True))
            if self.restored is not None:
                await install(self, self.restored)
            await self.journal.open()
            self.start_time = time.time()
            await self._all_hooks.call(
                "setup",
                stop=spec.stopper,
                num_samples=spec.total_samples,
                total_num_samples=spec.total_samples,
                experiment_path=spec.experiment_path,
                metric=spec.metric,
                mode=spec.mode,
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.executor.aclose()
            raise
        try:
            async with anyio.create_task_group() as sinks:
                for sink in self.sinks:
                    sinks.start_soon(sink.run, name=f"atune {type(sink).__name__}")
                try:
                    await self._experiment()
                finally:
                    with anyio.CancelScope(shield=True):
                        await shutdown.finish(self)
        except BaseExceptionGroup as group:
            # Surface a lone error as itself: `except ConfigError` should just work.
            leaves = _leaves(group)
            if len(leaves) == 1 and not isinstance(leaves[0], anyio.get_cancelled_exc_class()):
                raise leaves[0] from group
            raise
        if self.fatal is not None:
            raise self.fatal
        return self.trials

    async def _experiment(self) -> None:
        async with anyio.create_task_group() as outer:
            outer.start_soon(upkeep.upkeep, self)
            outer.start_soon(C.read_commands, self)
            if self.remote_sync is not None:
                outer.start_soon(upkeep.sync_remote, self.remote_sync)
            async with anyio.create_task_group() as trials:
                outer.start_soon(self._watch_cluster, trials.cancel_scope)
                await self._schedule(trials)
            outer.cancel_scope.cancel()

    async def _watch_cluster(self, trials: anyio.CancelScope) -> None:
        """End the experiment at once, with a clear error, if the cluster dies."""
        try:
            await self.executor.watch()
        except ClusterDiedError as exc:
            self.cluster_lost = exc
            self.fail_experiment(exc)
            trials.cancel()  # nothing can be stopped gracefully any more

    async def _schedule(self, tg: anyio.abc.TaskGroup) -> None:
        while True:
            self.changed = anyio.Event()
            self.iteration += 1
            try:
                await self._all_hooks.call("on_step_begin", self.iteration, self.trials)
                await self.publish_pending()
                await endings.finish_idle_trials(self)
                # Fill every free slot: a model-based searcher is asked for one config
                # at a time, each as soon as a trial can start with it.
                while not self._stop_all:
                    await self._create_trials()
                    if not await self._start_trials(tg):
                        break
                await self._all_hooks.call("on_step_end", self.iteration, self.trials)
            except PluginError as exc:
                self.fail_experiment(exc)
            if self._is_over():
                return
            if self.pool.has_idle:
                # A worker no trial took soon is ended: its resources may be wanted.
                with anyio.move_on_after(IDLE_WORKER_S):
                    await self.changed.wait()
                await self.pool.end_stale()
            else:
                await self.changed.wait()

    def _is_over(self) -> bool:
        running = self.state.pool.live > 0
        if self._stop_all:
            return not running
        if running:
            return False
        waiting = [
            t
            for t in self.trials
            if t.status in (Trial.PENDING, Trial.PAUSED) and t.trial_id not in self.held_by_command
        ]
        if not waiting:
            if any(not t.is_finished for t in self.trials):
                return False  # paused by a command: wait for ResumeTrial
            if self._searcher_waiting and not self._searcher_finished:
                log.warning(
                    "The searcher suggests no new trial while none is running; "
                    "ending the experiment."
                )
            return self._searcher_finished or self._searcher_waiting
        if not self._searcher_waiting and not self.has_resources_for_trial(waiting[0]):
            # Nothing runs and nothing fits: the resources can never be enough.
            self.fail_experiment(self._unschedulable(waiting[0]))
            return True
        return False

    def _unschedulable(self, trial: Trial) -> ConfigError:
        hint = getattr(self.executor, "more_resources_hint", None)
        text = hint() if hint is not None else "give the executor more resources"
        return unschedulable_error(trial, self.state.pool.total, text)

    async def _create_trials(self) -> None:
        from atune.search.basic_variant import BasicVariantGenerator

        spec = self.spec
        eager = isinstance(spec.searcher, BasicVariantGenerator)
        bound = MAX_PENDING_TRIALS if eager else 1
        self._searcher_waiting = False
        while not self._searcher_finished and not self._stop_all:
            pending = sum(1 for t in self.trials if t.status == Trial.PENDING)
            if pending >= bound or (not eager and not self._slot_free()):
                return
            _, trial_id = self.state.table.peek_id()
            suggestion = await self.searcher_gate.call("suggest", trial_id)
            if suggestion == FINISHED or (
                suggestion is None and call_plugin_sync(spec.searcher, "is_finished")
            ):
                self._searcher_finished = True
                return
            if suggestion is None:
                self._searcher_waiting = True
                return
            if not isinstance(suggestion, dict):
                raise AtuneError(
                    f"{type(spec.searcher).__name__}.suggest() must return a config dict, "
                    f"None or FINISHED, got {suggestion!r}"
                )
            blob = await self.searcher_gate.state_bytes()
            if not await self.add_trial(suggestion, searcher_state=blob):
                return

    async def add_trial(
        self,
        config: dict[str, Any],
        searcher_state: bytes | None = None,
        *,
        external: bool = False,
    ) -> Trial | None:
        """Add a PENDING trial running ``config``; None if it cannot be (the experiment
        then fails). ``external``: not the searcher's (added by a command)."""
        index, trial_id = self.state.table.peek_id()
        try:
            trial = make_trial(self.spec, index, trial_id, config)
            if not self.state.pool.could_ever_fit(trial.resources):
                raise self._unschedulable(trial)
        except AtuneError as exc:
            self.fail_experiment(exc)
            return None
        self.state.table.new_id()  # the id is taken now
        if external:
            self.external.add(trial.trial_id)
        await self.emit(self.state.add_trial(trial, searcher_state))
        await call_plugin(self.spec.scheduler, "on_trial_add", self, trial)
        return trial

    def _slot_free(self) -> bool:
        """Could one more trial start now? Judged by the last trial's resource request.

        A model-based searcher is asked for a config only then, so each suggestion
        sees every result reported before a trial can use it.
        """
        if self.state.pool.live == 0 or not self.trials:
            return True
        return self.has_resources_for_trial(self.trials[-1])

    async def _start_trials(self, tg: anyio.abc.TaskGroup) -> int:
        """Start trials while the scheduler picks one that fits; return how many."""
        started = 0
        while not self._stop_all:
            trial = await call_plugin(self.spec.scheduler, "choose_trial_to_run", self)
            if trial is None or not self.has_resources_for_trial(trial):
                return started
            started += 1
            resume = trial.status == Trial.PAUSED
            kind = E.TrialResumed if resume else E.TrialStarted
            await self.emit(kind(trial_id=trial.trial_id, resources=dict(trial.resources)))
            proxy = TrialProxy(self, trial, resume)
            self._proxies[trial.trial_id] = proxy
            tg.start_soon(self._run_trial, proxy, name=f"trial {trial.trial_id}")
        return started

    async def _run_trial(self, proxy: TrialProxy) -> None:
        trial = proxy.trial
        try:
            outcome = await proxy.run()
            try:
                await endings.settle(self, proxy, outcome)
            except PluginError as exc:
                self.fail_experiment(exc)
        finally:
            self._proxies.pop(trial.trial_id, None)
            with anyio.CancelScope(shield=True):
                await proxy.close()
                await self.emit(E.ResourcesReleased(trial_id=trial.trial_id))
                self.changed.set()


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
