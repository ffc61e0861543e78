"""The Ray executor: each trial runs in a Ray actor. The only module that imports ``ray``.

Every await of a Ray call goes through :func:`_await`, which cancels the Ray task when
the await is cancelled and translates Ray's errors into atune's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Any

import anyio
import ray
import ray.cloudpickle
from ray.exceptions import RayActorError, RayError, RaySystemError, RayTaskError

from atune._executor import _serialization
from atune._executor._worker import STOP_GRACE_S, Batch, TrialWorker, WorkerSpec
from atune.errors import AtuneError, SerializationError, TrialWorkerDiedError

__all__ = ["RayExecutor"]

log = logging.getLogger(__name__)

#: Concurrent calls into one trial actor: next_results, stop and save may overlap.
_ACTOR_MAX_CONCURRENCY = 8
#: Extra time for a graceful stop call to come back, beyond the worker's own grace.
_STOP_CALL_SLACK_S = 3.0


def _drop_sigterm_warning(record: logging.LogRecord) -> bool:
    return "SIGTERM handler is not set" not in record.getMessage()


class _TrialActor:
    """The Ray actor class wrapping a :class:`TrialWorker` (runs in the worker process)."""

    def __init__(self) -> None:
        self._worker = TrialWorker(node_ip=ray.util.get_node_ip_address())

    async def start(self, spec: WorkerSpec, parameters: dict[str, Any]) -> dict[str, Any]:
        return await self._worker.start(spec, parameters or {})

    async def next_results(
        self,
        max_results: int,
        acked: int,
        lockstep: bool,
        linger_s: float,
        sync_point: tuple[str, float] | None,
    ) -> Batch:
        return await self._worker.next_results(max_results, acked, lockstep, linger_s, sync_point)

    async def save(self) -> str | None:
        return await self._worker.save()

    async def stop(self, final: bool) -> bool:
        return await self._worker.stop(STOP_GRACE_S, final)

    async def reset(self, spec: WorkerSpec, parameters: dict[str, Any]) -> dict[str, Any]:
        return await self._worker.reset(spec, parameters or {})


_RemoteTrialActor = ray.remote(_TrialActor)


async def _await(ref: Any, what: str) -> Any:
    """Await a Ray call; map Ray errors to atune's, cancel the task if we are cancelled."""
    try:
        return await ref
    except asyncio.CancelledError:
        try:
            ray.cancel(ref)
        except Exception:  # the task may be finished or not cancellable; nothing to undo
            pass
        raise
    except RayActorError as exc:
        raise TrialWorkerDiedError(
            f"the worker process of {what} died (killed, out of memory, or its node failed): {exc}"
        ) from exc
    except (RayTaskError, RaySystemError) as exc:
        cause = getattr(exc, "cause", None)
        cause = cause if isinstance(cause, BaseException) else exc
        missing = _missing_module(cause)
        if missing is not None:
            raise SerializationError(
                f"the worker of {what} cannot import module {missing!r}, which the "
                "trainable (or its config) comes from. Ray workers import your code by "
                "module name: install it (pip install -e .), make it importable on the "
                "workers, e.g. ray.init(runtime_env={'env_vars': {'PYTHONPATH': ...}}), or "
                "define the trainable in the script you run."
            ) from exc
        raise AtuneError(f"internal error in the worker of {what}: {cause!r}") from exc


def _missing_module(exc: BaseException) -> str | None:
    """The module name of a ModuleNotFoundError behind a Ray deserialisation failure."""
    for err in (getattr(exc, "args", ()) or ()) + (exc.__cause__,):
        if isinstance(err, ModuleNotFoundError):
            return err.name
    match = re.search(r"No module named '([^']+)'", str(exc))
    return match.group(1) if match else None


