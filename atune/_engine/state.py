"""The state of one experiment, as plain objects that never await and never do I/O.

:class:`ExperimentState` holds the trial table, the resource pool and the checkpoint
book, and changes only through :meth:`ExperimentState.apply` of an
:mod:`~atune._engine.events` event. So every change is one event, the journal can
replay them, and the rules (a trial's allowed status moves, resources given back
exactly once, which checkpoints are kept) are checked in one place, testable without
an event loop or Ray.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from atune import result as R
from atune._engine import events as E
from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.config import CheckpointConfig
from atune.errors import AtuneError

__all__ = ["CheckpointBook", "ExperimentState", "InvalidTransition", "ResourcePool", "TrialTable"]

#: What apply() returns when it drops no checkpoint (never changed).
_NOTHING: list[str] = []

#: Resources are floats (fractions of a CPU): compare with this slack.
_EPS = 1e-9

#: Where each event may take a trial from, and to.
_TRANSITIONS: dict[type[E.TrialEvent], tuple[frozenset[str], str]] = {
    E.TrialStarted: (frozenset({Trial.PENDING}), Trial.RUNNING),
    E.TrialResumed: (frozenset({Trial.PAUSED}), Trial.RUNNING),
    E.TrialPaused: (frozenset({Trial.RUNNING}), Trial.PAUSED),
    E.TrialRequeued: (frozenset({Trial.RUNNING}), Trial.PENDING),
    E.TrialCompleted: (frozenset({Trial.PENDING, Trial.RUNNING, Trial.PAUSED}), Trial.TERMINATED),
    E.TrialErrored: (frozenset({Trial.PENDING, Trial.RUNNING, Trial.PAUSED}), Trial.ERROR),
}


class InvalidTransition(AtuneError):
    """An event asked a trial for a status move the lifecycle does not allow."""


class ResourcePool:
    """What the cluster has, and what each started trial holds of it.

    A trial acquires when it starts (TrialStarted/TrialResumed) and releases once its
    worker has stopped (ResourcesReleased), whatever its status is by then. Holdings
    are per trial, so giving back is exact: a trial releases what it took, even if a
    scheduler changed its request meanwhile, and releasing twice is a no-op.
    """

    def __init__(self, total: Mapping[str, float] | None = None) -> None:
        self.total: dict[str, float] = dict(total or {})
        self._held: dict[str, dict[str, float]] = {}

    @property
    def used(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for resources in self._held.values():
            for k, v in resources.items():
                used[k] = used.get(k, 0.0) + v
        return used

    @property
    def live(self) -> int:
        """Trials holding resources."""
        return len(self._held)

    def holds(self, trial_id: str) -> bool:
        return trial_id in self._held

    def fits(self, resources: Mapping[str, float], cap: int | None = None) -> bool:
        """Would a trial asking for ``resources`` fit now (and under ``cap`` trials)?"""
        if cap and len(self._held) >= cap:
            return False
        used = self.used
        return all(
            used.get(k, 0.0) + v <= self.total.get(k, 0.0) + _EPS for k, v in resources.items()
        )

    def could_ever_fit(self, resources: Mapping[str, float]) -> bool:
        return all(v <= self.total.get(k, 0.0) + _EPS for k, v in resources.items())

    def acquire(self, trial_id: str, resources: Mapping[str, float]) -> None:
        if trial_id in self._held:
            raise InvalidTransition(f"trial {trial_id} already holds resources")
        bad = {k: v for k, v in resources.items() if not v >= 0}  # NaN is not >= 0 either
        if bad:
            raise InvalidTransition(f"trial {trial_id} asked for resources < 0: {bad}")
        self._held[trial_id] = dict(resources)

    def release(self, trial_id: str) -> None:
        self._held.pop(trial_id, None)


@dataclass(frozen=True)
class _Kept:
    checkpoint: Checkpoint
    iteration: int
    time_total_s: float
    result: dict[str, Any]


class CheckpointBook:
    """Which checkpoints each trial keeps, and what they were taken at.

    As Ray Tune keeps them: the ``num_to_keep`` best checkpoints of each trial by
    ``checkpoint_score_attribute`` (in ``checkpoint_score_order``; a missing or NaN
    score ranks last, and of equal scores the later is better), or the
    ``num_to_keep`` latest without one, plus the latest checkpoint whatever its score
    (a failed trial resumes from it): ``num_to_keep + 1`` at most. None keeps all.
    :meth:`record` returns the paths no longer kept, for the caller to delete, each
    once: a path that is pinned when it is dropped is returned by the :meth:`unpin`
    that takes its last pin instead. Recording a path the trial already keeps
    replaces that entry (the directory was overwritten).
    """

    def __init__(self, config: CheckpointConfig | None = None) -> None:
        self.config = config or CheckpointConfig()
        self._kept: dict[str, list[_Kept]] = {}
        self._meta: dict[str, tuple[int, float]] = {}
        #: Paths that must not be deleted yet (a pending restore, a PBT exploit).
        self._pinned: dict[str, int] = {}
        #: Dropped while pinned: returned by the unpin that takes the last pin.
        self._deferred: set[str] = set()
        #: How many kept entries (over all trials) point to each path.
        self._refs: dict[str, int] = {}

    def record(
        self,
        trial_id: str,
        checkpoint: Checkpoint,
        result: Mapping[str, Any],
        *,
        iteration: int | None = None,
        time_total_s: float | None = None,
    ) -> list[str]:
        it = int(result.get(R.TRAINING_ITERATION, 0)) if iteration is None else iteration
        tt = float(result.get(R.TIME_TOTAL_S, 0.0)) if time_total_s is None else time_total_s
        kept = self._kept.setdefault(trial_id, [])
        # The same directory again (saved into twice, or a PBT exploit copied into a
        # name the trial used): one entry, the new one, else dropping the old entry
        # would delete the directory the latest entry points to.
        path = checkpoint.path
        if self._refs.get(path):
            before = len(kept)
            kept[:] = [k for k in kept if k.checkpoint.path != path]
            self._refs[path] -= before - len(kept)
        kept.append(_Kept(checkpoint, it, tt, dict(result)))
        self._refs[path] = self._refs.get(path, 0) + 1
        self._meta[path] = (it, tt)
        self._deferred.discard(path)
        n = self.config.num_to_keep
        dropped: list[str] = []
        while n is not None:
            victim = self._victim(kept, n)
            if victim is None:
                break
            kept.remove(victim)
            path = victim.checkpoint.path
            self._refs[path] -= 1
            if self._refs[path]:
                continue  # another trial keeps the same directory
            del self._refs[path]
            self._meta.pop(path, None)
            if path in self._pinned:
                self._deferred.add(path)
            else:
                dropped.append(path)
        return dropped

    def _victim(self, kept: list[_Kept], n: int) -> _Kept | None:
        """The entry to drop next, or None: neither among the ``n`` best nor the latest."""
        if len(kept) <= n:
            return None
        if self.config.checkpoint_score_attribute is None:
            return kept[0]  # by recency: the oldest (never the latest, as n >= 1)
        ranked = sorted(range(len(kept)), key=lambda i: (self._score(kept[i]), i), reverse=True)
        best = set(ranked[:n])
        latest = len(kept) - 1
        for i in reversed(ranked):  # worst first
            if i not in best and i != latest:
                return kept[i]
        return None

    def _score(self, item: _Kept) -> float:
        value = item.result.get(self.config.checkpoint_score_attribute or "")
        if not isinstance(value, (int, float)) or math.isnan(value):
            return -math.inf
        return float(value) if self.config.checkpoint_score_order == "max" else -float(value)

    def latest(self, trial_id: str) -> Checkpoint | None:
        kept = self._kept.get(trial_id)
        return kept[-1].checkpoint if kept else None

    def kept(self, trial_id: str) -> list[tuple[Checkpoint, dict[str, Any]]]:
        """The kept checkpoints of a trial, oldest first, with their results."""
        return [(k.checkpoint, k.result) for k in self._kept.get(trial_id, ())]

    def best(self, trial_id: str) -> list[tuple[Checkpoint, dict[str, Any]]]:
        """The kept checkpoints ordered as Ray Tune's ``best_checkpoints``: by score,
        worst first (by recency without a score attribute, oldest first)."""
        kept = list(enumerate(self._kept.get(trial_id, ())))
        if self.config.checkpoint_score_attribute is not None:
            kept.sort(key=lambda pair: (self._score(pair[1]), pair[0]))
        return [(k.checkpoint, k.result) for _, k in kept]

    def result_at(self, trial_id: str, iteration: int) -> dict[str, Any]:
        """The result a kept checkpoint of the trial was taken with at ``iteration``."""
        for k in reversed(self._kept.get(trial_id, ())):
            if k.iteration == iteration:
                return k.result
        return {}

    def owns(self, trial_id: str, checkpoint: Checkpoint) -> bool:
        return any(k.checkpoint == checkpoint for k in self._kept.get(trial_id, ()))

    def meta(self, path: str) -> tuple[int, float]:
        """(training_iteration, time_total_s) a checkpoint was taken at; (0, 0.0) if unknown."""
        return self._meta.get(path, (0, 0.0))

    def pin(self, path: str) -> None:
        self._pinned[path] = self._pinned.get(path, 0) + 1

    def unpin(self, path: str) -> list[str]:
        """Take one pin off ``path``; ``[path]`` if it was the last and the book had
        dropped the path meanwhile (for the caller to delete), else ``[]``."""
        left = self._pinned.get(path, 0) - 1
        if left > 0:
            self._pinned[path] = left
            return []
        self._pinned.pop(path, None)
        if path in self._deferred:
            self._deferred.discard(path)
            return [path]
        return []


class TrialTable:
    """The experiment's trials in order, and the ids it gives new ones.

    Ids have Ray Tune's shape, ``<5 hex>_<5 digits>``: the prefix belongs to the
    experiment and the number counts up over its whole life, so a restored experiment
    keeps its ids and continues the numbering.
    """

    def __init__(self, id_prefix: str | None = None, next_index: int = 0) -> None:
        self.id_prefix = id_prefix or uuid.uuid4().hex[:5]
        self.next_index = next_index
        self._order: list[Trial] = []
        self._by_id: dict[str, Trial] = {}

    def peek_id(self) -> tuple[int, str]:
        """The index and id the next trial will get (not reserved)."""
        return self.next_index, f"{self.id_prefix}_{self.next_index:05d}"

    def new_id(self) -> tuple[int, str]:
        """The index and id the next trial gets (reserved: never given twice)."""
        index, trial_id = self.peek_id()
        self.next_index += 1
        return index, trial_id

    def add(self, trial: Trial) -> None:
        if trial.trial_id in self._by_id:
            raise InvalidTransition(f"trial {trial.trial_id} was added twice")
        self._order.append(trial)
        self._by_id[trial.trial_id] = trial

    def remove(self, trial: Trial) -> None:
        self._order.remove(trial)
        del self._by_id[trial.trial_id]

    def move_to_end(self, trial: Trial) -> None:
        self._order.remove(trial)
        self._order.append(trial)

    def get(self, trial_id: str) -> Trial | None:
        return self._by_id.get(trial_id)

    def __getitem__(self, trial_id: str) -> Trial:
        return self._by_id[trial_id]

    def __iter__(self) -> Iterator[Trial]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    @property
    def trials(self) -> list[Trial]:
        """The trials in scheduling order (the list itself: schedulers read it)."""
        return self._order

    def with_status(self, *statuses: str) -> list[Trial]:
        return [t for t in self._order if t.status in statuses]


class ExperimentState:
    """Trials, resources and checkpoints of one experiment; changed by :meth:`apply`."""

    def __init__(
        self,
        total_resources: Mapping[str, float] | None = None,
        checkpoint_config: CheckpointConfig | None = None,
        id_prefix: str | None = None,
        next_index: int = 0,
    ) -> None:
        self.table = TrialTable(id_prefix, next_index)
        self.pool = ResourcePool(total_resources)
        self.book = CheckpointBook(checkpoint_config)

    @property
    def trials(self) -> list[Trial]:
        return self.table.trials

    def apply(self, event: E.Event) -> list[str]:
        """Apply one event; returns checkpoint paths that are no longer kept."""
        if type(event) is E.ResultRecorded:  # the hot path: one per result
            trial = self.table.get(event.trial_id)
            if trial is not None and trial.status == Trial.RUNNING:
                trial.last_result = event.result
                trial.num_results += 1
                return _NOTHING
        if not isinstance(event, E.TrialEvent):
            return []
        if isinstance(event, E.TrialAdded):
            return []  # the Trial object is added with add_trial()
        trial = self.table.get(event.trial_id)
        if trial is None:
            raise InvalidTransition(f"{event.kind} for trial {event.trial_id}, which is unknown")
        if isinstance(event, E.ResultRecorded):
            self._expect(trial, event, frozenset({Trial.RUNNING}))
            trial.last_result = event.result
            trial.num_results += 1
            return []
        if isinstance(event, E.CheckpointRecorded):
            ckpt = Checkpoint(event.path)
            dropped = self.book.record(
                trial.trial_id,
                ckpt,
                event.result,
                iteration=event.iteration,
                time_total_s=event.time_total_s,
            )
            trial.checkpoint = ckpt
            trial.checkpoints = self.book.best(trial.trial_id)
            return dropped
        if isinstance(event, E.ResourcesReleased):
            self.pool.release(trial.trial_id)
            return []
        if isinstance(event, E.TrialWorkerStarted):
            self._expect(trial, event, frozenset({Trial.RUNNING}))
            if event.after_failure:  # the history continues from start_iteration
                trial.num_results = event.start_iteration
                trial.last_result = self.book.result_at(trial.trial_id, event.start_iteration)
            return []
        if isinstance(event, E.TrialRetrying):
            self._expect(trial, event, frozenset({Trial.RUNNING}))
            trial.num_failures += 1
            return []
        allowed, target = _TRANSITIONS[type(event)]
        self._expect(trial, event, allowed)
        if isinstance(event, E.TrialStarted):  # and TrialResumed
            self.pool.acquire(trial.trial_id, event.resources)
        trial.status = target
        if isinstance(event, E.TrialErrored):
            trial.error = event.error
            trial.num_failures += 1
        if isinstance(event, E.TrialRequeued):
            self.table.move_to_end(trial)
        return []

    def add_trial(self, trial: Trial, searcher_state: bytes | None = None) -> E.TrialAdded:
        """Add a new PENDING trial; the event to publish for it."""
        if trial.status != Trial.PENDING:
            raise InvalidTransition(f"a new trial must be PENDING, {trial.name} is {trial.status}")
        self.table.add(trial)
        return E.TrialAdded(
            trial_id=trial.trial_id, config=trial.config, searcher_state=searcher_state
        )

    @staticmethod
    def _expect(trial: Trial, event: E.TrialEvent, allowed: frozenset[str]) -> None:
        if trial.status not in allowed:
            raise InvalidTransition(
                f"{event.kind} for trial {trial.name}, which is {trial.status} "
                f"(allowed from: {', '.join(sorted(allowed))})"
            )
