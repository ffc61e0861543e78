"""ResourceChangingScheduler and its allocation functions, on synthetic results."""

from __future__ import annotations

import pytest

from atune._trial import Trial
from atune.errors import ConfigError
from atune.schedulers import TrialScheduler
from atune.schedulers.resource_changing_scheduler import (
    DistributeResources,
    DistributeResourcesToTopJob,
    ResourceChangingScheduler,
)
from tests.unit.fake_controller import FakeController, make_trial


def running(controller, n, resources=None):
    trials = []
    for i in range(n):
        t = controller.add(make_trial(i, resources=dict(resources or {"CPU": 1.0})))
        t.status = Trial.RUNNING
        trials.append(t)
    return trials


async def add_all(scheduler, controller):
    for t in controller.trials:
        await scheduler.on_trial_add(controller, t)


async def test_even_share_of_the_cluster():
    controller = FakeController(total={"CPU": 8.0})
    a, _ = running(controller, 2)
    scheduler = ResourceChangingScheduler()
    await add_all(scheduler, controller)
    decision = await scheduler.on_trial_result(controller, a, {"training_iteration": 1})
    assert decision == TrialScheduler.PAUSE
    assert controller.resources[a.trial_id] == {"CPU": 4.0}
    # Already at its share: no change, the base decision stands.
    assert await scheduler.on_trial_result(controller, a, {}) == TrialScheduler.CONTINUE


async def test_share_respects_reserve_unit_and_cap():
    controller = FakeController(total={"CPU": 16.0})
    (a, _, _) = running(controller, 3)
    fn = DistributeResources(increase_by={"cpu": 2}, reserve_resources={"cpu": 1})
    # share = 15 / 3 = 5; room = 5 - 1 = 4 -> 2 units of 2 CPUs -> 1 + 4 = 5
    scheduler = ResourceChangingScheduler(resources_allocation_function=fn)
    await add_all(scheduler, controller)
    await scheduler.on_trial_result(controller, a, {})
    assert controller.resources[a.trial_id] == {"CPU": 5.0}
    capped = DistributeResources(increase_by_times=1)
    assert capped(controller, a, {}, scheduler) == {"CPU": 2.0}


async def test_never_below_the_starting_resources():
    controller = FakeController(total={"CPU": 4.0})
    trials = running(controller, 8, {"CPU": 2.0})
    scheduler = ResourceChangingScheduler()
    await add_all(scheduler, controller)
    assert await scheduler.on_trial_result(controller, trials[0], {}) == TrialScheduler.CONTINUE
    assert controller.resources == {}


async def test_gpu_trials_grow_by_gpus():
    controller = FakeController(total={"CPU": 8.0, "GPU": 4.0})
    a, _ = running(controller, 2, {"CPU": 1.0, "GPU": 1.0})
    scheduler = ResourceChangingScheduler()
    await add_all(scheduler, controller)
    await scheduler.on_trial_result(controller, a, {})
    assert controller.resources[a.trial_id] == {"CPU": 1.0, "GPU": 2.0}


async def test_top_job_gets_the_free_resources():
    controller = FakeController(total={"CPU": 8.0})
    a, b = running(controller, 2)
    a.last_result, b.last_result = {"acc": 0.9}, {"acc": 0.5}
    fn = DistributeResourcesToTopJob(metric="acc", mode="max")
    scheduler = ResourceChangingScheduler(resources_allocation_function=fn)
    await add_all(scheduler, controller)
    assert await scheduler.on_trial_result(controller, b, {}) == TrialScheduler.CONTINUE
    assert await scheduler.on_trial_result(controller, a, {}) == TrialScheduler.PAUSE
    assert controller.resources[a.trial_id] == {"CPU": 7.0}  # 8 - 2 held + its own 1


async def test_base_scheduler_decisions_come_first():
    class StopAll(TrialScheduler):
        async def on_trial_result(self, tune_controller, trial, result):
            return TrialScheduler.STOP

    controller = FakeController(total={"CPU": 8.0})
    (a,) = running(controller, 1)
    scheduler = ResourceChangingScheduler(base_scheduler=StopAll())
    await add_all(scheduler, controller)
    assert await scheduler.on_trial_result(controller, a, {}) == TrialScheduler.STOP
    assert controller.resources == {}


def test_bad_arguments_are_rejected():
    with pytest.raises(ConfigError, match="increase_by"):
        DistributeResources(increase_by={"cpu": 0})
    with pytest.raises(TypeError, match="base_scheduler"):
        ResourceChangingScheduler(base_scheduler=object())
    with pytest.raises(TypeError, match="resources_allocation_function"):
        ResourceChangingScheduler(resources_allocation_function=42)
