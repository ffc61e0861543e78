"""The worker side of a trial: runs one trainable and buffers its results.

A :class:`TrialWorker` lives in a worker process (a Ray actor, see ``_ray.py``). It
runs the trainable on a thread (sync functions and classes) or on the worker's event
loop (``async def`` trainables). Every ``report()`` fills in the automatic result
fields and appends to a bounded buffer; ``report()`` blocks only while the buffer is
full. The driver keeps one ``next_results`` call outstanding, which returns as soon
as results are buffered, all of them up to ``max_results`` at once.

With ``lockstep`` on, the trainable waits after each result until the driver has
acknowledged (decided on) it: the sync point schedulers use to act at an exact
iteration. This module must not import ``ray``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import pickle
import shutil
import socket
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from atune import session
from atune.checkpoint import Checkpoint
from atune.errors import TrialError
from atune.session import TuneContext, _Awaitable, _SessionBackend
from atune.trainable.util import TrainableInfo

__all__ = ["Batch", "TrialStopped", "TrialWorker", "WorkerSpec"]

#: Waiting for the trainable to notice a stop request and return, before the
#: worker gives up on it (the driver then kills the process).
STOP_GRACE_S = 2.0

_DICT_CHECKPOINT_FILE = "_dict_checkpoint.pkl"
_CHECKPOINT_META_FILE = ".atune_checkpoint.json"


class TrialStopped(BaseException):
    """Raised inside ``report()`` once the driver stopped the trial.

    A ``BaseException`` so that ``except Exception`` in user code does not swallow it.
    """


@dataclass
class WorkerSpec:
    """Everything a worker needs to run one trial (sent once per trial start)."""

    trial_id: str
    trial_name: str
    experiment_id: str
    experiment_name: str
    trainable: TrainableInfo
    config: dict[str, Any]
    trial_dir: str
    resources: dict[str, float] = field(default_factory=dict)
    restore_path: str | None = None
    start_iteration: int = 0
    start_time_total: float = 0.0
    buffer_size: int = 1024
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool = False
    log_to_file: bool | str | tuple[str, str] = False
    chdir: bool = True
    #: Start in lockstep (the driver decides on each result before the next one).
    lockstep: bool = False
    #: First decision point, ``(result field, value)``: the trainable waits after the
    #: first result whose field reaches the value until the driver decided on it.
    sync_point: tuple[str, float] | None = None
    #: Keep a class trainable alive after the trial for reset_config() (reuse_actors).
    keep_for_reuse: bool = False


@dataclass
class Batch:
    """Results collected since the last call, in order, plus how the trial ended.

    ``results`` holds ``(result, checkpoint_path)`` pairs. ``finished`` is True once the
    trainable ended and every result was handed out; then ``error`` (the trainable's
    exception) and ``error_traceback`` tell whether it failed.
    """

    results: list[tuple[dict[str, Any], str | None]]
    finished: bool = False
    error: BaseException | None = None
    error_traceback: str = ""
    #: Index in ``results`` of the result the trainable is waiting at (a decision
    #: point, or the last one in lockstep), or None when it is not waiting.
    held_index: int | None = None


def _transportable(exc: BaseException, tb: str) -> BaseException:
    """The exception itself when it survives pickling; a TrialError stand-in otherwise."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        try:
            import cloudpickle  # ray's dependency; pickles classes defined in __main__

            cloudpickle.loads(cloudpickle.dumps(exc))
            return exc
        except Exception:
            return TrialError(
                f"{type(exc).__name__}: {exc}", exc_type=type(exc).__name__, traceback=tb
            )


def save_class_checkpoint(trainable: Any, target: str, *, iteration: int) -> None:
    """Save a class trainable into directory ``target``."""
    os.makedirs(target, exist_ok=True)
    state = trainable.save_checkpoint(target)
    if isinstance(state, dict):
        with open(os.path.join(target, _DICT_CHECKPOINT_FILE), "wb") as f:
            pickle.dump(state, f)
    with open(os.path.join(target, _CHECKPOINT_META_FILE), "w") as f:
        json.dump({"iteration": iteration}, f)


