"""The executor interface: how the controller starts and talks to trial workers.

The controller never imports ``ray``; it holds an :class:`Executor` and, per running
trial, a :class:`TrialHandle`. ``_ray.py`` implements both on Ray actors.
"""

from __future__ import annotations

from typing import Any, Protocol

from atune._executor._worker import Batch, WorkerSpec

__all__ = ["Executor", "TrialHandle"]


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
        """Kill the worker process now (never blocks)."""
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

    async def watch(self) -> None:
        """Wait while the cluster is healthy; raise ClusterDiedError once it is gone."""
        ...

    def check_serializable(self, obj: Any, what: str) -> None:
        """Raise SerializationError naming what in ``obj`` cannot be sent to a worker."""
        ...

    async def aclose(self) -> None:
        """Kill every worker this executor started."""
        ...
