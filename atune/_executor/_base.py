"""The executor protocol: how the controller starts and talks to trial workers.

The controller never imports ``ray``; it holds an :class:`Executor` and, per running
trial, a :class:`TrialHandle`. It sends each worker a :class:`WorkerSpec` and gets
results back in :class:`Batch` es. ``_ray.py`` implements the protocol on Ray actors,
``_local.py`` in the driver's own process; both run the same ``TrialWorker``, and
share the bookkeeping of :class:`WorkerExecutor` and :class:`WorkerHandle`.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from atune.trainable.util import TrainableInfo

__all__ = ["Batch", "Executor", "TrialHandle", "WorkerExecutor", "WorkerHandle", "WorkerSpec"]

E = TypeVar("E")
H = TypeVar("H", bound="WorkerHandle[Any]")


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
    #: A PlacementGroupFactory: the worker runs in its first bundle of a placement
    #: group made for the trial (Ray executor only).
    placement: Any = None


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


class TrialHandle(Protocol):
    """The driver's end of one worker running a trial."""

    info: dict[str, Any]
    resources: dict[str, float]
    #: Name of the trial the worker runs (or ran last).
    name: str

    async def next_results(
        self,
        max_results: int,
        acked: int,
        lockstep: bool,
        linger_s: float = 0.0,
        sync_point: tuple[str, float] | None = None,
    ) -> Batch:
        """Wait for results; raise TrialWorkerDiedError if the worker died."""
        ...

    async def save(self) -> str | None:
        """Checkpoint a class trainable now; return the checkpoint dir."""
        ...

    async def stop(self, final: bool = False) -> bool:
        """Stop the trainable gracefully; True if it ended in time.

        ``final``: the worker runs no further trial (clean up what reuse kept).
        """
        ...

    async def reset(self, spec: WorkerSpec, parameters: Any) -> None:
        """Run another trial in the same worker."""
        ...

    def kill(self) -> None:
        """End the worker now, as far as the executor can (never blocks)."""
        ...


class Executor(Protocol):
    """Starts workers and ships large objects to them."""

    async def start(self) -> None:
        """Connect to (or start) the cluster."""
        ...

    def total_resources(self) -> dict[str, float]:
        """All resources of the cluster, e.g. ``{"CPU": 8.0, "GPU": 0.0}``."""
        ...

    def more_resources_hint(self) -> str:
        """How to give the trials more resources in total, in this executor's terms.

        A clause for the error of a trial that asks for more than
        :meth:`total_resources` holds: "ask for less, or <hint>", e.g. ``"start Ray with
        more, e.g. ray.init(num_cpus=8)"``.
        """
        ...

    async def put(self, parameters: dict[str, Any]) -> Any:
        """Store ``with_parameters`` values once; return what workers resolve them from."""
        ...

    async def launch(
        self, spec: WorkerSpec, resources: dict[str, float], parameters: Any
    ) -> TrialHandle:
        """Start a worker with ``resources`` running ``spec``."""
        ...

    def release(self, handle: TrialHandle) -> None:
        """Kill a worker and forget it (never blocks)."""
        ...

    async def watch(self) -> None:
        """Wait while the cluster is healthy; raise ClusterDiedError once it is gone."""
        ...

    def check_serializable(self, obj: Any, what: str) -> None:
        """Raise SerializationError naming what in ``obj`` cannot be sent to a worker."""
        ...

    async def aclose(self) -> None:
        """Kill every worker this executor started."""
        ...


class WorkerHandle(abc.ABC, Generic[E]):
    """What the trial handles of the built-in executors share (a :class:`TrialHandle`).

    The worker at the other end is a ``TrialWorker``; a subclass says how a call
    reaches it (:meth:`_request`) and implements ``stop``, ``reset`` and ``kill``.
    ``E`` is the type of the executor that started it.
    """

    def __init__(self, resources: dict[str, float], name: str, executor: E) -> None:
        self._executor = executor
        self.resources = resources
        #: The placement group's shape (PlacementGroupFactory.key()), if in one.
        self.placement: Any = None
        self.info: dict[str, Any] = {}
        #: Name of the trial the worker runs (or ran last).
        self.name = name

    @abc.abstractmethod
    async def _request(self, method: str, *args: Any) -> Any:
        """Call the worker's ``TrialWorker.<method>(*args)``; return what it returns."""

    async def next_results(
        self,
        max_results: int,
        acked: int,
        lockstep: bool,
        linger_s: float = 0.0,
        sync_point: tuple[str, float] | None = None,
    ) -> Batch:
        """Wait for results; raise TrialWorkerDiedError if the worker died."""
        return await self._request(
            "next_results", max_results, acked, lockstep, linger_s, sync_point
        )

    async def save(self) -> str | None:
        """Checkpoint a class trainable now; return the checkpoint dir."""
        return await self._request("save")

    @abc.abstractmethod
    async def stop(self, final: bool = False) -> bool:
        """Stop the trainable gracefully; True if it ended in time."""

    @abc.abstractmethod
    async def reset(self, spec: WorkerSpec, parameters: Any) -> None:
        """Run another trial in the same worker."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End the worker now, as far as the executor can (never blocks)."""


class WorkerExecutor(abc.ABC):
    """What the built-in executors share: the total resources and the started handles."""

    #: The class of the handles this executor starts (the only ones it releases).
    _handle_type: ClassVar[type[WorkerHandle[Any]]]

    def __init__(self, total: dict[str, float]) -> None:
        self._total = total
        self._handles: set[WorkerHandle[Any]] = set()

    def total_resources(self) -> dict[str, float]:
        return dict(self._total)

    @abc.abstractmethod
    def more_resources_hint(self) -> str:
        """See :meth:`Executor.more_resources_hint`."""

    async def _track(self, handle: H, started: Awaitable[dict[str, Any]]) -> H:
        """Keep ``handle`` until it is released, and await its worker's start.

        ``started`` is the worker's ``start`` call; its answer becomes ``handle.info``.
        If it fails (or is cancelled), the worker is released and the error raised.
        """
        self._handles.add(handle)
        try:
            handle.info = await started
        except BaseException:
            self.release(handle)
            raise
        return handle

    def release(self, handle: TrialHandle) -> None:
        """Kill a worker and forget it (never blocks)."""
        assert isinstance(handle, self._handle_type), handle
        handle.kill()
        self._handles.discard(handle)
