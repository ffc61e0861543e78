"""Schedulers' decisions come out the same on every executor: ASHA stops, HyperBand pauses."""

from __future__ import annotations

import json
import os

import atune as tune
from atune.schedulers.async_hyperband import ASHAScheduler
from atune.schedulers.hyperband import HyperBandScheduler


def _lines(path: str) -> list[dict]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


Q = [8, 7, 6, 5, 4, 3, 2, 1]  # best first
MAX_ITER = 30


def linear(config):
    for i in range(1, MAX_ITER + 1):
        tune.report({"score": config["q"] * i})


async def test_asha_runs_the_best_trial_to_max_t_and_stops_the_worst_at_the_first_rung(tuner):
    # As in tests/integration/test_early_stopping.py. Rungs 16, 8, 4, 2; cutoff = the
    # median of a rung's rewards. q=8 has the highest reward at every rung: it runs to
    # max_t. With 4 CPUs, q <= 4 start only after a q >= 5 trial ended, at a rung >= 2,
    # so rung 2 holds a reward >= 10 by then, with at most the other q <= 4 rewards
    # (2, 4, 6, 8): any such set has a median > 4, so q = 1, 2 stop at once.
    sched = ASHAScheduler(
        max_t=MAX_ITER, grace_period=2, reduction_factor=2, metric="score", mode="max"
    )
    grid = await tuner(
        linear, param_space={"q": tune.grid_search(Q)}, tune_config=tune.TuneConfig(scheduler=sched)
    ).fit()
    iters = {r.config["q"]: r.metrics["training_iteration"] for r in grid}
    assert iters[8] == MAX_ITER
    assert iters[1] == iters[2] == 2
    assert sum(iters.values()) < len(Q) * MAX_ITER
    assert sched.debug_string().startswith(f"Using AsyncHyperBand: num_stopped={len(Q)}\n")


#: Quality per trial, in creation order. With max_t=9 and eta=3, trials 0-2 fill
#: bracket 0 (run to 9, no halving) and trials 3-7 bracket 1 (halved at 3: the best
#: two of q = 8, 4, 7, 5, 6 go on to 9, the others stop at 3).
QUALITIES = [1, 2, 3, 8, 4, 7, 5, 6]
EXPECTED_END = {1: 9, 2: 9, 3: 9, 8: 9, 7: 9, 4: 3, 5: 3, 6: 3}


class Restores(tune.Callback):
    """Counts restarts from a checkpoint, per trial id."""

    def __init__(self) -> None:
        self.restored: dict[str, int] = {}

    def on_trial_restore(self, iteration, trials, trial, **info):
        self.restored[trial.trial_id] = self.restored.get(trial.trial_id, 0) + 1


class Linear(tune.Trainable):
    """score = q * i, with ``i`` its own step counter, saved and restored."""

    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"score": self.config["q"] * self.i, "i": self.i}

    def save_checkpoint(self, checkpoint_dir):
        return {"i": self.i}

    def load_checkpoint(self, checkpoint):
        self.i = checkpoint["i"]


async def test_hyperband_halves_pauses_and_resumes_a_class_trainable(tuner):
    # As in tests/integration/test_hyperband.py.
    scheduler = HyperBandScheduler(max_t=9, reduction_factor=3, metric="score", mode="max")
    restores = Restores()
    grid = await tuner(
        Linear,
        param_space={"q": tune.grid_search(QUALITIES)},
        tune_config=tune.TuneConfig(scheduler=scheduler),
        callbacks=[restores],
    ).fit()
    assert grid.num_errors == 0
    assert {r.config["q"]: r.metrics["training_iteration"] for r in grid} == EXPECTED_END
    # Of the two survivors of bracket 1, at most one was the last to reach the
    # milestone (it went straight on); the other was paused and resumed.
    by_q = {r.config["q"]: r for r in grid}
    survivors = [by_q[7].metrics["trial_id"], by_q[8].metrics["trial_id"]]
    assert any(restores.restored.get(tid) for tid in survivors), restores.restored
    for result in grid:
        lines = _lines(result.path)
        end = EXPECTED_END[result.config["q"]]
        assert [r["training_iteration"] for r in lines] == list(range(1, end + 1))
        # The trainable's own counter continued from the checkpoint, not from scratch.
        assert [r["i"] for r in lines] == list(range(1, end + 1))
    assert scheduler.debug_string().splitlines()[0] == (
        "Using HyperBand: num_stopped=3 total_brackets=2"
    )
