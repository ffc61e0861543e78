"""One running trial: its worker, its stream of results, its retries, its end.

A :class:`TrialProxy` lives for one run of a trial (from start or resume to its end,
pause or failure). It owns the worker handle, the outstanding fetch and its cancel
scope, whether the trainable is held at the current result, and the retry loop; it
sends each result through the decision pipeline and returns an :class:`Outcome`.
The controller settles the outcome (completion hooks, pause bookkeeping) and then
closes the proxy, which hands the worker back for reuse or ends it, and gives the
trial's resources back.
"""

from __future__ import annotations

import datetime
import enum
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import aiofiles
import anyio
import anyio.lowlevel

from atune import result as R
from atune._engine import events as E
from atune._engine.spec import BATCH_LINGER_S, RESULT_BUFFER_SIZE, SLICE_S
from atune._executor._base import TrialHandle, WorkerSpec
from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.errors import ClusterDiedError, PluginError, SerializationError, TrialWorkerDiedError

if TYPE_CHECKING:
    from atune._engine.controller import Controller

__all__ = ["Outcome", "TrialProxy"]

log = logging.getLogger("atune")


class Outcome(enum.Enum):
    """How one run of a trial ended."""

    #: The trainable returned (or its class trainable said ``done``).
    FINISHED = "finished"
    #: A stop criterion (stop dict, stopper) or ``done=True`` in a result.
    DONE = "done"
    #: A scheduler's STOP, or a StopTrial command.
    STOPPED = "stopped"
    #: A scheduler's PAUSE, or a PauseTrial command: it resumes later.
    PAUSED = "paused"
    #: ``stop_all()``: the time budget, a stopper, fail_fast, a failure, a command.
    EXPERIMENT_STOPPED = "experiment_stopped"
    #: Failed for good (``max_failures`` used up).
    ERROR = "error"
    #: Failed, and waits behind the PENDING trials to retry.
    REQUEUED = "requeued"
    #: The cluster died under it.
    LOST = "lost"


