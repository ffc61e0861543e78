"""``Tuner.restore`` / ``Tuner.can_restore`` in one process: what runs again, and from where.

An experiment is interrupted by cancelling ``fit()`` (as a service or a Ctrl-C does),
or ends with errors; ``Tuner.restore`` then continues it as asked. Killing the driver
process itself is in tests/newcomer/test_driver_kill.py.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import anyio
import pytest

import atune as tune
from atune._engine import journal as J
from atune.errors import AtuneError

STEPS = 12


def counter(config):
    start = 0
    if (ckpt := tune.get_checkpoint()) is not None:
        with open(os.path.join(ckpt.path, "i.txt")) as f:
            start = int(f.read())
    with open("starts.txt", "a") as f:
        f.write(f"{start}\n")
    for i in range(start + 1, STEPS + 1):
        time.sleep(config.get("sleep", 0.02))
        if config.get("fail_at") == i and not os.path.exists("failed-once"):
            open("failed-once", "w").close()
            raise RuntimeError(f"failing at {i}")
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "i.txt"), "w") as f:
            f.write(str(i))
        tune.report(
            {"i": i, "score": config["x"] * i}, checkpoint=tune.Checkpoint.from_directory(d)
        )


def _tuner(storage: str, name: str, space: dict, **tc) -> tune.Tuner:
    return tune.Tuner(
        counter,
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="max", **tc),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )


async def _interrupt_after(
    tuner: tune.Tuner, results_wanted: int, path: Path, *, finished: int = 0
) -> None:
    """Run fit() and cancel it once ``results_wanted`` results are in the trials' files
    (and ``finished`` trials have all their results)."""

    def rows() -> list[int]:
        return [len(p.read_text().splitlines()) for p in path.glob("*/result.json")]

    def ready() -> bool:
        counts = rows()
        return sum(counts) >= results_wanted and counts.count(STEPS) >= finished

    with anyio.move_on_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tuner.fit)
            while not ready():
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()


def _rows(trial_dir: str) -> list[dict]:
    with open(os.path.join(trial_dir, "result.json")) as f:
        return [json.loads(line) for line in f]


def _starts(trial_dir: str) -> list[int]:
    with open(os.path.join(trial_dir, "starts.txt")) as f:
        return [int(x) for x in f.read().split()]


def test_can_restore(storage: str, tmp_path: Path) -> None:
    assert not tune.Tuner.can_restore(tmp_path)
    assert not tune.Tuner.can_restore(tmp_path / "missing")
    grid = _tuner(storage, "done", {"x": tune.grid_search([1, 2])}).fit_sync()
    assert len(grid) == 2
    assert tune.Tuner.can_restore(os.path.join(storage, "done"))
    with pytest.raises(AtuneError, match="holds no atune experiment"):
        tune.Tuner.restore(str(tmp_path), counter)


async def test_cancelled_fit_resumes_from_checkpoints_and_never_reruns_finished(
    storage: str,
) -> None:
    space = {"x": tune.grid_search([1, 2, 3, 4, 5, 6]), "sleep": 0.05}
    tuner = _tuner(storage, "cut", space, max_concurrent_trials=2)
    path = Path(storage) / "cut"
    await _interrupt_after(tuner, 2 * STEPS + 5, path)
    assert tune.Tuner.can_restore(path)
    before = {p.parent.name: p.read_text() for p in path.glob("*/result.json")}
    grid = await tune.Tuner.restore(str(path), counter).fit()
    assert len(grid) == 6 and not grid.errors
    finished_before = 0
    for result in grid:
        trial_dir = result.path
        rows = _rows(trial_dir)
        assert [r["training_iteration"] for r in rows] == list(range(1, STEPS + 1))
        assert all(r["i"] == r["training_iteration"] for r in rows)
        starts = _starts(trial_dir)
        name = os.path.basename(trial_dir)
        recorded = len(before.get(name, "").splitlines())
        if recorded == STEPS:
            finished_before += 1
            assert starts == [0], "a finished trial ran again"
        elif len(starts) > 1:
            # Every recorded result came with a checkpoint: the trial goes on from its
            # last one (a trial cut before its first result starts again from scratch).
            assert starts[-1] == recorded, f"{recorded} results recorded, restarts: {starts}"
    assert finished_before >= 1
    # The grid's metrics are those of the whole experiment, old trials included.
    assert grid.get_best_result().config["x"] == 6


async def test_searcher_continues_without_repeating_or_exceeding_num_samples(
    storage: str,
) -> None:
    space = {"x": tune.uniform(0, 1), "sleep": 0.05}
    tuner = _tuner(storage, "random", space, num_samples=6, max_concurrent_trials=2)
    path = Path(storage) / "random"
    await _interrupt_after(tuner, STEPS + 3, path)
    grid = await tune.Tuner.restore(str(path), counter).fit()
    configs = [r.config["x"] for r in grid]
    assert len(grid) == 6 and len(set(configs)) == 6


def test_errored_trials_stay_errored_or_resume_or_restart(storage: str) -> None:
    space = {"x": tune.grid_search([1, 2]), "fail_at": tune.grid_search([None, 7])}
    grid = _tuner(storage, "err", space).fit_sync()
    assert len(grid.errors) == 2
    path = os.path.join(storage, "err")

    grid = tune.Tuner.restore(path, counter).fit_sync()  # errored trials are left alone
    assert len(grid.errors) == 2

    grid = tune.Tuner.restore(path, counter, resume_errored=True).fit_sync()
    assert not grid.errors
    for result in grid:
        rows = _rows(result.path)
        assert [r["training_iteration"] for r in rows] == list(range(1, STEPS + 1))
        if result.config["fail_at"] == 7:
            assert _starts(result.path) == [0, 6]  # from its checkpoint at iteration 6
        else:
            assert _starts(result.path) == [0]


def test_restart_errored_starts_them_over(storage: str) -> None:
    space = {"x": 1, "fail_at": 5}
    grid = _tuner(storage, "restart", space).fit_sync()
    assert len(grid.errors) == 1
    path = os.path.join(storage, "restart")
    grid = tune.Tuner.restore(path, counter, restart_errored=True).fit_sync()
    (result,) = grid
    assert result.error is None
    assert _starts(result.path) == [0, 0]
    rows = _rows(result.path)
    assert [r["training_iteration"] for r in rows] == list(range(1, STEPS + 1))
    # The first attempt's rows are kept apart, marked as discarded.
    with open(os.path.join(result.path, "result.discarded.json")) as f:
        assert [json.loads(line)["training_iteration"] for line in f] == [1, 2, 3, 4]


async def test_resume_unfinished_false_ends_them_where_they_were(storage: str) -> None:
    space = {"x": tune.grid_search([1, 2, 3]), "sleep": 0.1}
    tuner = _tuner(storage, "noresume", space, max_concurrent_trials=1)
    path = Path(storage) / "noresume"
    await _interrupt_after(tuner, 3, path)
    grid = await tune.Tuner.restore(str(path), counter, resume_unfinished=False).fit()
    assert all(len(_starts(r.path)) == 1 for r in grid if os.path.exists(r.path))
    assert {r.metrics.get("training_iteration", 0) < STEPS for r in grid} == {True}


def test_unpicklable_param_space_must_be_given_again(storage: str) -> None:
    lock = threading.Lock()

    def pick(spec):  # runs on the driver: fine for Ray, but holds a lock
        with lock:
            return 1

    space = {"x": tune.sample_from(pick)}
    _tuner(storage, "lock", space).fit_sync()
    path = os.path.join(storage, "lock")
    with pytest.raises(AtuneError, match="param_space=") as info:
        tune.Tuner.restore(path, counter)
    assert "could not be pickled" in str(info.value)
    grid = tune.Tuner.restore(path, counter, param_space=space).fit_sync()
    assert len(grid) == 1


def test_a_moved_experiment_directory_restores(storage: str, tmp_path: Path) -> None:
    space = {"x": 1, "fail_at": 4}
    _tuner(storage, "moved", space).fit_sync()
    target = tmp_path / "elsewhere" / "moved"
    target.parent.mkdir()
    os.rename(os.path.join(storage, "moved"), target)
    grid = tune.Tuner.restore(str(target), counter, resume_errored=True).fit_sync()
    (result,) = grid
    assert result.error is None
    assert result.path.startswith(str(target))
    assert _starts(result.path) == [0, 3]


class _Cut(Exception):
    """Leaves the live block: the experiment stops there, restorable."""


@pytest.mark.parametrize("scheduler", ["asha", "pbt"])
async def test_a_scheduler_continues_with_its_state(storage: str, scheduler: str) -> None:
    from atune.schedulers import ASHAScheduler, PopulationBasedTraining

    sched = (
        ASHAScheduler(max_t=STEPS, grace_period=2, reduction_factor=2)
        if scheduler == "asha"
        else PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=4,
            hyperparam_mutations={"x": tune.uniform(0.5, 6)},
            seed=1,
        )
    )
    space = {"x": tune.grid_search([1, 2, 3, 4]), "sleep": 0.05}
    tuner = _tuner(storage, scheduler, space, scheduler=sched, max_concurrent_trials=2)
    path = Path(storage) / scheduler
    # Cut once a trial has completed (the live handle says exactly when).
    with pytest.raises(_Cut):
        async with tuner.start() as run:
            async for event in run.events():
                if event.kind == "trial_completed":
                    raise _Cut
    at_cut, _ = J.load(str(path))
    # Finished before the cut: they never report again, so only the saved state
    # of the scheduler can know them.
    seen = [i for i in at_cut.order if at_cut.trials[i]["status"] == "TERMINATED"]
    assert seen
    restored = tune.Tuner.restore(str(path), counter)
    grid = await restored.fit()
    assert len(grid) == 4 and not grid.errors
    if scheduler == "asha":  # (a PBT exploit continues from the donor's iteration)
        for result in grid:
            its = [r["training_iteration"] for r in _rows(result.path)]
            assert its == list(range(1, len(its) + 1)), its  # one history, no gap
    # The scheduler that ran on is the one saved, with what it knew of the first run's
    # trials (a fresh one would know only the trials re-added to it).
    state, _ = J.load(str(path))
    back = J.loads_with_trials(state.scheduler, {}, None)
    assert type(back) is type(sched)
    for trial_id in seen:
        if scheduler == "asha":
            assert any(trial_id in recorded for b in back._brackets for _, recorded in b.rungs)
        else:
            assert back._state[trial_id].last_score is not None
            assert trial_id in back._gone
