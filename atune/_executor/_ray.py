"""The Ray executor: each trial runs in a Ray actor. The only module that imports ``ray``.

Every await of a Ray call goes through :func:`_await`, which cancels the Ray task when
the await is cancelled and translates Ray's errors into atune's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import anyio
import ray
import ray.cloudpickle
from ray.exceptions import RayActorError, RayError, RaySystemError, RayTaskError
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from atune._executor import _serialization
from atune._executor._base import Batch, WorkerExecutor, WorkerHandle, WorkerSpec
from atune._executor._ray_cluster import ClusterWatch, ensure_ray, shutdown_ray
from atune._executor._worker import STOP_GRACE_S, TrialWorker
from atune.errors import AtuneError, ClusterDiedError, SerializationError, TrialWorkerDiedError

__all__ = ["RayExecutor"]

log = logging.getLogger(__name__)

#: Concurrent calls into one trial actor: next_results, stop and save may overlap.
_ACTOR_MAX_CONCURRENCY = 8
#: Extra time for a graceful stop call to come back, beyond the worker's own grace.
_STOP_CALL_SLACK_S = 3.0
#: True once atune started a Ray in this process (restarted if it dies).
_started_by_atune = False


class _TrialActor:
    """The Ray actor class wrapping a :class:`TrialWorker` (runs in the worker process)."""

    def __init__(self, trainable_name: str = "trial") -> None:
        # The actor's process runs one trial at a time: the worker may own its
        # working directory, its stdout/stderr (log_to_file) and the session.
        self._worker = TrialWorker(node_ip=ray.util.get_node_ip_address(), dedicated_process=True)
        self._name = trainable_name

    def __repr__(self) -> str:
        # Ray prefixes what the trial prints with this: "(train pid=123) ...", as Ray
        # Tune shows the trainable's name.
        return self._name

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


class RayTrialHandle(WorkerHandle["RayExecutor"]):
    """The driver's end of one trial actor."""

    def __init__(
        self, actor: Any, resources: dict[str, float], name: str, executor: RayExecutor
    ) -> None:
        super().__init__(resources, name, executor)
        self._actor = actor
        #: The trial's placement group (a PlacementGroupFactory), removed with the actor.
        self.group: Any = None

    async def _request(self, method: str, *args: Any) -> Any:
        self._executor.check_alive()
        return await _await(getattr(self._actor, method).remote(*args), self.name)

    async def stop(self, final: bool = False) -> bool:
        """Ask the trainable to stop; False if it did not end in time or the actor died."""
        if self._executor.dead is not None:
            return False
        try:
            with anyio.fail_after(STOP_GRACE_S + _STOP_CALL_SLACK_S):
                return bool(await _await(self._actor.stop.remote(final), self.name))
        except (TimeoutError, AtuneError):
            return False

    async def reset(self, spec: WorkerSpec, parameters: Any) -> None:
        self.name = spec.trial_name
        self._executor.check_alive()
        ref = await anyio.to_thread.run_sync(
            lambda: self._actor.reset.remote(spec, parameters), abandon_on_cancel=True
        )
        self.info = await _await(ref, self.name)

    def kill(self) -> None:
        if self._executor.dead is not None:
            return
        try:
            ray.kill(self._actor, no_restart=True)
        except (RayError, ValueError):  # already dead
            pass
        if self.group is not None:
            group, self.group = self.group, None
            _remove_group(group)


def _remove_group(group: Any) -> None:
    """Give a trial's placement group back to the cluster (never blocks for long)."""
    try:
        ray.util.remove_placement_group(group)
    except Exception:  # the cluster is gone, or the group was removed already
        pass


