"""The executor protocol: how the controller starts and talks to trial workers.

The controller never imports ``ray``; it holds an :class:`Executor` and, per running
trial, a :class:`TrialHandle`. It sends each worker a :class:`WorkerSpec` and gets
results back in :class:`Batch` es. ``_ray.py`` implements the protocol on Ray actors,
``_local.py`` in the driver's own process; both run the same ``TrialWorker``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from atune.trainable.util import TrainableInfo

__all__ = ["Batch", "Executor", "TrialHandle", "WorkerSpec"]


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
