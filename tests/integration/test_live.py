"""The live handle: ``async with tuner.start() as run`` — watch and steer from async code."""

from __future__ import annotations

import time

import anyio
import pytest

import atune as tune
from atune.errors import UnknownTrialError
from atune.live import EVENT_KINDS


def counter(config):
    for i in range(1, config.get("steps", 30) + 1):
        time.sleep(config.get("sleep", 0.02))
        tune.report({"i": i, "score": config["x"] * i})


def _tuner(storage: str, space: dict, **tc) -> tune.Tuner:
    return tune.Tuner(
        counter,
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="max", **tc),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )


async def test_events_follow_every_trial_to_the_end(storage):
    tuner = _tuner(storage, {"x": tune.grid_search([1, 2]), "steps": 5})
    kinds: dict[str | None, list[str]] = {}
    async with tuner.start() as run:
        async for event in run.events():
            assert event.kind in EVENT_KINDS and event.time > 0
            kinds.setdefault(event.trial_id, []).append(event.kind)
            if event.kind == "result":
                assert event.result is not None and "score" in event.result
    grid = await run.wait()
    assert len(grid) == 2 and not grid.errors
    assert kinds.pop(None) == ["experiment_ended"]
    for seen in kinds.values():
        assert seen[0] == "trial_started" and seen[-1] == "trial_completed"
        assert seen.count("result") == 5


async def test_commands_apply_at_result_boundaries_and_return_once_applied(storage):
    space = {"x": tune.grid_search([1, 2, 3]), "steps": 200, "sleep": 0.02}
    tuner = _tuner(storage, space, max_concurrent_trials=3)
    async with tuner.start() as run:
        started: list[str] = []
        async for event in run.events():
            if event.kind == "result" and event.trial_id not in started:
                started.append(event.trial_id)
            if len(started) == 3:
                break
        a, b, c = started
        await run.stop_trial(a)
        assert {t.trial_id: t.status for t in run.trials}[a] == "TERMINATED"
        await run.pause_trial(b)
        paused = {t.trial_id: t for t in run.trials}[b]
        assert paused.status == "PAUSED"
        at_pause = paused.last_result["i"]
        await anyio.sleep(0.5)
        assert {t.trial_id: t for t in run.trials}[b].last_result["i"] == at_pause
        await run.resume_trial(b)
        new_id = await run.add_trial({"x": 10, "steps": 3, "sleep": 0.01})
        assert new_id in {t.trial_id for t in run.trials}
        await run.stop_trial(c)  # make room for the new trial, and wait for it to end
        with anyio.fail_after(60):
            while {t.trial_id: t.status for t in run.trials}[new_id] != "TERMINATED":
                await anyio.sleep(0.05)
        with pytest.raises(UnknownTrialError, match="no trial 'nope'"):
            await run.stop_trial("nope")
        with pytest.raises(UnknownTrialError, match="has ended already"):
            await run.pause_trial(a)
        await run.stop()
    grid = await run.wait()
    by_id = {r.metrics["trial_id"]: r for r in grid}
    assert by_id[a].metrics["i"] < 200  # stopped where it was
    assert new_id in by_id
    assert by_id[new_id].config["x"] == 10


async def test_an_exception_in_the_block_stops_the_experiment_and_it_stays_restorable(storage):
    space = {"x": tune.grid_search([1, 2]), "steps": 10_000, "sleep": 0.01}
    tuner = _tuner(storage, space)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        async with tuner.start() as run:
            async for event in run.events():
                if event.kind == "result":
                    raise RuntimeError("boom")
    assert time.monotonic() - start < 60
    assert tune.Tuner.can_restore(run.experiment_path)


async def test_a_slow_consumer_never_holds_the_trials_back(storage):
    space = {"x": tune.grid_search([1, 2]), "steps": 3_000, "sleep": 0}
    tuner = _tuner(storage, space)
    dropped = 0
    results = 0
    async with tuner.start() as run:
        async for event in run.events(maxsize=16):
            dropped += event.dropped
            results += event.kind == "result"
            if event.kind == "result":
                await anyio.sleep(0.05)  # far slower than the trials report
    grid = await run.wait()
    assert sum(r.metrics["training_iteration"] for r in grid) == 6_000  # all recorded
    assert dropped > 0 and results + dropped == 6_000


async def test_several_consumers_each_see_the_end(storage):
    tuner = _tuner(storage, {"x": tune.grid_search([1, 2]), "steps": 5})
    ends = []

    async def consume(run):
        async for event in run.events():
            if event.kind == "experiment_ended":
                ends.append(event)

    async with tuner.start() as run, anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(consume, run)
    assert len(ends) == 3


def test_fit_is_start_with_no_consumer(storage):
    grid = _tuner(storage, {"x": 1, "steps": 3}).fit_sync()
    assert grid[0].metrics["i"] == 3


def _live_trial_actors() -> list[dict]:
    from ray._private import state

    return [
        a
        for a in state.actors().values()
        if a["State"] != "DEAD" and "TrialActor" in a.get("ActorClassName", "")
    ]


async def test_cancelling_the_host_task_kills_every_actor_and_restore_finishes(storage):
    space = {"x": tune.grid_search([1, 2, 3]), "steps": 40, "sleep": 0.05}
    tuner = _tuner(storage, space, max_concurrent_trials=2)
    path = None
    with anyio.move_on_after(120):
        async with anyio.create_task_group() as host:

            async def service() -> None:
                nonlocal path
                async with tuner.start() as run:
                    path = run.experiment_path
                    await run.wait()

            host.start_soon(service)
            while not _live_trial_actors():
                await anyio.sleep(0.05)
            await anyio.sleep(1.0)  # the trials report
            start = time.monotonic()
            host.cancel_scope.cancel()
    assert time.monotonic() - start < 30
    with anyio.fail_after(30):
        while _live_trial_actors():
            await anyio.sleep(0.1)
    assert path is not None and tune.Tuner.can_restore(path)
    grid = await tune.Tuner.restore(path, counter).fit()
    assert len(grid) == 3 and not grid.errors
    assert all(r.metrics["i"] == 40 for r in grid)