def load_class_checkpoint(trainable: Any, path: str) -> int:
    """Restore a class trainable from ``path``; returns the checkpoint's iteration."""
    dict_file = os.path.join(path, _DICT_CHECKPOINT_FILE)
    if os.path.exists(dict_file):
        with open(dict_file, "rb") as f:
            trainable.load_checkpoint(pickle.load(f))
    else:
        trainable.load_checkpoint(path)
    try:
        with open(os.path.join(path, _CHECKPOINT_META_FILE)) as f:
            return int(json.load(f)["iteration"])
    except (OSError, ValueError, KeyError):
        return 0


class TrialWorker(_SessionBackend):
    """Runs one trainable at a time; reusable for the next trial (``reuse_actors``)."""

    def __init__(self, node_ip: str = "127.0.0.1") -> None:
        self._node_ip = node_ip
        self._hostname = socket.gethostname()
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._buffer: deque[tuple[dict[str, Any], str | None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ended: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._trainable_obj: Any = None
        # A finished class trainable kept for the next trial (reuse_actors).
        self._kept: Any = None
        self._redirect: contextlib.ExitStack | None = None
        self._running = False
        self._loop_tid: int | None = None
        # Set (under _cond) while next_results waits, so that a report only pays for a
        # cross-thread wake-up when the driver is actually waiting.
        self._driver_waiting = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self, spec: WorkerSpec, parameters: dict[str, Any]) -> dict[str, Any]:
        """Start running the trainable of ``spec``; returns facts about this worker."""
        if self._running:
            raise RuntimeError("worker is still running a trial")
        self._reset_state(spec)
        self._loop = asyncio.get_running_loop()
        self._loop_tid = threading.get_ident()
        self._wake = asyncio.Event()
        self._ended = asyncio.Event()
        os.makedirs(spec.trial_dir, exist_ok=True)
        if spec.chdir:
            os.chdir(spec.trial_dir)
        self._redirect = _redirect_output(spec)
        self.context = TuneContext(
            trial_id=spec.trial_id,
            trial_name=spec.trial_name,
            trial_dir=spec.trial_dir,
            experiment_name=spec.experiment_name,
            trial_resources=dict(spec.resources),
        )
        self.checkpoint = Checkpoint(spec.restore_path) if spec.restore_path else None
        session._install(self)
        self._running = True
        kind = spec.trainable.kind
        self._async_mode = kind == "async"
        if self._async_mode:
            # The worker process is the owner of this task: it lives as long as the trial
            # and is cancelled by stop().
            self._task = self._loop.create_task(self._run_async(spec, parameters))
        else:
            thread = threading.Thread(
                target=self._run_thread,
                args=(spec, parameters),
                name="atune-trainable",
                daemon=True,
            )
            thread.start()
        return {"pid": self._pid, "hostname": self._hostname, "node_ip": self._node_ip}

    def _reset_state(self, spec: WorkerSpec) -> None:
        self._spec = spec
        self._buffer.clear()
        self._produced = 0
        self._acked = 0
        self._lockstep = spec.lockstep
        self._sync_point = spec.sync_point
        # Results up to this count must be acknowledged before the trainable goes on.
        self._hold_until = 0
        self._handed_out = 0  # results returned by next_results so far
        self._stop_requested = False
        self._finished = False
        self._error: BaseException | None = None
        self._error_tb = ""
        self._iteration = spec.start_iteration
        self._iters_since_restore = 0
        self._time_total = spec.start_time_total
        self._time_since_restore = 0.0
        self._timesteps_total: float | None = None
        self._last_mark = time.monotonic()

    # ----------------------------------------------------------------- reporting
    def _fill(self, metrics: dict[str, Any]) -> dict[str, Any]:
        now_mono = time.monotonic()
        result = dict(metrics)
        elapsed = result.get("time_this_iter_s")
        if not isinstance(elapsed, (int, float)):
            elapsed = now_mono - self._last_mark
            result["time_this_iter_s"] = elapsed
        self._iteration += 1
        self._iters_since_restore += 1
        self._time_total += elapsed
        self._time_since_restore += elapsed
        now = time.time()
        steps = result.get("timesteps_this_iter")
        if isinstance(steps, (int, float)) and "timesteps_total" not in result:
            self._timesteps_total = (self._timesteps_total or 0) + steps
            result["timesteps_total"] = self._timesteps_total
        result.setdefault("done", False)
        result.update(
            training_iteration=self._iteration,
            time_total_s=self._time_total,
            timestamp=int(now),
            date=datetime.datetime.fromtimestamp(now).strftime("%Y-%m-%d_%H-%M-%S"),
            trial_id=self._spec.trial_id,
            experiment_id=self._spec.experiment_id,
            pid=self._pid,
            hostname=self._hostname,
            node_ip=self._node_ip,
            iterations_since_restore=self._iters_since_restore,
            time_since_restore=self._time_since_restore,
        )
        return result

    def _persist(self, checkpoint: Checkpoint | str | None) -> str | None:
        """Copy a reported checkpoint directory into the trial dir; return the copy's path."""
        if checkpoint is None:
            return None
        source = os.fspath(checkpoint)
        target = os.path.join(self._spec.trial_dir, f"checkpoint_{self._iteration:06d}")
        if os.path.abspath(source) != os.path.abspath(target):
            if os.path.exists(target):
                shutil.rmtree(target)
            shutil.copytree(source, target)
        return target

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> _Awaitable:
        if self._async_mode and threading.get_ident() == self._loop_thread_id():
            return self._report_async(metrics, checkpoint)
        self._put(metrics, checkpoint)
        return session._DONE

    def _loop_thread_id(self) -> int | None:
        return self._loop_tid

    def _put(self, metrics: dict[str, Any], checkpoint: Checkpoint | str | None) -> None:
        """Buffer one result from the trainable thread; blocks while the buffer is full."""
        spec = self._spec
        with self._cond:
            while len(self._buffer) >= spec.buffer_size and not self._stop_requested:
                self._cond.wait()
            if self._stop_requested:
                raise TrialStopped()
        item = self._fill(metrics), self._persist(checkpoint)
        with self._cond:
            self._append(item)
            while self._must_wait() and not self._stop_requested:
                self._cond.wait()
            if self._stop_requested and self._acked < self._produced:
                raise TrialStopped()
        self._last_mark = time.monotonic()

    def _append(self, item: tuple[dict[str, Any], str | None]) -> None:
        """Buffer one filled-in result and wake the driver; call with _cond held."""
        self._buffer.append(item)
        self._produced += 1
        point = self._sync_point
        if point is not None:
            value = item[0].get(point[0])
            if isinstance(value, (int, float)) and value >= point[1]:
                self._hold_until = self._produced
                self._sync_point = None  # the driver sends the next one with its ack
        self._notify_driver()

    def _must_wait(self) -> bool:
        """True while the last result needs a decision first (lockstep or sync point)."""
        if self._lockstep:
            return self._acked < self._produced
        return self._acked < self._hold_until

    def _notify_driver(self) -> None:
        """Wake a waiting next_results; call with _cond held."""
        if not self._driver_waiting:
            return
        self._driver_waiting = False
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            if threading.get_ident() == self._loop_thread_id():
                wake.set()
            else:
                loop.call_soon_threadsafe(wake.set)

    def _report_async(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> _Awaitable:
        if self._stop_requested:
            raise TrialStopped()
        if len(self._buffer) >= 2 * self._spec.buffer_size:
            raise RuntimeError(
                "results pile up in an async trainable: use `await atune.report(...)` so "
                "the trainable waits while the result buffer is full"
            )
        item = self._fill(metrics), self._persist(checkpoint)
        with self._cond:
            self._append(item)
        return _Awaitable(self._wait_for_room)

    async def _wait_for_room(self) -> None:
        while not self._stop_requested and (
            len(self._buffer) >= self._spec.buffer_size or self._must_wait()
        ):
            self._room = asyncio.Event()
            await self._room.wait()
        if self._stop_requested:
            raise TrialStopped()
        self._last_mark = time.monotonic()

    def _room_freed(self) -> None:
        room = getattr(self, "_room", None)
        if room is not None:
            room.set()

    # ------------------------------------------------------------------- running
    def _run_thread(self, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
        try:
            if spec.trainable.kind == "class":
                self._run_class(spec, parameters)
            else:
                self._run_function(spec, parameters)
        except TrialStopped:
            pass
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end()

    def _run_function(self, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
        fn = spec.trainable.trainable
        config = spec.config
        if spec.trainable.kind == "reporter":
            out = fn(config, _LegacyReporter(self), **parameters)
        elif spec.trainable.kind == "generator":
            out = None
            for item in fn(config, **parameters):
                if item is not None:
                    self._put(dict(item), None)
        else:
            out = fn(config, **parameters)
        self._final(out)

    def _final(self, out: Any) -> None:
        if isinstance(out, dict):
            final = dict(out)
            final.setdefault("done", True)
            self._put(final, None)
        elif out is not None:
            raise TypeError(
                f"a trainable function may return a dict of final metrics or None, "
                f"got {type(out).__name__}"
            )

    def _run_class(self, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
        cls = spec.trainable.trainable
        obj = self._reusable_instance(spec) or cls(spec.config, **parameters)
        self._trainable_obj = obj
        clean_exit = False
        try:
            if spec.restore_path:
                load_class_checkpoint(obj, spec.restore_path)
            freq = spec.checkpoint_frequency
            while not self._stop_requested:
                result = obj.step()
                if not isinstance(result, dict):
                    raise TypeError(
                        f"{cls.__name__}.step() must return a dict of metrics, "
                        f"got {type(result).__name__}"
                    )
                result = dict(result)
                wanted = bool(result.pop("should_checkpoint", False))
                next_iter = self._iteration + 1
                done = bool(result.get("done"))
                path = None
                if wanted or (freq and next_iter % freq == 0) or (done and spec.checkpoint_at_end):
                    path = os.path.join(spec.trial_dir, f"checkpoint_{next_iter:06d}")
                    save_class_checkpoint(obj, path, iteration=next_iter)
                self._put(result, path)
                obj.log_result(result)
                if done:
                    break
            clean_exit = True
        except TrialStopped:
            clean_exit = True
            raise
        finally:
            self._trainable_obj = None
            if clean_exit and spec.keep_for_reuse:
                self._kept = obj  # reset_config() may give it the next trial
            else:
                obj.cleanup()

    def _reusable_instance(self, spec: WorkerSpec) -> Any:
        """The previous trial's Trainable, switched to this trial by reset_config()."""
        obj, self._kept = self._kept, None
        if obj is None:
            return None
        if type(obj) is spec.trainable.trainable and obj.reset_config(dict(spec.config)):
            obj.config = dict(spec.config)
            obj.trial_id, obj.trial_name, obj.logdir = (
                spec.trial_id,
                spec.trial_name,
                spec.trial_dir,
            )
            if dict(spec.resources) != obj.trial_resources:
                obj.trial_resources = dict(spec.resources)
                obj.update_resources(dict(spec.resources))
            obj._iteration, obj._time_total = 0, 0.0
            return obj
        obj.cleanup()
        return None

    async def _run_async(self, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
        try:
            out = await spec.trainable.trainable(spec.config, **parameters)
            if isinstance(out, dict):
                final = dict(out)
                final.setdefault("done", True)
                await self._report_async(final, None)
            elif out is not None:
                raise TypeError(
                    f"an async trainable may return a dict of final metrics or None, "
                    f"got {type(out).__name__}"
                )
        except (TrialStopped, asyncio.CancelledError):
            pass
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end()

    def _fail(self, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._error = _transportable(exc, tb)
        self._error_tb = tb

    def _end(self) -> None:
        with self._cond:
            self._finished = True
            self._driver_waiting = False
            self._cond.notify_all()
        loop, ended = self._loop, self._ended
        if loop is not None and ended is not None:

            def _set() -> None:
                ended.set()
                if self._wake is not None:
                    self._wake.set()

            if threading.get_ident() == self._loop_thread_id():
                _set()
            else:
                loop.call_soon_threadsafe(_set)

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
        assert self._wake is not None
        with self._cond:
            if acked >= self._hold_until and sync_point is not None:
                self._sync_point = sync_point
            self._acked = max(self._acked, acked)
            self._lockstep = lockstep
            self._cond.notify_all()
        self._room_freed()
        while True:
            with self._cond:
                if self._buffer or self._finished:
                    self._driver_waiting = False
                    break
                self._wake.clear()
                self._driver_waiting = True
            await self._wake.wait()
        if linger_s > 0 and not self._finished and len(self._buffer) < max_results:
            await asyncio.sleep(linger_s)
        with self._cond:
            n = min(max_results, len(self._buffer))
            items = [self._buffer.popleft() for _ in range(n)]
            first, self._handed_out = self._handed_out, self._handed_out + n
            held = self._produced if self._lockstep else self._hold_until
            held_index = held - first - 1 if first < held <= first + n else None
            finished = self._finished and not self._buffer
            self._cond.notify_all()
        self._room_freed()
        if finished:
            self._running = False
            self._release()
            return Batch(items, True, self._error, self._error_tb)
        return Batch(items, held_index=held_index)

    async def save(self) -> str | None:
        """Checkpoint a class trainable now (it is waiting in lockstep); return the path."""
        obj = self._trainable_obj
        if obj is None:
            return None
        path = os.path.join(self._spec.trial_dir, f"checkpoint_{self._iteration:06d}")
        await asyncio.to_thread(save_class_checkpoint, obj, path, iteration=self._iteration)
        return path

    async def stop(self, grace_s: float = STOP_GRACE_S, final: bool = False) -> bool:
        """Ask the trainable to stop; True if it ended within ``grace_s`` seconds.

        ``final``: the worker will not run another trial, so a class trainable kept for
        ``reset_config`` is cleaned up too.
        """
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()
        self._room_freed()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        ended = True
        if self._ended is not None and self._running:
            try:
                await asyncio.wait_for(self._ended.wait(), grace_s)
            except asyncio.TimeoutError:
                ended = False
        self._running = False
        self._release()
        if final:
            kept, self._kept = self._kept, None
            if kept is not None:
                await asyncio.to_thread(kept.cleanup)
        return ended

    def _release(self) -> None:
        """Uninstall the session and undo log_to_file (idempotent)."""
        if session._backend is self:
            session._install(None)
        if self._redirect is not None:
            self._redirect.close()
            self._redirect = None

    async def reset(self, spec: WorkerSpec, parameters: dict[str, Any]) -> dict[str, Any]:
        """Start another trial in this worker (``reuse_actors``)."""
        return await self.start(spec, parameters)

    def ping(self) -> bool:
        return True


class _LegacyReporter:
    """The 0.7 ``reporter(**metrics)`` callable."""

    def __init__(self, worker: TrialWorker) -> None:
        self._worker = worker

    def __call__(self, **metrics: Any) -> None:
        self._worker._put(metrics, None)


def _redirect_output(spec: WorkerSpec) -> contextlib.ExitStack | None:
    """Send the trial's stdout/stderr to files in the trial dir (``log_to_file``)."""
    option = spec.log_to_file
    if not option:
        return None
    if option is True:
        names: tuple[str, str] = ("stdout", "stderr")
    elif isinstance(option, str):
        names = (option, option)
    else:
        assert isinstance(option, (tuple, list))
        names = (option[0], option[1])
    stack = contextlib.ExitStack()
    paths = [n if os.path.isabs(n) else os.path.join(spec.trial_dir, n) for n in names]
    # The ExitStack owns (and closes) both files.
    out = stack.enter_context(open(paths[0], "a", buffering=1))  # noqa: SIM115
    err = (
        out if paths[1] == paths[0] else stack.enter_context(open(paths[1], "a", buffering=1))  # noqa: SIM115
    )
    stack.enter_context(contextlib.redirect_stdout(out))
    stack.enter_context(contextlib.redirect_stderr(err))
    saved = (os.dup(1), os.dup(2))
    sys.stdout.flush()
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)

    def _restore() -> None:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])

    stack.callback(_restore)
    return stack
