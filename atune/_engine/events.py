"""Events: every change to an experiment, as a small frozen value.

The controller publishes them on the :class:`~atune._engine.bus.EventBus` in the order
they happen, and applies each to the :class:`~atune._engine.state.ExperimentState`
first, so a subscriber that sees an event sees the state after it. ``kind`` is the
public name of the event (``"result"``, ``"trial_started"``...); ``time`` is when it
happened (``time.time()``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "CheckpointRecorded",
    "Event",
    "ExperimentEnded",
    "ResourcesReleased",
    "ResultRecorded",
    "TrialAdded",
    "TrialCompleted",
    "TrialErrored",
    "TrialEvent",
    "TrialPaused",
    "TrialRequeued",
    "TrialResumed",
    "TrialRetrying",
    "TrialStarted",
    "TrialWorkerStarted",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of all events."""

    kind: ClassVar[str] = "event"
    #: Lifecycle events are never dropped by a subscription that falls behind.
    lifecycle: ClassVar[bool] = True
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialEvent(Event):
    """An event about one trial."""

    trial_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialAdded(TrialEvent):
    """A trial joined the experiment (PENDING)."""

    kind: ClassVar[str] = "trial_added"
    config: dict[str, Any]
    #: The searcher's state (pickled) right after it suggested this trial, for the
    #: journal: the trial and the state that includes it are recorded together.
    searcher_state: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialStarted(TrialEvent):
    """A trial got its resources and a worker: PENDING -> RUNNING."""

    kind: ClassVar[str] = "trial_started"
    resources: dict[str, float]
    #: Continuing from a checkpoint (a retry or a resume), not from scratch.
    restored: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialResumed(TrialStarted):
    """A PAUSED trial runs again: PAUSED -> RUNNING."""

    kind: ClassVar[str] = "trial_resumed"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialWorkerStarted(TrialEvent):
    """The trial's worker is up and runs the trainable (its directory exists)."""

    kind: ClassVar[str] = "trial_worker_started"
    #: The trainable continues from a checkpoint (a retry, a resume, an exploit).
    restored: bool = False
    #: The ``training_iteration`` it continues from (0: from scratch).
    start_iteration: int = 0
    #: It runs again after a failure: results recorded past ``start_iteration`` belong
    #: to the failed attempt, and the loggers move them aside.
    after_failure: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultRecorded(TrialEvent):
    """A result of a RUNNING trial was recorded (it passed stoppers and scheduler)."""

    kind: ClassVar[str] = "result"
    lifecycle: ClassVar[bool] = False
    result: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointRecorded(TrialEvent):
    """A checkpoint of the trial was recorded, with the result it belongs to."""

    kind: ClassVar[str] = "checkpoint"
    path: str
    iteration: int
    time_total_s: float
    result: dict[str, Any]
    #: Set when the checkpoint is a copy of another trial's (PBT's exploit), not one
    #: the trial saved itself.
    copied_from: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcesReleased(TrialEvent):
    """The trial's worker is gone (or idle in the pool) and its resources are free.

    Separate from the status events: a trial is TERMINATED or PAUSED as soon as that
    is decided, and gives its resources back once its worker has stopped. A trial
    interrupted with the experiment (cancelled) stays RUNNING and releases too.
    """

    kind: ClassVar[str] = "resources_released"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialPaused(TrialEvent):
    """A scheduler paused the trial: RUNNING -> PAUSED."""

    kind: ClassVar[str] = "trial_paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialRequeued(TrialEvent):
    """A failed trial queues behind the waiting ones to retry: RUNNING -> PENDING."""

    kind: ClassVar[str] = "trial_requeued"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialRetrying(TrialEvent):
    """The trial failed and will run again (``FailureConfig.max_failures``)."""

    kind: ClassVar[str] = "trial_retrying"
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialCompleted(TrialEvent):
    """The trial ended: finished, stopped, or stopped with the experiment."""

    kind: ClassVar[str] = "trial_completed"
    #: Why: ``"finished"`` (returned, or a stop criterion), ``"stopped"`` (a scheduler,
    #: a command) or ``"experiment_stopped"``.
    reason: str = "finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialErrored(TrialEvent):
    """The trial failed and will not be retried: -> ERROR."""

    kind: ClassVar[str] = "trial_errored"
    error: BaseException | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentEnded(Event):
    """The experiment is over; the last event on the bus."""

    kind: ClassVar[str] = "experiment_ended"
    error: BaseException | None = None