class RayExecutor(WorkerExecutor):
    """Runs trials as Ray actors, starting a local Ray when none is running.

    Args:
        address: Ray cluster address; None uses ``RAY_ADDRESS`` or starts a local Ray.
        init_kwargs: Extra keyword arguments for ``ray.init`` when atune starts Ray.
    """

    _handle_type = RayTrialHandle

    def __init__(self, address: str | None = None, **init_kwargs: Any) -> None:
        self._address = address
        self._init_kwargs = init_kwargs
        super().__init__({})  # the cluster's, once started
        self._watch: ClusterWatch | None = None
        #: Why the cluster is gone, once :meth:`watch` has seen it die.
        self.dead: str | None = None

    async def start(self) -> None:
        global _started_by_atune
        if ray.is_initialized():
            dead = ClusterWatch().exited()
            if dead is not None:
                if not _started_by_atune:
                    raise ClusterDiedError(
                        f"the Ray cluster this process is connected to is gone ({dead}): "
                        "call ray.shutdown() and ray.init() again before fit()"
                    )
                log.warning(
                    "The local Ray started earlier has stopped (%s); starting a new one.", dead
                )
                await shutdown_ray()
        if await ensure_ray(self._address, self._init_kwargs):
            _started_by_atune = True
        self._watch = ClusterWatch()
        self._total = await anyio.to_thread.run_sync(ray.cluster_resources, abandon_on_cancel=True)

    async def watch(self) -> None:
        """Return only by raising :class:`ClusterDiedError` once the cluster is gone.

        Before raising, this process disconnects from the dead cluster
        (``ray.shutdown()``) in :meth:`aclose`, so Ray does not end the process 60 s
        later; from then on no call of this executor reaches Ray.
        """
        assert self._watch is not None, "start() first"
        reason = await self._watch.wait_dead()
        self.dead = reason
        raise ClusterDiedError(reason)

    def more_resources_hint(self) -> str:
        return "start Ray with more, e.g. ray.init(num_cpus=8)"

    def check_alive(self) -> None:
        """Raise ClusterDiedError once the cluster is known to be gone."""
        if self.dead is not None:
            raise ClusterDiedError(self.dead)

    async def put(self, parameters: dict[str, Any]) -> Any:
        if not parameters:
            return None
        try:
            return await anyio.to_thread.run_sync(ray.put, parameters, abandon_on_cancel=True)
        except Exception as exc:
            for key, value in parameters.items():
                self.check_serializable(value, f"with_parameters({key}=...)")
            raise AtuneError(
                f"Ray could not store the with_parameters() values ({type(exc).__name__}: "
                f"{exc}); is its object store full? Pass smaller objects, or load the data "
                "inside the trainable."
            ) from exc

    async def launch(
        self, spec: WorkerSpec, resources: dict[str, float], parameters: Any
    ) -> RayTrialHandle:
        own = resources if spec.placement is None else spec.placement.head_bundle
        custom = {k: v for k, v in own.items() if k not in ("CPU", "GPU", "memory")}
        options: dict[str, Any] = {
            "num_cpus": own.get("CPU", 0.0),
            "num_gpus": own.get("GPU", 0.0),
            "max_concurrency": _ACTOR_MAX_CONCURRENCY,
            "max_restarts": 0,
        }
        if own.get("memory"):
            options["memory"] = own["memory"]
        if custom:
            options["resources"] = custom

        self.check_alive()
        group = None
        if spec.placement is not None:
            group = await self._placement_group(spec)
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=group,
                # An empty head bundle is not in the group: the worker takes nothing.
                placement_group_bundle_index=-1 if spec.placement.head_bundle_is_empty else 0,
                placement_group_capture_child_tasks=True,
            )

        def _submit() -> tuple[Any, Any]:
            # Creating the first actor exports its class (~100 ms) and submitting
            # start() pickles the trainable: both happen off the event loop.
            actor: Any = _RemoteTrialActor.options(**options).remote(spec.trainable.name)
            return actor, actor.start.remote(spec, parameters)

        try:
            actor, started = await anyio.to_thread.run_sync(_submit, abandon_on_cancel=True)
        except BaseException as exc:
            if group is not None:
                _remove_group(group)
            if isinstance(exc, (AtuneError, anyio.get_cancelled_exc_class())):
                raise
            if not isinstance(exc, Exception):
                raise
            raise self._cannot_submit(spec, exc) from exc
        handle = RayTrialHandle(actor, resources, spec.trial_name, self)
        if group is not None:
            handle.group = group
            handle.placement = spec.placement.key()
        return await self._track(handle, _await(started, spec.trial_name))

    async def _placement_group(self, spec: WorkerSpec) -> Any:
        """The trial's placement group, once Ray has reserved all its bundles."""
        pgf = spec.placement
        group = await anyio.to_thread.run_sync(
            lambda: ray.util.placement_group(pgf.bundles, strategy=pgf.strategy),
            abandon_on_cancel=True,
        )
        try:
            await _await(group.ready(), spec.trial_name)
        except BaseException:
            _remove_group(group)
            raise
        return group

    def _cannot_submit(self, spec: WorkerSpec, exc: BaseException) -> AtuneError:
        """What failed when Ray could not take a trial's actor: say which object, and why."""
        dumps = ray.cloudpickle.dumps
        unsendable = _serialization.unsendable_config(spec.config, "config", dumps)
        if unsendable is not None:
            return SerializationError(f"trial {spec.trial_name}: {unsendable}")
        try:
            self.check_serializable(spec.trainable.trainable, "trainable")
        except SerializationError as err:
            return err
        return AtuneError(
            f"Ray refused the worker of trial {spec.trial_name} ({type(exc).__name__}: {exc})."
        )

    def check_serializable(self, obj: Any, what: str) -> None:
        _serialization.check_serializable(obj, what, ray.cloudpickle.dumps)

    async def aclose(self) -> None:
        if self.dead is not None:  # nothing left to kill, and Ray calls would block
            self._handles.clear()
            await shutdown_ray()
            return
        for handle in list(self._handles):
            self.release(handle)
