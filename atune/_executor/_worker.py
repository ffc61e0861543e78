"""The worker side of a trial: runs one trainable and buffers its results.

A :class:`TrialWorker` runs in a worker process (a Ray actor, see ``_ray.py``) or in
the driver's own process (``_local.py``): the executors differ only in how the driver
reaches it. It runs the trainable (see ``_runners.py``) on a thread (sync functions
and classes) or as a task on the event loop it was started from (``async def``
trainables). Every ``report()`` fills in the automatic result fields and appends to
a bounded buffer (``_buffer.py``); ``report()`` waits (an async trainable: awaits)
only while the buffer is full. The driver keeps one ``next_results`` call
outstanding, which returns as soon as results are buffered, all of them up to
``max_results`` at once.

With ``lockstep`` on, the trainable waits after each result until the driver has
acknowledged (decided on) it: the sync point schedulers use to act at an exact
iteration. This module must not import ``ray``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import socket
import threading
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from atune import session
from atune._executor import _runners
from atune._executor._base import Batch, WorkerSpec
from atune._executor._buffer import ResultBuffer, TrialStopped
from atune._executor._class_checkpoint import checkpoint_dir_name, save_class_checkpoint
from atune._executor._output import redirect_output
from atune._executor._result_fields import ResultFields
from atune._executor._serialization import transportable
from atune.checkpoint import Checkpoint
from atune.session import TuneContext, _Awaitable, _SessionBackend

# Batch and WorkerSpec live in the protocol module; re-exported for older imports.
__all__ = ["STOP_GRACE_S", "Batch", "TrialStopped", "TrialWorker", "WorkerSpec"]

log = logging.getLogger("atune")

#: Waiting for the trainable to notice a stop request and return, before the
#: worker gives up on it (the driver then kills the process).
STOP_GRACE_S = 2.0


class TrialWorker(_SessionBackend):
    """Runs one trainable at a time; reusable for the next trial (``reuse_actors``).

    Args:
        node_ip: Reported in every result's ``node_ip``.
        dedicated_process: This process runs no other trial (a Ray actor): the session
            is also reachable from threads the trainable starts itself.
        pickle_errors: The trainable's exception travels to another process: replace
            one that cannot be pickled by a :class:`~atune.errors.TrialError`.
    """

    def __init__(
        self,
        node_ip: str = "127.0.0.1",
        *,
        dedicated_process: bool = False,
        pickle_errors: bool = True,
    ) -> None:
        self._node_ip = node_ip
        self._hostname = socket.gethostname()
        self._pid = os.getpid()
        self._dedicated = dedicated_process
        self._pickle_errors = pickle_errors
        self._results: ResultBuffer | None = None
        # What runs the trainable: a thread, or (async def trainables) a task.
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._trainable_obj: Any = None
        # A finished class trainable kept for the next trial (reuse_actors).
        self._kept: Any = None
        self._redirect: contextlib.ExitStack | None = None
        self._running = False
        self._async_mode = False
        self._loop_tid: int | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self, spec: WorkerSpec, parameters: dict[str, Any]) -> dict[str, Any]:
        """Start running the trainable of ``spec``; returns facts about this worker."""
        if self._running:
            raise RuntimeError("worker is still running a trial")
        # The previous trial ended; its thread or task may still be on its way out.
        if not await self._join_runner(STOP_GRACE_S):
            raise RuntimeError("the trainable of the previous trial is still running")
        self._spec = spec
        self._results = ResultBuffer(spec.buffer_size, spec.lockstep, spec.sync_point)
        self._fields = ResultFields(
            spec, pid=self._pid, hostname=self._hostname, node_ip=self._node_ip
        )
        self._error: BaseException | None = None
        self._error_tb = ""
        # The rest of an async trainable's report, to run when awaited (see _defer).
        self._pending: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._loop_tid = threading.get_ident()
        os.makedirs(spec.trial_dir, exist_ok=True)
        if spec.chdir:
            os.chdir(spec.trial_dir)
        self._redirect = redirect_output(spec.log_to_file, spec.trial_dir)
        self.context = TuneContext(
            trial_id=spec.trial_id,
            trial_name=spec.trial_name,
            trial_dir=spec.trial_dir,
            experiment_name=spec.experiment_name,
            trial_resources=dict(spec.resources),
        )
        self.checkpoint = Checkpoint(spec.restore_path) if spec.restore_path else None
        if self._dedicated:
            session._set_process_backend(self)
        self._running = True
        # The trainable's thread or task runs in a copy of this context in which the
        # session functions talk to this worker, so trials can share a process.
        context = session._context_for(self)
        self._async_mode = spec.trainable.kind == "async"
        if self._async_mode:
            # Not in a task group: the worker's life spans separate requests (start,
            # next_results, stop: each its own actor call), so no scope encloses it.
            # The worker owns the task instead: it keeps the reference, stop() cancels
            # and awaits it, and _task_done surfaces an exception that escaped.
            coro = _runners.run_async(self, spec, parameters)
            loop = asyncio.get_running_loop()
            task = context.run(loop.create_task, coro, name=f"atune trial {spec.trial_name}")
            task.add_done_callback(self._task_done)
            self._task = task
        else:
            # A daemon thread, so that a trainable that never returns cannot keep the
            # process from exiting; stop() joins it, and so does the next start().
            self._thread = threading.Thread(
                target=context.run,
                args=(self._run_thread, spec, parameters),
                name=f"atune-trainable-{spec.trial_name}",
                daemon=True,
            )
            self._thread.start()
        return {"pid": self._pid, "hostname": self._hostname, "node_ip": self._node_ip}

    @property
    def iteration(self) -> int:
        """The trial's ``training_iteration`` so far."""
        return self._fields.iteration

    @property
    def alive(self) -> bool:
        """True while the trainable's thread or task runs, or a trainable is kept for reuse."""
        return (
            (self._thread is not None and self._thread.is_alive())
            or (self._task is not None and not self._task.done())
            or self._kept is not None
        )

    @property
    def stop_requested(self) -> bool:
        return self._results is not None and self._results.stopped

    # ----------------------------------------------------------------- reporting
    def _persist(self, checkpoint: Checkpoint | str | None, iteration: int) -> str | None:
        """Copy a reported checkpoint directory into the trial dir; return the copy's path."""
        if checkpoint is None:
            return None
        source = os.fspath(checkpoint)
        target = os.path.join(self._spec.trial_dir, checkpoint_dir_name(iteration))
        if os.path.abspath(source) != os.path.abspath(target):
            if os.path.exists(target):
                shutil.rmtree(target)
            shutil.copytree(source, target)
        return target

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> _Awaitable:
        if self._async_mode and threading.get_ident() == self._loop_tid:
            return self._report_async(metrics, checkpoint)
        self._put(metrics, checkpoint)
        return session._DONE

    def _put(self, metrics: dict[str, Any], checkpoint: Checkpoint | str | None) -> None:
        """Buffer one result from the trainable's thread; blocks while the buffer is full.

        The time spent blocked here is not part of the next ``time_this_iter_s``.
        """
        results = self._results
        assert results is not None
        result = self._fields.fill(metrics)
        results.wait_for_room()
        results.append((result, self._persist(checkpoint, self._fields.iteration)))
        results.wait_for_decision()
        self._fields.mark()

    def _report_async(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> _Awaitable:
        """``report()`` on the event loop: what must wait happens when it is awaited.

        As in a thread, the buffer never holds more than ``buffer_size`` results: a
        report that finds it full waits for room when awaited, and so does copying a
        checkpoint directory (on a thread). Such a report must be awaited before the
        next one, which raises otherwise.
        """
        results = self._results
        assert results is not None
        if self._pending is not None:
            raise RuntimeError(
                "an async trainable must `await atune.report(...)`: the previous report "
                "was not awaited, and it had to wait (to copy its checkpoint, for room "
                "in the full result buffer, or for the scheduler's decision)"
            )
        if results.stopped:
            raise TrialStopped()
        result = self._fields.fill(metrics)
        if checkpoint is not None or results.full:
            iteration = self._fields.iteration
            return self._defer(functools.partial(self._append_async, result, checkpoint, iteration))
        results.append((result, None))
        if results.decision_pending:
            return self._defer(self._wait_for_decision_async)
        self._fields.mark()
        return session._DONE

    def _defer(self, rest: Callable[[], Coroutine[Any, Any, None]]) -> _Awaitable:
        self._pending = rest
        return _Awaitable(self._await_pending)

    async def _await_pending(self) -> None:
        """Run what the last async report left to do (idempotent)."""
        rest, self._pending = self._pending, None
        if rest is not None:
            await rest()

    async def _append_async(
        self, result: dict[str, Any], checkpoint: Checkpoint | None, iteration: int
    ) -> None:
        assert self._results is not None
        await self._results.wait_for_room_async()
        path = None
        if checkpoint is not None:
            path = await asyncio.to_thread(self._persist, checkpoint, iteration)
        self._results.append((result, path))
        await self._wait_for_decision_async()

    async def _wait_for_decision_async(self) -> None:
        assert self._results is not None
        await self._results.wait_for_decision_async()
        self._fields.mark()

    # ------------------------------------------------------------------- running
    def _run_thread(self, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
        try:
            _runners.run_sync(self, spec, parameters)
        except TrialStopped:
            pass
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end()

    def _fail(self, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._error = transportable(exc, tb) if self._pickle_errors else exc
        self._error_tb = tb

    def _end(self) -> None:
        assert self._results is not None
        self._results.close()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """The async trainable's task ended: surface an exception that escaped it."""
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("Trial %s: error in its worker", self._spec.trial_name, exc_info=exc)
            if self._error is None:
                self._fail(exc)
        if self._results is not None and not self._results.closed:
            self._end()  # cancelled before it ran, or _end() itself failed

    async def _join_runner(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the trainable's thread or task to end; True if it did."""
        thread, task = self._thread, self._task
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join, timeout)
            if thread.is_alive():
                return False
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=timeout)
            if not task.done():
                return False
        self._thread = self._task = None
        return True

    # ------------------------------------------------------------ driver requests
    async def next_results(
        self,
        max_results: int,
        acked: int,
        lockstep: bool,
        linger_s: float = 0.0,
        sync_point: tuple[str, float] | None = None,
    ) -> Batch:
        """Wait for results; return up to ``max_results`` of them, in order.

        ``acked`` is how many results the driver has finished deciding on; with
        ``lockstep`` the trainable waits for that acknowledgement after each result.
        ``sync_point`` is the next decision point (see :class:`WorkerSpec`); it takes
        effect before the trainable is released from the current one.
        """
        assert self._results is not None, "start() first"
        items, held_index, ended = await self._results.take(
            max_results, acked, lockstep, linger_s, sync_point
        )
        if ended:
            self._running = False
            self._release()
            return Batch(items, True, self._error, self._error_tb)
        return Batch(items, held_index=held_index)

    async def save(self) -> str | None:
        """Checkpoint a class trainable now (it is waiting in lockstep); return the path."""
        obj = self._trainable_obj
        if obj is None:
            return None
        iteration = self._fields.iteration
        path = os.path.join(self._spec.trial_dir, checkpoint_dir_name(iteration))
        await asyncio.to_thread(save_class_checkpoint, obj, path, iteration=iteration)
        return path

    def request_stop(self) -> None:
        """Ask the trainable to stop, without waiting (never blocks).

        A sync trainable stops in its next ``report()`` (a thread cannot be killed);
        an async one is cancelled at its next ``await``.
        """
        if self._results is not None:
            self._results.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def stop(self, grace_s: float = STOP_GRACE_S, final: bool = False) -> bool:
        """Ask the trainable to stop; True if it ended within ``grace_s`` seconds.

        ``final``: the worker will not run another trial, so a class trainable kept for
        ``reset_config`` is cleaned up too.
        """
        self.request_stop()
        ended = await self._join_runner(grace_s)
        self._running = False
        self._release()
        if final:
            kept, self._kept = self._kept, None
            if kept is not None:
                await asyncio.to_thread(kept.cleanup)
        return ended

    def _release(self) -> None:
        """Unregister the process-wide session and undo log_to_file (idempotent)."""
        if self._dedicated and session._process_backend is self:
            session._set_process_backend(None)
        if self._redirect is not None:
            self._redirect.close()
            self._redirect = None

    async def reset(self, spec: WorkerSpec, parameters: dict[str, Any]) -> dict[str, Any]:
        """Start another trial in this worker (``reuse_actors``)."""
        return await self.start(spec, parameters)
