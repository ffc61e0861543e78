"""The local executor: every trial runs in the driver's own process. Never imports ``ray``.

Each trial gets a :class:`~atune._executor._worker.TrialWorker`, the same one a Ray
actor wraps: sync trainables (functions and classes) run on a thread each, ``async
def`` trainables as tasks on the event loop that runs ``fit()``. Results, stops,
checkpoints, schedulers and searchers behave as on Ray; what a shared process cannot
give is listed in ``docs/executors.md``:

- no process isolation: trials share the working directory (never changed: the
  trial directory is ``atune.get_context().get_trial_dir()``), stdout/stderr
  (``log_to_file`` is ignored), module globals and ``with_parameters`` objects
  (passed by reference, not copied); a trainable that calls ``os._exit`` ends the
  driver;
- no GPU placement: ``GPU`` is only a number the scheduler counts;
- no killing: a stopped trainable ends at its next ``report()`` (an async one at its
  next ``await``). One that never reports runs on in its thread until it returns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import anyio

from atune._executor._base import TrialHandle, WorkerExecutor, WorkerHandle, WorkerSpec
from atune._executor._worker import STOP_GRACE_S, TrialWorker
from atune.errors import AtuneError, ConfigError

__all__ = ["LocalExecutor", "LocalTrialHandle"]

log = logging.getLogger("atune")

#: What the local executor already warned about in this process (each warning once).
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def _chdir_requested() -> bool:
    """True when the environment explicitly asks for a chdir into the trial dir."""
    value = os.environ.get("ATUNE_CHDIR_TO_TRIAL_DIR", os.environ.get("RAY_CHDIR_TO_TRIAL_DIR"))
    return value not in (None, "0")


class LocalTrialHandle(WorkerHandle["LocalExecutor"]):
    """The driver's end of one in-process worker."""

    def __init__(
        self,
        worker: TrialWorker,
        resources: dict[str, float],
        name: str,
        executor: LocalExecutor,
    ) -> None:
        super().__init__(resources, name, executor)
        self.worker = worker

    async def _call(self, request: Any) -> Any:
        """Await a worker request; its own failure is an AtuneError, as on Ray."""
        try:
            return await request
        except AtuneError:
            raise
        except Exception as exc:
            raise AtuneError(f"internal error in the worker of {self.name}: {exc!r}") from exc

    async def _request(self, method: str, *args: Any) -> Any:
        return await self._call(getattr(self.worker, method)(*args))

    async def stop(self, final: bool = False) -> bool:
        """Ask the trainable to stop; False if it did not end within the grace period."""
        try:
            ended = await self.worker.stop(STOP_GRACE_S, final)
        except Exception:
            log.warning("Trial %s: stopping its trainable failed", self.name, exc_info=True)
            return False
        if not ended:
            log.warning(
                "Trial %s did not stop within %.0f s. The local executor cannot kill its "
                "thread: it stops at its next report(), or runs on until it returns.",
                self.name,
                STOP_GRACE_S,
            )
        return ended

    async def reset(self, spec: WorkerSpec, parameters: Any) -> None:
        self.name = spec.trial_name
        local_spec = self._executor._in_process(spec)
        self.info = await self._call(self.worker.reset(local_spec, parameters or {}))

    def kill(self) -> None:
        """Ask the trainable to stop; the executor awaits its end when it closes."""
        self.worker.request_stop()


