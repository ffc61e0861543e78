"""Custom schedulers, searchers and stoppers plugged into a real run, on every executor."""

from __future__ import annotations

import json
import os
import threading

import pytest

import atune as tune
from atune.schedulers import FIFOScheduler, TrialScheduler
from atune.search import Searcher, SyncSearcher


def _lines(path: str) -> list[dict]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


class Stepper(tune.Trainable):
    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"i": self.i, "done": self.i >= 6}

    def save_checkpoint(self, checkpoint_dir):
        return {"i": self.i}

    def load_checkpoint(self, checkpoint):
        self.i = checkpoint["i"]


class PauseOnce(FIFOScheduler):
    """Pauses the first trial at iteration 2, once; it resumes when the others are done."""

    requires_sync_point = True

    def __init__(self):
        super().__init__()
        self.paused = False
        self.events = []

    async def on_trial_result(self, tune_controller, trial, result):
        self.events.append((trial.trial_id, result["i"]))
        if not self.paused and result["i"] == 2:
            self.paused = True
            return TrialScheduler.PAUSE
        return TrialScheduler.CONTINUE

    async def choose_trial_to_run(self, tune_controller):
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == "PENDING" and tune_controller.has_resources_for_trial(trial):
                return trial
        if all(t.status != "PENDING" for t in trials):
            for trial in trials:
                if trial.status == "PAUSED" and tune_controller.has_resources_for_trial(trial):
                    return trial
        return None


async def test_paused_trial_resumes_from_its_checkpoint(tuner):
    scheduler = PauseOnce()
    grid = await tuner(
        Stepper,
        param_space={"k": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=1),
    ).fit()
    first = grid[0]
    assert first.metrics["i"] == 6
    assert [r["i"] for r in _lines(first.path)] == [1, 2, 3, 4, 5, 6]
    assert [r["training_iteration"] for r in _lines(first.path)] == [1, 2, 3, 4, 5, 6]
    # The paused trial reported nothing between its pause and the other trial's run.
    order = [tid for tid, _ in scheduler.events]
    other = grid[1].metrics["trial_id"]
    assert order.index(other) > 0 and order[order.index(other) - 1] == first.metrics["trial_id"]


class StopAtThree(FIFOScheduler):
    requires_sync_point = True

    async def on_trial_result(self, tune_controller, trial, result):
        return TrialScheduler.STOP if result["training_iteration"] == 3 else TrialScheduler.CONTINUE


def counts_iterations(config):
    done = os.path.join(config["dir"], f"progress_{tune.get_context().get_trial_id()}")
    for i in range(1, 1000):
        tune.report({"i": i})
        with open(done, "w") as f:
            f.write(str(i))  # written only once the driver let the trainable go on


async def test_sync_point_keeps_the_trainable_at_the_decision(tuner, tmp_path):
    grid = await tuner(
        counts_iterations,
        param_space={"dir": str(tmp_path)},
        tune_config=tune.TuneConfig(scheduler=StopAtThree()),
    ).fit()
    assert grid[0].metrics["i"] == 3
    (progress,) = tmp_path.glob("progress_*")
    assert progress.read_text() == "2"  # never ran past the report of iteration 3


class ThreeConfigs(Searcher):
    def __init__(self):
        super().__init__(metric="score", mode="max")
        self.values = [3, 1, 2]
        self.completed = {}
        self.results_seen = 0

    async def suggest(self, trial_id):
        if not self.values:
            return Searcher.FINISHED
        return {"v": self.values.pop(0)}

    async def on_trial_result(self, trial_id, result):
        self.results_seen += 1

    async def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed[trial_id] = (result["score"], error)


def score_it(config):
    for i in range(3):
        tune.report({"score": config["v"] * 10 + i})


async def test_custom_searcher_drives_the_experiment(tuner):
    searcher = ThreeConfigs()
    grid = await tuner(
        score_it, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1)
    ).fit()
    assert sorted(r.config["v"] for r in grid) == [1, 2, 3]
    assert sorted(searcher.completed.values()) == [(12, False), (22, False), (32, False)]
    assert searcher.results_seen == 9
    assert grid.get_best_result(metric="score", mode="max").config["v"] == 3


class StopAllAtFive(tune.Stopper):
    def __init__(self):
        self.hit = False

    def __call__(self, trial_id, result):
        if result["i"] >= 5:
            self.hit = True
        return False

    def stop_all(self):
        return self.hit


def forever(config):
    i = 0
    while True:
        i += 1
        tune.report({"i": i})


async def test_stopper_stop_all_ends_every_trial(tuner):
    grid = await tuner(
        forever, tune_config=tune.TuneConfig(num_samples=3), stop=StopAllAtFive()
    ).fit()
    assert grid.num_terminated == len(grid) >= 1
    assert max(r.metrics.get("i", 0) for r in grid) >= 5


async def test_scheduler_by_name_and_bad_name(tuner):
    grid = await tuner(
        score_it, param_space={"v": 1}, tune_config=tune.TuneConfig(scheduler="fifo")
    ).fit()
    assert grid[0].metrics["score"] == 12
    with pytest.raises(tune.ConfigError, match="`scheduler` must be one of"):
        tuner(score_it, tune_config=tune.TuneConfig(scheduler="nope"))


class SyncGrid(Searcher):
    """A searcher written without async: plain methods work too."""

    def __init__(self):
        super().__init__()
        self.n = 0
        self.told = []

    def suggest(self, trial_id):
        self.n += 1
        return {"v": self.n}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.told.append(result["score"])


class ThreadedGrid(SyncGrid, SyncSearcher):
    """The same on the SyncSearcher base: suggest/on_trial_complete run in a thread."""

    def suggest(self, trial_id):
        self.threads.add(threading.get_ident())
        return super().suggest(trial_id)

    def __init__(self):
        super().__init__()
        self.threads = set()


@pytest.mark.parametrize("cls", [SyncGrid, ThreadedGrid])
async def test_sync_searcher_gets_num_samples_and_its_state_is_saved(tuner, cls):
    import pickle

    searcher = cls()
    grid = await tuner(
        score_it, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=4)
    ).fit()
    assert sorted(r.config["v"] for r in grid) == [1, 2, 3, 4]
    assert sorted(searcher.told) == [12, 22, 32, 42]
    with open(os.path.join(grid.experiment_path, "searcher-state.pkl"), "rb") as f:
        state = pickle.load(f)
    assert state["searcher"]["n"] == 4  # the state of the searcher given to the Tuner
    if cls is ThreadedGrid:
        assert threading.get_ident() not in searcher.threads


class Halving07(tune.search.SuggestionAlgorithm):
    """A 0.7-style searcher, as written for Ray Tune 0.7."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.x = 64
        self.results = []

    def _suggest(self, trial_id):
        if self.x < 1:
            return None
        self.x //= 2
        return {"v": self.x}

    def on_trial_complete(self, trial_id, result=None, error=False, early_terminated=False):
        self.results.append(result["score"])


async def test_07_suggestion_algorithm_drives_a_run(tuner):
    searcher = Halving07(max_concurrent=2, reward_attr="score")
    grid = await tuner(
        score_it, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=4)
    ).fit()
    assert sorted(r.config["v"] for r in grid) == [4, 8, 16, 32]
    assert len(searcher.results) == 4
