"""Model-based searchers fill every free trial slot, and concurrency caps hold, on a real Ray.

* Each library searcher of the searcher contract runs two 2-CPU trials at once on the
  4-CPU test cluster (the controller asks it for a config as soon as a slot is free),
  never more.
* ``ConcurrencyLimiter`` and ``TuneConfig(max_concurrent_trials=...)`` reach their cap
  and never exceed it.
* With HyperBandForBOHB, a paused trial keeps its ConcurrencyLimiter slot until it
  completes (as in Ray Tune), and the experiment still ends.

Overlap is measured from the times the trainables themselves record, not from the
test's wall clock.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import atune as tune
from atune.search import ConcurrencyLimiter
from tests.integration.test_bohb import Curve  # checkpointed, so HyperBand can pause it
from tests.unit.test_searcher_contract import CASES, Case, case

#: How long each timed trial sleeps: long enough for the trials of one wave to overlap.
SLEEP_S = 1.0
#: A run that takes longer than this is stuck (e.g. a concurrency deadlock).
FIT_TIMEOUT_S = 180
#: The library searchers of the contract (the wrappers of BasicVariantGenerator aside).
LIBRARY_SEARCHERS = ["optuna", "hyperopt", "bayesopt", "nevergrad", "zoopt", "bohb", "ax"]


def _loss(config: dict[str, Any]) -> float:
    return (config["x"] - 1.0) ** 2 + (0.5 if config.get("c") == "b" else 0.0)


def timed(config: dict[str, Any]) -> None:
    t0 = time.time()
    time.sleep(SLEEP_S)
    t1 = time.time()
    tune.report({"loss": _loss(config), "start": t0, "end": t1})


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that are open at the same instant."""
    # At equal times an end comes before a start: touching intervals do not overlap.
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak


async def fit_timed(trainable, storage, space, searcher, num_samples, **tune_config):
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=num_samples,
            search_alg=searcher,
            reuse_actors=True,
            **tune_config,
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    with anyio.fail_after(FIT_TIMEOUT_S):
        grid = await tuner.fit()
    assert not grid.errors, grid.errors
    assert len(grid) == num_samples
    for result in grid:
        assert result.metrics["training_iteration"] == 1
        assert result.metrics["end"] - result.metrics["start"] >= SLEEP_S * 0.9
    return [(r.metrics["start"], r.metrics["end"]) for r in grid]


def _searcher(name: str, c: Case, seed: int = 0):
    if name == "zoopt":
        # ZOOpt keeps at most `parallel_num` trials unfinished (1 by default, as in
        # Ray Tune): allow two, the slots of the cluster.
        from atune.search.zoopt import ZOOptSearch

        return ZOOptSearch(budget=20, seed=seed, parallel_num=2)
    return c.make(seed, None)


def test_the_library_searchers_are_the_contracts():
    assert set(LIBRARY_SEARCHERS) <= set(CASES)


@pytest.mark.parametrize("name", LIBRARY_SEARCHERS)
async def test_a_model_based_searcher_fills_both_two_cpu_slots(name, storage):
    c = case(name)
    intervals = await fit_timed(
        tune.with_resources(timed, {"cpu": 2}), storage, c.space, _searcher(name, c), 6
    )
    # 4 CPUs / 2 per trial: two trials at once, not one at a time, and never three.
    assert max_overlap(intervals) == 2, sorted(intervals)


async def test_zoopt_keeps_its_own_parallel_num(storage):
    """ZOOpt's default parallel_num=1 holds even with free slots: one trial at a time."""
    c = case("zoopt")
    intervals = await fit_timed(
        tune.with_resources(timed, {"cpu": 2}), storage, c.space, c.make(0, None), 3
    )
    assert max_overlap(intervals) == 1, sorted(intervals)


async def test_concurrency_limiter_cap_is_reached_and_held(storage):
    from atune.search.optuna import OptunaSearch

    c = case("optuna")
    limiter = ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=4)
    intervals = await fit_timed(timed, storage, c.space, limiter, 8)
    assert max_overlap(intervals) == 4, sorted(intervals)  # min(cap 4, 4 CPUs)
    assert not limiter._live  # every slot was given back


async def test_max_concurrent_trials_cap_is_reached_and_held(storage):
    from atune.search.optuna import OptunaSearch

    c = case("optuna")
    intervals = await fit_timed(
        timed, storage, c.space, OptunaSearch(seed=0), 6, max_concurrent_trials=2
    )
    assert max_overlap(intervals) == 2, sorted(intervals)  # 4 CPUs free, cap 2


# ------------------------------------------------------------ HyperBandForBOHB


class StatusLog(tune.Callback):
    """The trials' statuses at every step end, trial start/restore and result."""

    def __init__(self) -> None:
        self.samples: list[dict[str, str]] = []
        self.final: dict[str, str] = {}

    def _record(self, trials) -> None:
        self.samples.append({t.trial_id: t.status for t in trials})

    def on_step_end(self, iteration, trials, **info):
        self._record(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._record(trials)

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._record(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._record(trials)

    def on_experiment_end(self, trials, **info):
        self.final = {t.trial_id: t.status for t in trials}


def _count(sample: dict[str, str], *statuses: str) -> int:
    return sum(1 for status in sample.values() if status in statuses)


async def test_hyperband_for_bohb_pauses_keep_their_limiter_slot(storage):
    pytest.importorskip("hpbandster")
    from atune.schedulers import HyperBandForBOHB
    from atune.search.bohb import TuneBOHB

    log = StatusLog()
    num_samples = 6
    tuner = tune.Tuner(
        Curve,
        param_space={"height": tune.uniform(0, 10)},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            search_alg=TuneBOHB(seed=0),
            scheduler=HyperBandForBOHB(max_t=9, reduction_factor=3),
            num_samples=num_samples,
            max_concurrent_trials=2,
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[log]),
    )
    with anyio.fail_after(FIT_TIMEOUT_S):  # a limiter that never frees a slot hangs here
        grid = await tuner.fit()

    assert len(grid) == num_samples and not grid.errors
    assert log.samples
    live = [_count(s, "RUNNING", "PAUSED") for s in log.samples]
    assert max(live) == 2, live  # the cap is reached ...
    assert all(n <= 2 for n in live), live  # ... and never exceeded, paused trials included
    # A suggested trial holds its slot from PENDING on: the limiter's trials never
    # number more than 2 unfinished at once.
    unfinished = [_count(s, "PENDING", "RUNNING", "PAUSED") for s in log.samples]
    assert all(n <= 2 for n in unfinished), unfinished
    assert any(_count(s, "PAUSED") for s in log.samples), "HyperBand never paused a trial"
    assert len(log.final) == num_samples
    assert set(log.final.values()) == {"TERMINATED"}, log.final