class TrialProxy:
    """The driver's side of one run of ``trial``."""

    def __init__(self, engine: Controller, trial: Trial, resume: bool) -> None:
        self.engine = engine
        self.trial = trial
        self.handle: TrialHandle | None = None
        #: Is the trainable waiting right after the result being processed?
        self.held = False
        self._resume = resume
        self._request: Outcome | None = None  # a STOP/PAUSE asked from outside
        #: A stop was asked (perhaps while a pause was under way).
        self.stop_requested = False
        self._fetch: anyio.CancelScope | None = None
        self._reusable = False  # hand the worker to the pool when closing
        self._ended_cleanly = False  # else the worker is killed without cleanup()

    # ------------------------------------------------------------- from outside
    def request(self, outcome: Outcome) -> None:
        """Stop or pause at the result being processed (or the next one to arrive)."""
        if outcome is Outcome.STOPPED:
            self.stop_requested = True
        if self._request is None:
            self._request = outcome
        if self._fetch is not None:
            self._fetch.cancel()

    def interrupt(self) -> None:
        """Stop waiting for results now (stop_all); checked before the next result."""
        if self._fetch is not None:
            self._fetch.cancel()

    async def save_if_held(self) -> None:
        """Checkpoint a class trainable that waits at the current result."""
        if self.handle is not None and self.engine.spec.class_trainable and self.held:
            await self.save_now()

    # ------------------------------------------------------------------ running
    async def run(self) -> Outcome:
        engine, trial = self.engine, self.trial
        restoring = self._resume
        after_failure = engine.requeued.pop(trial.trial_id, False)
        try:
            while True:
                outcome, error = await self._attempt(restoring, after_failure)
                if outcome is not Outcome.ERROR:
                    break
                engine.pool.discard(self.handle)
                self.handle = None
                from atune._engine.endings import on_trial_failure

                verdict = await on_trial_failure(engine, trial, error)
                if verdict is not None:
                    self._ended_cleanly = True
                    return verdict
                restoring = trial.checkpoint is not None
                after_failure = True
        except ClusterDiedError:
            return Outcome.LOST  # the cluster watch ends the experiment
        except PluginError as exc:
            engine.fail_experiment(exc)
            outcome = Outcome.EXPERIMENT_STOPPED
        handle = self.handle
        assert handle is not None  # only an error comes without a worker
        spec = engine.spec
        if outcome is Outcome.PAUSED:
            self._reusable = await self._pause(handle)
        elif outcome is Outcome.FINISHED:
            self._reusable = spec.reuses_worker(trial)
        else:
            if spec.checkpoint_config.checkpoint_at_end and spec.class_trainable:
                await self.save_now()
            self._reusable = await handle.stop() and spec.reuses_worker(trial)
        self._ended_cleanly = True
        return outcome

    async def close(self) -> None:
        """Hand the worker back (or end it); the trial's resources are then free."""
        handle, self.handle = self.handle, None
        if handle is None:
            return
        if self._reusable and not self.engine.stopping:
            self.engine.pool.give_back(handle)
        else:
            await self.engine.pool.retire(handle, graceful=self._ended_cleanly)

    async def _attempt(
        self, restoring: bool, after_failure: bool
    ) -> tuple[Outcome, BaseException | None]:
        engine, trial = self.engine, self.trial
        wspec = self._worker_spec(restoring)
        try:
            await anyio.to_thread.run_sync(lambda: os.makedirs(trial.local_path, exist_ok=True))
            self.handle = await engine.pool.acquire(wspec, dict(trial.resources))
        except TrialWorkerDiedError as exc:  # died while starting
            await self.write_error(exc, "")
            return Outcome.ERROR, exc
        except SerializationError as exc:
            # The trainable or the config cannot reach a worker: no retry can help, and
            # other trials would fail the same way. The trial ends in ERROR, the
            # experiment stops, and fit() raises this error.
            await self.write_error(exc, "")
            engine.fail_experiment(exc)
            return Outcome.ERROR, exc
        await engine.emit(
            E.TrialWorkerStarted(
                trial_id=trial.trial_id,
                restored=wspec.restore_path is not None,
                start_iteration=wspec.start_iteration,
                after_failure=after_failure,
            )
        )
        return await self._stream(self.handle)

    def _worker_spec(self, restore: bool) -> WorkerSpec:
        engine, trial = self.engine, self.trial
        spec = engine.spec
        restore_path = None
        start_iter, start_time = 0, 0.0
        source = trial.restore_from or (trial.checkpoint if restore else None)
        trial.restore_from = None
        if source is not None:
            restore_path = source.path
            start_iter, start_time = engine.state.book.meta(source.path)
        return WorkerSpec(
            trial_id=trial.trial_id,
            trial_name=trial.name,
            experiment_id=engine.experiment_id,
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
            lockstep=spec.lockstep,
            keep_for_reuse=spec.class_trainable,
            placement=trial.placement_group_factory,
            sync_point=spec.scheduler.sync_point(trial),
        )

    async def _stream(self, handle: TrialHandle) -> tuple[Outcome, BaseException | None]:
        """Process the trial's results in order until it ends or a decision ends it."""
        engine, trial = self.engine, self.trial
        decide = engine.pipeline.decide
        lockstep = engine.spec.lockstep
        scheduler = engine.spec.scheduler
        acked = 0
        last_batch = 0
        while True:
            if engine.stopping:
                return Outcome.EXPERIMENT_STOPPED, None
            if self._request is not None:
                return self._request, None
            linger = BATCH_LINGER_S if last_batch > 1 else 0.0
            with anyio.CancelScope() as scope:
                self._fetch = scope
                try:
                    batch = await handle.next_results(
                        RESULT_BUFFER_SIZE, acked, lockstep, linger, scheduler.sync_point(trial)
                    )
                except TrialWorkerDiedError as exc:
                    await self.write_error(exc, "")
                    return Outcome.ERROR, exc
                finally:
                    self._fetch = None
            if scope.cancelled_caught:
                continue  # stop-all or a request: checked at the top
            results = batch.results
            last_batch = len(results)
            slice_end = time.perf_counter() + SLICE_S
            for i, (res, ckpt_path) in enumerate(results):
                self.held = i == batch.held_index
                if time.perf_counter() >= slice_end:
                    await anyio.lowlevel.checkpoint()  # let the host's other tasks run
                    slice_end = time.perf_counter() + SLICE_S
                if self._request is not None:
                    engine.drop_unrecorded(results[i:])
                    return self._request, None
                acked += 1
                outcome = await decide(self, res, ckpt_path)
                if outcome is not None:
                    engine.drop_unrecorded(results[i + 1 :])
                    return outcome, None
            if batch.finished:
                if batch.error is not None:
                    await self.write_error(batch.error, batch.error_traceback)
                    return Outcome.ERROR, batch.error
                return Outcome.FINISHED, None

    # -------------------------------------------------------------- checkpoints
    async def save_now(self) -> None:
        """Checkpoint a class trainable now (unless it was saved at this very result)."""
        engine, trial, handle = self.engine, self.trial, self.handle
        if handle is None:
            return
        iteration = trial.last_result.get(R.TRAINING_ITERATION)
        ckpt = trial.checkpoint
        if ckpt is not None and engine.state.book.meta(ckpt.path)[0] == iteration:
            return
        path = await handle.save()
        if path is not None and (trial.checkpoint is None or trial.checkpoint.path != path):
            await engine.record_checkpoint(trial, Checkpoint(path), trial.last_result)

    async def _pause(self, handle: TrialHandle) -> bool:
        """Checkpoint (class trainables at a decision point) and stop; True if reusable."""
        engine, trial = self.engine, self.trial
        if not self.held and trial.restore_from is None:
            if trial.trial_id in engine.held_by_command:
                engine.warn_once(
                    "pause-command",
                    "A pause command paused trial %s while it ran ahead of the driver: it "
                    "resumes from its last checkpoint (or from scratch without one).",
                    trial.name,
                )
            else:
                engine.warn_once(
                    "pause",
                    "%s paused a trial at a result that was not a decision point (see "
                    "TrialScheduler.sync_point / requires_sync_point): the trainable may "
                    "have run past it, so it resumes from its last checkpoint at or before "
                    "that point (or from scratch without one).",
                    type(engine.spec.scheduler).__name__,
                )
        if engine.spec.class_trainable and self.held and trial.restore_from is None:
            await self.save_now()
        return await handle.stop()

    async def write_error(self, error: BaseException, tb: str) -> None:
        """Append the failure to ``error.txt`` in the trial directory."""
        trial = self.trial
        text = tb or f"{type(error).__name__}: {error}\n"
        when = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        path = os.path.join(trial.local_path, R.ERROR_FILE)
        async with aiofiles.open(path, "a") as f:
            await f.write(f"Failure # {trial.num_failures + 1} (occurred at {when})\n{text}\n")


def describe(error: Any) -> str:
    if error is None:
        return "unknown error"
    return f"{type(error).__name__}: {error}"
