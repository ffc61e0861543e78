"""The driver-side record of one trial.

A :class:`Trial` is plain data owned by the controller: its config, status, last
result, latest checkpoint and directory. Schedulers, searchers, stoppers, callbacks
and progress reporters all read it; only the controller writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atune.checkpoint import Checkpoint

__all__ = ["Trial"]


@dataclass(eq=False)
class Trial:
    """One configuration being trained, as the driver sees it.

    Attributes:
        trial_id: Unique id, ``"<5 hex experiment prefix>_<5 digit index>"``.
        trainable_name: Name of the trainable (function or class name).
        config: The fully resolved hyperparameter config.
        experiment_tag: ``"<index>_<k>=<v>,..."`` of the sampled values.
        evaluated_params: Flat ``{"a/b": value}`` of the values that were sampled.
        resources: Resources requested per trial, e.g. ``{"CPU": 1.0}``.
        status: One of ``PENDING``, ``RUNNING``, ``PAUSED``, ``TERMINATED``, ``ERROR``.
        last_result: The last recorded result (with auto-filled fields).
        checkpoint: Latest checkpoint recorded for the trial, if any.
        local_path: The trial directory.
        num_failures: How many times the trial failed (restarted or not).
        error: The exception of the last failure, if the trial ended in ERROR.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    trial_id: str
    trainable_name: str
    config: dict[str, Any]
    experiment_tag: str = ""
    evaluated_params: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=lambda: {"CPU": 1.0})
    status: str = PENDING
    last_result: dict[str, Any] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None
    local_path: str = ""
    num_failures: int = 0
    error: BaseException | None = None
    custom_name: str | None = None
    #: Number of results recorded (``training_iteration`` of the last one).
    num_results: int = 0
    #: Set by a scheduler (PBT's exploit): the next start restores from this instead.
    restore_from: Checkpoint | None = None
    #: Checkpoints still kept on disk, oldest first, each with the metrics it came with.
    checkpoints: list[tuple[Checkpoint, dict[str, Any]]] = field(default_factory=list)
    #: Bundles of a trial that runs its own workers (``resources`` is their sum).
    placement_group_factory: Any = None

    @property
    def name(self) -> str:
        """Display name: the ``trial_name_creator`` result, else ``<trainable>_<id>``."""
        return self.custom_name or f"{self.trainable_name}_{self.trial_id}"

    @property
    def path(self) -> str:
        """Alias of :attr:`local_path` (Ray Tune 2.x name)."""
        return self.local_path

    @property
    def logdir(self) -> str:
        """Alias of :attr:`local_path` (Ray Tune 0.7 name)."""
        return self.local_path

    @property
    def is_finished(self) -> bool:
        return self.status in (Trial.TERMINATED, Trial.ERROR)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Trial({self.name!r}, status={self.status})"
