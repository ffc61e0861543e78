"""Change the resources of live trials as the experiment goes on.

:class:`ResourceChangingScheduler` wraps another scheduler and follows its decisions.
After each result the wrapped scheduler lets continue, it asks an allocation function
for the trial's resources; when they differ from what the trial has, the trial is
paused and restarted from its checkpoint with the new resources (a Ray actor's
resources are fixed, so the trial moves to a new worker). Trainables read their
resources with ``atune.get_trial_resources()`` or ``Trainable.trial_resources``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from atune._metric import validate_mode
from atune.errors import ConfigError, ConfigTypeError
from atune.schedulers._base import TrialScheduler
from atune.schedulers.fifo import FIFOScheduler
from atune.trainable.util import normalize_resources

if TYPE_CHECKING:
    from atune._engine.api import TuneController
    from atune._trial import Trial

__all__ = ["DistributeResources", "DistributeResourcesToTopJob", "ResourceChangingScheduler"]

AllocationFunction = Callable[[Any, "Trial", dict[str, Any], "ResourceChangingScheduler"], Any]

_LIVE = ("PENDING", "RUNNING", "PAUSED")


class DistributeResources:
    """Share the cluster's CPUs and GPUs evenly between the live trials.

    Each live trial gets its starting resources (``base``) plus as many units of
    ``increase_by`` as fit in an even share of the cluster::

        share[r]  = (total[r] - reserve[r]) / number of live trials
        units     = min over r in increase_by of floor((share[r] - base[r]) / increase_by[r])
        units     = clamp(units, 0, increase_by_times)      (increase_by_times < 0: no cap)
        new[r]    = base[r] + units * increase_by[r]

    so every trial always keeps at least what it started with, and together the live
    trials never ask for more than the cluster has (once each has its base).

    Args:
        add_bundles: Accepted for Ray Tune compatibility; atune trials are single
            bundles, so it has no effect.
        increase_by: The unit of growth, e.g. ``{"CPU": 2}``. Default: 1 GPU for trials
            that use GPUs, else 1 CPU.
        increase_by_times: At most this many units are added (-1: no limit).
        reserve_resources: Resources kept free, e.g. ``{"CPU": 1}`` for the driver.
    """

    def __init__(
        self,
        add_bundles: bool = False,
        increase_by: Mapping[str, float] | None = None,
        increase_by_times: int = -1,
        reserve_resources: Mapping[str, float] | None = None,
    ) -> None:
        if increase_by is not None:
            increase_by = {k: v for k, v in normalize_resources(increase_by).items() if v > 0}
            if not increase_by:
                raise ConfigError(
                    f"`increase_by` must name at least one resource > 0, got {increase_by!r}"
                )
        if isinstance(increase_by_times, bool) or not isinstance(increase_by_times, int):
            raise ConfigTypeError(f"`increase_by_times` must be an int, got {increase_by_times!r}")
        self.add_bundles = add_bundles
        self.increase_by = dict(increase_by) if increase_by else None
        self.increase_by_times = increase_by_times
        self.reserve_resources = normalize_resources(reserve_resources or {"CPU": 0})

    def _unit(self, base: Mapping[str, float]) -> dict[str, float]:
        if self.increase_by is not None:
            return dict(self.increase_by)
        return {"GPU": 1.0} if base.get("GPU", 0) > 0 else {"CPU": 1.0}

    def _available(self, tune_controller: TuneController) -> dict[str, float]:
        total = tune_controller.total_resources()
        return {k: v - self.reserve_resources.get(k, 0.0) for k, v in total.items()}

    def _grow(self, base: Mapping[str, float], units: int) -> dict[str, float]:
        unit = self._unit(base)
        if self.increase_by_times >= 0:
            units = min(units, self.increase_by_times)
        units = max(units, 0)
        new = dict(base)
        for key, amount in unit.items():
            new[key] = new.get(key, 0.0) + units * amount
        return new

    def _units_that_fit(self, room: Mapping[str, float], unit: Mapping[str, float]) -> int:
        return min(math.floor(room.get(k, 0.0) / v + 1e-9) for k, v in unit.items())

    def __call__(
        self,
        tune_controller: TuneController,
        trial: Trial,
        result: dict[str, Any],
        scheduler: ResourceChangingScheduler,
    ) -> dict[str, float] | None:
        base = scheduler.base_trial_resources(trial)
        live = [t for t in tune_controller.get_trials() if t.status in _LIVE]
        available = self._available(tune_controller)
        share = {k: v / max(len(live), 1) for k, v in available.items()}
        unit = self._unit(base)
        room = {k: share.get(k, 0.0) - base.get(k, 0.0) for k in unit}
        return self._grow(base, self._units_that_fit(room, unit))


class DistributeResourcesToTopJob(DistributeResources):
    """Give the free CPUs/GPUs to the best trial (by ``metric`` and ``mode``).

    The best live trial grows by as many units of ``increase_by`` as the cluster has
    free (``total - reserve - what all live trials hold``); the others keep what they
    have, and no trial goes below its starting resources. Same arguments as
    :class:`DistributeResources`, plus ``metric`` and ``mode`` (default: the wrapped
    scheduler's).
    """

    def __init__(
        self,
        add_bundles: bool = False,
        increase_by: Mapping[str, float] | None = None,
        increase_by_times: int = -1,
        reserve_resources: Mapping[str, float] | None = None,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__(add_bundles, increase_by, increase_by_times, reserve_resources)
        self.metric = metric
        self.mode = validate_mode(mode)

    def __call__(
        self,
        tune_controller: TuneController,
        trial: Trial,
        result: dict[str, Any],
        scheduler: ResourceChangingScheduler,
    ) -> dict[str, float] | None:
        metric = self.metric or scheduler.metric
        mode = self.mode or scheduler.mode
        if metric is None or mode is None:
            raise ConfigError(
                "DistributeResourcesToTopJob needs `metric` and `mode` (on it, on the "
                "ResourceChangingScheduler, or in TuneConfig)"
            )
        live = [t for t in tune_controller.get_trials() if t.status in _LIVE]
        scored = [t for t in live if isinstance(t.last_result.get(metric), (int, float))]
        if not scored:
            return None
        sign = 1.0 if mode == "max" else -1.0
        best = max(scored, key=lambda t: sign * t.last_result[metric])
        if best is not trial:
            return None  # only the top trial grows; the others keep what they hold
        base = scheduler.base_trial_resources(trial)
        unit = self._unit(base)
        available = self._available(tune_controller)
        held = {k: sum(t.resources.get(k, 0.0) for t in live) for k in unit}
        free = {k: available.get(k, 0.0) - held[k] for k in unit}
        current_units = self._units_that_fit(
            {k: trial.resources.get(k, 0.0) - base.get(k, 0.0) for k in unit}, unit
        )
        return self._grow(base, current_units + self._units_that_fit(free, unit))


class ResourceChangingScheduler(TrialScheduler):
    """Wrap a scheduler and resize live trials with an allocation function.

    Args:
        base_scheduler: The scheduler whose decisions are followed (default FIFO).
        resources_allocation_function: ``f(tune_controller, trial, result, scheduler)``
            returning the trial's new resources (a dict like ``{"CPU": 4}``) or None to
            keep them. Default: :class:`DistributeResources`.

    Trials are resized at the result that triggered the change (every result is a
    decision point), so a class trainable is checkpointed exactly there; function
    trainables restart from their latest reported checkpoint, so report one with
    every result.
    """

    # Any result may change a trial's resources: decide on each one before going on.
    requires_sync_point = True

    def __init__(
        self,
        base_scheduler: TrialScheduler | None = None,
        resources_allocation_function: AllocationFunction | None = None,
    ) -> None:
        super().__init__()
        if base_scheduler is not None and not isinstance(base_scheduler, TrialScheduler):
            raise ConfigTypeError(
                f"`base_scheduler` must be a TrialScheduler, got {base_scheduler!r}"
            )
        if resources_allocation_function is None:
            resources_allocation_function = DistributeResources()
        if not callable(resources_allocation_function):
            raise ConfigTypeError(
                "`resources_allocation_function` must be callable as f(tune_controller, "
                f"trial, result, scheduler), got {resources_allocation_function!r}"
            )
        self._base = base_scheduler or FIFOScheduler()
        self._allocate = resources_allocation_function
        self._base_resources: dict[str, dict[str, float]] = {}
        self.num_resized = 0

    @property
    def metric(self) -> str | None:
        return self._base.metric

    @property
    def mode(self) -> str | None:
        return self._base.mode

    def base_trial_resources(self, trial: Trial) -> dict[str, float]:
        """What the trial asked for when it was added."""
        return self._base_resources.setdefault(trial.trial_id, dict(trial.resources))

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return self._base.set_search_properties(metric, mode, **spec)

    def sync_point(self, trial: Trial) -> tuple[str, float] | None:
        return self._base.sync_point(trial)

    async def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        self.base_trial_resources(trial)
        await self._base.on_trial_add(tune_controller, trial)

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        decision = await self._base.on_trial_result(tune_controller, trial, result)
        if decision != TrialScheduler.CONTINUE:
            return decision
        wanted = self._allocate(tune_controller, trial, result, self)
        if wanted is None:
            return decision
        wanted = normalize_resources(wanted)
        if _same(wanted, trial.resources):
            return decision
        tune_controller.set_trial_resources(trial, wanted)
        self.num_resized += 1
        return TrialScheduler.PAUSE

    async def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        await self._base.on_trial_complete(tune_controller, trial, result)

    async def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        await self._base.on_trial_error(tune_controller, trial)

    async def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        await self._base.on_trial_remove(tune_controller, trial)

    async def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        return await self._base.choose_trial_to_run(tune_controller)

    def debug_string(self) -> str:
        return f"{self._base.debug_string()} (resources changed {self.num_resized} times)"


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    keys = set(a) | set(b)
    return all(abs(a.get(k, 0.0) - b.get(k, 0.0)) < 1e-9 for k in keys)
