"""Which trials share a worker process, at the default ``reuse_actors=None`` and when set.

A function trainable is called afresh in a kept process by default; a class trainable
gets a new process unless ``reuse_actors=True``; a worker whose trial failed is never
given to another trial.
"""

from __future__ import annotations

import os

import pytest

import atune as tune


def who(config):
    ctx = tune.get_context()
    tune.report(
        {
            "pid": os.getpid(),
            "trial": ctx.get_trial_id(),
            "cwd": os.getcwd(),
            "had_checkpoint": tune.get_checkpoint() is not None,
            "x": config["x"],
        },
        checkpoint=None,
    )


class Who(tune.Trainable):
    def step(self):
        return {"pid": os.getpid(), "done": True}


def fails_once(config):
    if config["x"] == 1:
        raise RuntimeError("trial x=1 fails")
    tune.report({"pid": os.getpid()})


def _fit(trainable, space: dict, storage: str, **tc) -> tune.ResultGrid:
    tc.setdefault("max_concurrent_trials", 1)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(**tc),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit_sync()


def test_function_trials_share_a_process_and_each_starts_fresh(storage: str) -> None:
    grid = _fit(who, {"x": tune.grid_search([1, 2, 3, 4])}, storage)
    rows = [r.metrics for r in grid]
    assert len({m["pid"] for m in rows}) == 1  # one worker process for all four
    assert len({m["trial"] for m in rows}) == 4  # each its own session
    for result in grid:
        assert result.metrics["cwd"] == result.path  # each in its own directory
        assert not result.metrics["had_checkpoint"]


def test_short_trials_side_by_side_keep_reusing_their_workers(storage: str) -> None:
    # One-result trials two at a time: each ends while the other's worker may still be
    # starting, and its worker goes to the next trial all the same.
    grid = _fit(who, {"x": tune.grid_search(list(range(10)))}, storage, max_concurrent_trials=2)
    assert not grid.errors
    assert len({r.metrics["pid"] for r in grid}) <= 3


@pytest.mark.parametrize(
    ("trainable", "reuse"), [(who, False), (Who, None)], ids=["function-off", "class-default"]
)
def test_a_new_process_per_trial_when_not_reused(trainable, reuse, storage: str) -> None:
    grid = _fit(trainable, {"x": tune.grid_search([1, 2, 3])}, storage, reuse_actors=reuse)
    assert not grid.errors
    assert len({r.metrics["pid"] for r in grid}) == 3


def test_the_worker_of_a_failed_trial_is_not_reused(storage: str) -> None:
    grid = _fit(fails_once, {"x": tune.grid_search([1, 2, 3])}, storage)
    assert len(grid.errors) == 1
    pids = [r.metrics["pid"] for r in grid if r.error is None]
    assert len(pids) == 2 and len(set(pids)) == 1  # x=2 and x=3 share a new worker
