"""PB2: bounds, the GP bandit's data and suggestions, on synthetic results (no Ray)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from atune._trial import Trial
from atune.errors import ConfigError
from atune.schedulers._base import TrialScheduler
from atune.schedulers.pb2 import PB2, _Record, reward_changes
from tests.unit.fake_controller import FakeController, make_trial

pytest.importorskip("sklearn")

from atune.schedulers._pb2_gp import select_config

BOUNDS = {"lr": [1e-4, 1e-1], "batch": [16, 256], "opt": {"mom": [0.5, 0.99]}}


def make_pb2(**kwargs) -> PB2:
    kwargs.setdefault("time_attr", "training_iteration")
    kwargs.setdefault("metric", "score")
    kwargs.setdefault("mode", "max")
    kwargs.setdefault("perturbation_interval", 2)
    kwargs.setdefault("hyperparam_bounds", BOUNDS)
    kwargs.setdefault("log_config", False)
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("quantile_fraction", 0.5)
    kwargs.setdefault("synch", True)
    return PB2(**kwargs)


def objective(config, t):
    """Reward grows fastest at lr=0.03 and large momentum."""
    lr, mom = config["lr"], config["opt"]["mom"]
    return t * (1.0 - 100 * (lr - 0.03) ** 2 + 0.5 * mom)


async def simulate(pb2, n=4, rounds=5):
    """A population in lockstep (synch mode): all report, then the bottom ones clone."""
    controller = FakeController()
    for i in range(n):
        config = {"lr": 0.001 * (i + 1), "batch": 32 * (i + 1), "opt": {"mom": 0.6}}
        trial = controller.add(make_trial(i, config))
        await pb2.on_trial_add(controller, trial)
        trial.status = Trial.RUNNING
    progress = {t.trial_id: 0.0 for t in controller.trials}
    for rnd in range(1, rounds + 1):
        before = len(controller.resets)
        for trial in controller.trials:
            progress[trial.trial_id] += objective(trial.config, 1)
            result = {"training_iteration": 2 * rnd, "score": progress[trial.trial_id]}
            assert await pb2.on_trial_result(controller, trial, result) == TrialScheduler.PAUSE
            trial.status = Trial.PAUSED
        for tid, _, ckpt in controller.resets[before:]:  # cloned: go on from the donor
            donor = next(d for d in controller.trials if d.checkpoint == ckpt)
            progress[tid] = progress[donor.trial_id]
        for trial in controller.trials:
            trial.status = Trial.RUNNING
    return controller


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "bounds, match",
    [
        (None, "hyperparam_bounds"),
        ({}, "hyperparam_bounds"),
        ({"lr": [1e-3, 1e-5]}, r"low < high.*write \[1e-05, 0.001\]"),
        ({"lr": [0.1, 0.1]}, "low < high"),
        ({"lr": [0.1]}, r"\[low, high\] pair"),
        ({"lr": ["a", 1]}, "finite numbers"),
        ({"lr": (0, float("inf"))}, "finite numbers"),
        ({"opt": {}}, "empty dict"),
        ({"opt": {"mom": 3}}, r"hyperparam_bounds\['opt/mom'\]"),
    ],
)
def test_hyperparam_bounds_are_checked(bounds, match):
    with pytest.raises(ConfigError, match=match):
        make_pb2(hyperparam_bounds=bounds)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r'pip install "atune\[pb2\]"'):
        make_pb2()


def test_constructing_pb2_does_not_import_scikit_learn_in_the_scheduler_module():
    import atune.schedulers.pb2 as module

    assert "sklearn" not in vars(module)


async def test_missing_keys_are_drawn_within_the_bounds():
    pb2 = make_pb2()
    controller = FakeController()
    trial = controller.add(make_trial(0, {"batch": 64}))
    await pb2.on_trial_add(controller, trial)
    assert trial.config["batch"] == 64
    assert 1e-4 <= trial.config["lr"] <= 1e-1
    assert 0.5 <= trial.config["opt"]["mom"] <= 0.99
    assert {"lr", "opt/mom"} <= set(trial.evaluated_params)


# ------------------------------------------------------------------ data


def test_reward_changes_are_per_unit_of_time_within_one_config():
    records = [
        _Record("a", 2, (0.1,), 10.0),
        _Record("b", 2, (0.5,), 4.0),
        _Record("a", 4, (0.1,), 16.0),
        _Record("a", 6, (0.2,), 20.0),  # new config: no change measured yet
        _Record("a", 8, (0.2,), 30.0),
        _Record("b", 4, (0.5,), 4.0),
    ]
    X, y, newpoint, last = reward_changes(records, "a")
    assert X.tolist() == [[4, 10.0, 0.1], [4, 4.0, 0.5], [8, 20.0, 0.2]]
    assert y.tolist() == [3.0, 0.0, 5.0]
    assert newpoint.tolist() == [8, 20.0]
    assert last == records[4]


def test_reward_changes_without_history_give_no_point():
    _, y, newpoint, last = reward_changes([_Record("a", 2, (0.1,), 1.0)], "a")
    assert len(y) == 0 and newpoint is None and last is not None


# ------------------------------------------------------------------ the GP bandit


def test_select_config_finds_the_best_region_and_stays_in_bounds():
    rng = np.random.default_rng(0)
    rows, ys = [], []
    for t in range(2, 22, 2):
        for _ in range(4):
            x = rng.uniform(10, 20)
            rows.append([t, float(t), x])
            ys.append(1 - ((x - 18) / 10) ** 2 * 4 + rng.normal(0, 0.02))
    bounds = np.array([[20.0], [10.0]])  # either order works here
    chosen = select_config(np.array(rows), np.array(ys), None, np.array([20, 20.0]), bounds, 1)
    assert 10 <= chosen[0] <= 20
    assert chosen[0] == pytest.approx(18, abs=1.5)


def test_select_config_is_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.repeat([2, 4, 6], 3), rng.uniform(0, 5, 9), rng.uniform(0, 1, (9, 2))])
    y = rng.normal(size=9)
    bounds = np.array([[0.0, 0.0], [1.0, 1.0]])
    a = select_config(X, y, np.array([[0.2, 0.3]]), np.array([6, 2.0]), bounds, 5)
    b = select_config(X, y, np.array([[0.2, 0.3]]), np.array([6, 2.0]), bounds, 5)
    assert a.tolist() == b.tolist()
    assert np.all((a >= 0) & (a <= 1))


# ------------------------------------------------------------------ the scheduler


async def test_first_exploit_copies_the_config_unchanged():
    pb2 = make_pb2()
    controller = await simulate(pb2, n=2, rounds=2)
    # Round 1: no reward changes yet, the clone's config is copied as is.
    _, config, _ = controller.resets[0]
    donor = next(t for t in controller.trials if t.trial_id != controller.resets[0][0])
    assert config["lr"] in (0.001, 0.002) and config["opt"] == {"mom": 0.6}
    assert donor.config["lr"] in (0.001, 0.002)


async def test_suggestions_stay_in_bounds_and_ints_stay_ints():
    pb2 = make_pb2()
    controller = await simulate(pb2, n=4, rounds=6)
    assert len(controller.resets) >= 4
    for _, config, _ in controller.resets:
        assert 1e-4 <= config["lr"] <= 1e-1
        assert 16 <= config["batch"] <= 256 and type(config["batch"]) is int
        assert 0.5 <= config["opt"]["mom"] <= 0.99
    tags = [t.experiment_tag for t in controller.trials if "@perturbed" in t.experiment_tag]
    assert tags and all("lr=" in tag and "mom=" in tag for tag in tags)


async def test_gp_moves_towards_the_better_learning_rate():
    pb2 = make_pb2()
    controller = await simulate(pb2, n=4, rounds=8)
    late = [config["lr"] for _, config, _ in controller.resets[-4:]]
    assert max(late) > 0.004  # left the initial 0.001..0.004 towards 0.03


async def test_same_seed_same_suggestions():
    async def run():
        controller = await simulate(make_pb2(seed=11), n=4, rounds=5)
        return [(tid, config) for tid, config, _ in controller.resets]

    assert await run() == await run()


async def test_custom_explore_fn_runs_after_the_bandit():
    pb2 = make_pb2(custom_explore_fn=lambda c: {**c, "batch": 17})
    controller = await simulate(pb2, n=2, rounds=3)
    assert all(config["batch"] == 17 for _, config, _ in controller.resets)


async def test_pb2_returns_pbt_decisions():
    pb2 = make_pb2()
    controller = FakeController()
    a, b = (
        controller.add(make_trial(i, {"lr": 0.01, "batch": 32, "opt": {"mom": 0.6}}))
        for i in range(2)
    )
    for t in (a, b):
        await pb2.on_trial_add(controller, t)
        t.status = Trial.RUNNING
    assert pb2.sync_point(a) == ("training_iteration", 2.0)
    assert await pb2.on_trial_result(controller, a, {"training_iteration": 1, "score": 0}) == (
        TrialScheduler.CONTINUE
    )
    assert pb2.debug_string() == "PB2: 0 checkpoints, 0 perturbs"