class RayTrialHandle:
    """The driver's end of one trial actor."""

    def __init__(self, actor: Any, resources: dict[str, float], name: str) -> None:
        self._actor = actor
        self.resources = resources
        self.info: dict[str, Any] = {}
        self.name = name

    async def next_results(
        self,
        max_results: int,
        acked: int,
        lockstep: bool,
        linger_s: float = 0.0,
        sync_point: tuple[str, float] | None = None,
    ) -> Batch:
        ref = self._actor.next_results.remote(max_results, acked, lockstep, linger_s, sync_point)
        return await _await(ref, self.name)

    async def save(self) -> str | None:
        return await _await(self._actor.save.remote(), self.name)

    async def stop(self, final: bool = False) -> bool:
        """Ask the trainable to stop; False if it did not end in time or the actor died."""
        try:
            with anyio.fail_after(STOP_GRACE_S + _STOP_CALL_SLACK_S):
                return bool(await _await(self._actor.stop.remote(final), self.name))
        except (TimeoutError, AtuneError):
            return False

    async def reset(self, spec: WorkerSpec, parameters: Any) -> None:
        self.name = spec.trial_name
        ref = await anyio.to_thread.run_sync(lambda: self._actor.reset.remote(spec, parameters))
        self.info = await _await(ref, self.name)

    def kill(self) -> None:
        try:
            ray.kill(self._actor, no_restart=True)
        except (RayError, ValueError):  # already dead
            pass


class RayExecutor:
    """Runs trials as Ray actors, starting a local Ray when none is running.

    Args:
        address: Ray cluster address; None uses ``RAY_ADDRESS`` or starts a local Ray.
        init_kwargs: Extra keyword arguments for ``ray.init`` when atune starts Ray.
    """

    def __init__(self, address: str | None = None, **init_kwargs: Any) -> None:
        self._address = address
        self._init_kwargs = init_kwargs
        self._total: dict[str, float] = {}
        self._handles: set[RayTrialHandle] = set()
        self.started_ray = False

    async def start(self) -> None:
        if not ray.is_initialized():
            if os.environ.get("TUNE_DISABLE_AUTO_INIT") == "1":
                raise AtuneError(
                    "Ray is not running and TUNE_DISABLE_AUTO_INIT=1: call ray.init() "
                    "before fit(), or unset the variable"
                )
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "ignore_reinit_error": True,
                "logging_level": logging.WARNING,
                "configure_logging": False,
                **self._init_kwargs,
            }
            if self._address is not None:
                kwargs["address"] = self._address
            # ray.init runs on a worker thread so the event loop stays free; Ray then
            # leaves the process's SIGTERM handling alone (what a host application
            # wants) and warns about it, which is noise here.
            ray_logger = logging.getLogger("ray._private.worker")
            ray_logger.addFilter(_drop_sigterm_warning)
            try:
                await anyio.to_thread.run_sync(lambda: ray.init(**kwargs))
            finally:
                ray_logger.removeFilter(_drop_sigterm_warning)
            self.started_ray = True
        self._total = await anyio.to_thread.run_sync(ray.cluster_resources)

    def total_resources(self) -> dict[str, float]:
        return dict(self._total)

    async def put(self, parameters: dict[str, Any]) -> Any:
        if not parameters:
            return None
        return await anyio.to_thread.run_sync(ray.put, parameters)

    async def launch(
        self, spec: WorkerSpec, resources: dict[str, float], parameters: Any
    ) -> RayTrialHandle:
        custom = {k: v for k, v in resources.items() if k not in ("CPU", "GPU", "memory")}
        options: dict[str, Any] = {
            "num_cpus": resources.get("CPU", 0.0),
            "num_gpus": resources.get("GPU", 0.0),
            "max_concurrency": _ACTOR_MAX_CONCURRENCY,
            "max_restarts": 0,
        }
        if resources.get("memory"):
            options["memory"] = resources["memory"]
        if custom:
            options["resources"] = custom

        def _submit() -> tuple[Any, Any]:
            # Creating the first actor exports its class (~100 ms) and submitting
            # start() pickles the trainable: both happen off the event loop.
            actor: Any = _RemoteTrialActor.options(**options).remote()
            return actor, actor.start.remote(spec, parameters)

        actor, started = await anyio.to_thread.run_sync(_submit)
        handle = RayTrialHandle(actor, resources, spec.trial_name)
        self._handles.add(handle)
        try:
            handle.info = await _await(started, spec.trial_name)
        except BaseException:
            self.release(handle)
            raise
        return handle

    def release(self, handle: RayTrialHandle) -> None:
        """Kill a worker and forget it."""
        handle.kill()
        self._handles.discard(handle)

    def check_serializable(self, obj: Any, what: str) -> None:
        _serialization.check_serializable(obj, what, ray.cloudpickle.dumps)

    async def aclose(self) -> None:
        for handle in list(self._handles):
            self.release(handle)