class LocalExecutor(WorkerExecutor):
    """Runs every trial in this process: on a thread, or on this event loop if async.

    Select it with ``TuneConfig(executor="local")``, or pass an instance to set the
    resources: ``TuneConfig(executor=LocalExecutor({"CPU": 8, "GPU": 1}))``. It never
    imports or starts Ray; see ``docs/executors.md`` for what it gives up. An instance
    serves one ``fit()`` at a time: when it ends, every trial it started is stopped.

    Args:
        resources: Total resources the trials share, as for ``with_resources``
            (``{"cpu": 8, "gpu": 1, "my_resource": 2}``). Default:
            ``{"CPU": os.cpu_count(), "GPU": 0}``; a key not given keeps its default.
    """

    _handle_type = LocalTrialHandle

    def __init__(self, resources: Mapping[str, float] | None = None) -> None:
        from atune.trainable.util import normalize_resources

        total = {"CPU": float(os.cpu_count() or 1), "GPU": 0.0}
        if resources is not None:
            given = normalize_resources(resources)
            if not any(k in ("cpu", "CPU", "extra_cpu") for k in resources):
                given.pop("CPU", None)
            total.update(given)
        super().__init__(total)
        # Released workers whose trainable may still be on its way out.
        self._stopping: set[LocalTrialHandle] = set()

    async def start(self) -> None:
        """Nothing to connect to."""

    def more_resources_hint(self) -> str:
        """The trials share what the constructor was given: more takes a new executor."""
        return (
            "give the local executor more (numbers it counts, nothing is reserved), e.g. "
            'TuneConfig(executor=LocalExecutor({"CPU": 8, "GPU": 1})) with `from '
            'atune.executors import LocalExecutor`; executor="local" has {"CPU": '
            'os.cpu_count(), "GPU": 0}'
        )

    async def put(self, parameters: dict[str, Any]) -> Any:
        """``with_parameters`` values are shared by reference: nothing is copied."""
        return parameters or None

    def _in_process(self, spec: WorkerSpec) -> WorkerSpec:
        """``spec`` without what would change process-wide state (warned about once)."""
        if spec.chdir and _chdir_requested():
            _warn_once(
                "chdir",
                "The local executor does not change the working directory (trials share "
                "this process): ATUNE_CHDIR_TO_TRIAL_DIR / RAY_CHDIR_TO_TRIAL_DIR is "
                "ignored. A trainable finds its directory with "
                "atune.get_context().get_trial_dir().",
            )
        if spec.log_to_file:
            _warn_once(
                "log_to_file",
                "RunConfig(log_to_file=...) is ignored by the local executor: trials share "
                "this process's stdout and stderr, which it does not redirect.",
            )
        return dataclasses.replace(spec, chdir=False, log_to_file=False)

    async def launch(
        self, spec: WorkerSpec, resources: dict[str, float], parameters: Any
    ) -> LocalTrialHandle:
        if spec.placement is not None:
            raise ConfigError(
                f"trial {spec.trial_name} asks for a PlacementGroupFactory, which needs Ray: "
                "use the default executor (TuneConfig(executor='ray'))"
            )
        # The exception object itself reaches the driver: nothing to pickle.
        worker = TrialWorker(pickle_errors=False)
        handle = LocalTrialHandle(worker, resources, spec.trial_name, self)
        local_spec = self._in_process(spec)
        return await self._track(handle, handle._call(worker.start(local_spec, parameters or {})))

    def release(self, handle: TrialHandle) -> None:
        """Ask the trainable to stop and forget the worker; :meth:`aclose` awaits its end."""
        super().release(handle)
        assert isinstance(handle, LocalTrialHandle)  # checked by super().release
        self._stopping = {h for h in self._stopping if h.worker.alive}
        if handle.worker.alive:
            self._stopping.add(handle)

    async def watch(self) -> None:
        """There is no cluster to lose: wait forever."""
        await anyio.sleep_forever()

    def check_serializable(self, obj: Any, what: str) -> None:
        """Nothing is sent anywhere, so everything qualifies (see ``docs/executors.md``)."""

    async def aclose(self) -> None:
        """Stop every trainable still running and wait for it (up to the grace period)."""
        for handle in list(self._handles):
            self.release(handle)
        stopping, self._stopping = self._stopping, set()
        stuck: list[str] = []

        async def _finish(handle: LocalTrialHandle) -> None:
            try:
                ended = await handle.worker.stop(STOP_GRACE_S, final=True)
            except Exception:
                log.warning("Trial %s: stopping its trainable failed", handle.name, exc_info=True)
                return
            if not ended:
                stuck.append(handle.name)

        async with anyio.create_task_group() as tg:
            for handle in stopping:
                tg.start_soon(_finish, handle)
        if stuck:
            log.warning(
                "%d trials did not stop within %.0f s: %s. The local executor cannot kill "
                "their threads; each ends at its next report(), or when it returns.",
                len(stuck),
                STOP_GRACE_S,
                ", ".join(sorted(stuck)),
            )
