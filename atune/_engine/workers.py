"""Workers kept between trials (``reuse_actors``), and how a trial gets one."""

from __future__ import annotations

import time
from typing import Any

from atune._engine.spec import IDLE_WORKER_S
from atune._executor._base import Executor, TrialHandle, WorkerSpec
from atune.errors import AtuneError

__all__ = ["WorkerPool"]


class WorkerPool:
    """Launches workers through the executor and keeps idle ones for reuse.

    An idle worker still holds its resources in the cluster. The experiment's own
    launches never wait for them: the pool frees every idle worker before it launches
    one, and a launch under way was counted against resources free without the idle
    ones. Another experiment on the cluster (or a trial's own Ray tasks) may wait for
    them, though, so workers no trial took within
    :data:`~atune._engine.spec.IDLE_WORKER_S` are ended (:meth:`end_stale`).
    """

    def __init__(self, executor: Executor, class_trainable: bool) -> None:
        self.executor = executor
        self._class = class_trainable
        #: Idle workers, oldest first, and when each was given back (time.monotonic()).
        self._idle: dict[TrialHandle, float] = {}
        self.parameters: Any = None  # what executor.put returned for with_parameters

    async def acquire(self, spec: WorkerSpec, resources: dict[str, float]) -> TrialHandle:
        shape = spec.placement.key() if spec.placement is not None else None
        matching = [
            w
            for w in self._idle
            if w.resources == resources and getattr(w, "placement", None) == shape
        ]
        if matching:
            # The trial's own previous worker first: it keeps the trial's Trainable.
            idle = min(matching, key=lambda w: w.name != spec.trial_name)
            del self._idle[idle]
            try:
                await idle.reset(spec, self.parameters)
                return idle
            except AtuneError:
                self.executor.release(idle)
        await self.drain()
        return await self.executor.launch(spec, resources, self.parameters)

    def give_back(self, handle: TrialHandle) -> None:
        """Keep a worker whose trial ended, for the next trial that fits it."""
        self._idle[handle] = time.monotonic()

    @property
    def has_idle(self) -> bool:
        return bool(self._idle)

    async def end_stale(self) -> None:
        """End the workers idle for :data:`IDLE_WORKER_S` or longer."""
        now = time.monotonic()
        for handle in [h for h, since in self._idle.items() if now - since >= IDLE_WORKER_S]:
            del self._idle[handle]
            await self.retire(handle, graceful=True)

    async def retire(self, handle: TrialHandle, *, graceful: bool) -> None:
        """End a worker; first let a class trainable kept for reuse run cleanup()."""
        if graceful and self._class:
            await handle.stop(final=True)
        self.executor.release(handle)

    def discard(self, handle: TrialHandle | None) -> None:
        if handle is not None:
            self.executor.release(handle)

    async def drain(self, *, graceful: bool = True) -> None:
        """End every idle worker (``graceful``: run cleanup() of kept trainables)."""
        idle, self._idle = list(self._idle), {}
        for handle in idle:
            if graceful:
                await handle.stop(final=True)
            self.executor.release(handle)
