"""Early stopping on real Ray: the good configs run on, the bad stop early.

The median stopping rule end to end, and ASHA's and the median rule's decisions
against Ray Tune's on random streams. ASHA end to end is in the executor contract
suite (tests/contract/test_schedulers.py).

The trials score ``q * iteration``, so the order of the configs is known in advance.
Configs are listed best first: with a FIFO start order the good trials fill the
rungs (or the median's samples) before the bad ones arrive, which is what makes the
asserted outcomes certain rather than likely (reasoning next to each test).
"""

from __future__ import annotations

import random

import pytest

import atune as tune
from atune._trial import Trial
from atune.schedulers.async_hyperband import AsyncHyperBandScheduler
from atune.schedulers.median_stopping_rule import MedianStoppingRule
from tests.unit.fake_controller import FakeController, make_trial

Q = [8, 7, 6, 5, 4, 3, 2, 1]  # best first
MAX_ITER = 30


def train(config):
    for i in range(1, MAX_ITER + 1):
        tune.report({"score": config["q"] * i})


class Linear(tune.Trainable):
    """``score = q * iteration``; checkpoints so that a paused trial resumes where it was."""

    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"score": self.config["q"] * self.i, "done": self.i >= MAX_ITER}

    def save_checkpoint(self, checkpoint_dir):
        return {"i": self.i}

    def load_checkpoint(self, checkpoint):
        self.i = checkpoint["i"]


def tuner(trainable, scheduler, storage, **tune_kwargs):
    return tune.Tuner(
        trainable,
        param_space={"q": tune.grid_search(Q)},
        tune_config=tune.TuneConfig(scheduler=scheduler, **tune_kwargs),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )


def iterations(grid) -> dict[int, int]:
    return {r.config["q"]: r.metrics["training_iteration"] for r in grid}


# ASHA's outcome on real trials is in tests/contract/test_schedulers.py (both executors).


async def test_median_stopping_rule_stops_the_trials_below_the_median(storage):
    # One trial at a time, so the order of events is fixed:
    # q=8, 7, 6 reach the grace period with fewer than 3 samples while trials wait:
    # each yields (PAUSE, checkpointed) once; min_time_slice keeps it to once.
    # q=5 then sees 3 samples at t=3 (means 24, 21, 18; median 21 > 15): STOP, and
    # every q <= 4 likewise. The paused q=8, 7, 6 resume from their checkpoints, find
    # fewer than 3 trials beyond their time and run to the end.
    sched = MedianStoppingRule(
        time_attr="training_iteration",
        metric="score",
        mode="max",
        grace_period=3,
        min_time_slice=MAX_ITER,
    )
    grid = await tuner(Linear, sched, storage, max_concurrent_trials=1).fit()
    iters = iterations(grid)
    assert iters == {8: 30, 7: 30, 6: 30, 5: 3, 4: 3, 3: 3, 2: 3, 1: 3}
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=5."


async def test_median_stopping_without_hard_stop_pauses_and_resumes_fifo(storage):
    # As above, but q <= 5 are paused at t=3 instead of stopped; once no trial is
    # pending, the paused ones resume in order from their checkpoints and, no longer
    # judged, run to the end.
    sched = MedianStoppingRule(
        time_attr="training_iteration",
        metric="score",
        mode="max",
        grace_period=3,
        min_time_slice=MAX_ITER,
        hard_stop=False,
    )
    grid = await tuner(Linear, sched, storage, max_concurrent_trials=1).fit()
    assert iterations(grid) == dict.fromkeys(Q, MAX_ITER)
    assert all(r.metrics["score"] == r.config["q"] * MAX_ITER for r in grid)
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=5."


# --------------------------------------------------- same decisions as Ray Tune
async def test_asha_decides_as_ray_tune_on_random_streams():
    ray_schedulers = pytest.importorskip("ray.tune.schedulers")
    rng = random.Random(0)
    for _ in range(300):
        kwargs = dict(
            time_attr="t",
            metric="m",
            mode=rng.choice(["min", "max"]),
            max_t=rng.choice([10, 20, 30, 100]),
            grace_period=rng.choice([1, 2, 3]),
            reduction_factor=rng.choice([2, 3, 4, 1.5]),
            brackets=rng.choice([1, 2, 3]),
            stop_last_trials=rng.choice([True, False]),
        )
        theirs = ray_schedulers.AsyncHyperBandScheduler(**kwargs)
        ours = AsyncHyperBandScheduler(**kwargs, seed=0)
        ctl = FakeController()
        trials = [ctl.add(make_trial(i)) for i in range(rng.randint(1, 10))]
        for trial in trials:
            theirs.on_trial_add(ctl, trial)
            await ours.on_trial_add(ctl, trial)
            index = rng.randrange(kwargs["brackets"])  # the same bracket in both
            theirs._trial_info[trial.trial_id] = theirs._brackets[index]
            ours._trial_bracket[trial.trial_id] = index
        clock = dict.fromkeys(range(len(trials)), 0.0)
        live = set(clock)
        while live:
            i = rng.choice(sorted(live))
            clock[i] += rng.choice([1, 1, 1, 2, 0.5, 5])
            result = {"t": clock[i], "m": rng.choice([rng.randint(-5, 5), rng.random()])}
            decision = await ours.on_trial_result(ctl, trials[i], result)
            assert decision == theirs.on_trial_result(ctl, trials[i], result), kwargs
            if decision == "STOP" or clock[i] > 150:
                live.discard(i)
        if ours.milestones == [[m for m, _ in b._rungs] for b in theirs._brackets]:
            assert ours.debug_string() == theirs.debug_string()


async def test_median_stopping_rule_decides_as_ray_tune_on_random_streams():
    ray_schedulers = pytest.importorskip("ray.tune.schedulers")
    rng = random.Random(0)
    for _ in range(300):
        kwargs = dict(
            time_attr="t",
            metric="m",
            mode=rng.choice(["min", "max"]),
            grace_period=rng.choice([0, 1, 3]),
            min_samples_required=rng.choice([1, 2, 3]),
            min_time_slice=rng.choice([0, 2]),
            hard_stop=rng.choice([True, False]),
        )
        theirs = ray_schedulers.MedianStoppingRule(**kwargs)
        ours = MedianStoppingRule(**kwargs)
        ctl = FakeController()
        trials = [ctl.add(make_trial(i)) for i in range(rng.randint(1, 8))]
        for trial in trials:
            theirs.on_trial_add(ctl, trial)
            await ours.on_trial_add(ctl, trial)
        clock = dict.fromkeys(range(len(trials)), 0)
        live = set(clock)
        while live:
            i = rng.choice(sorted(live))
            for j in live - {i}:
                trials[j].status = rng.choice([Trial.RUNNING, Trial.PENDING, Trial.PAUSED])
            trials[i].status = Trial.RUNNING
            clock[i] += rng.choice([1, 1, 2])
            # Rewards on a coarse grid: many ties, so the comparison's edge is exercised.
            result = {"t": clock[i], "m": rng.randint(-4, 4) / 2}
            decision = await ours.on_trial_result(ctl, trials[i], result)
            assert decision == theirs.on_trial_result(ctl, trials[i], result), kwargs
            if decision == "STOP" or clock[i] > 15:
                live.discard(i)
                trials[i].status = Trial.TERMINATED
        assert ours.debug_string() == theirs.debug_string()
