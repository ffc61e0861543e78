"""PopulationBasedTraining and its replay, on synthetic results (no Ray)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import atune as tune
from atune._trial import Trial
from atune.errors import AtuneError, ConfigError, ConfigTypeError
from atune.schedulers._base import TrialScheduler
from atune.schedulers._pbt_explore import Sampler as _Sampler
from atune.schedulers.pbt import (
    PopulationBasedTraining,
    PopulationBasedTrainingReplay,
    explore,
    make_experiment_tag,
    quantiles,
)
from atune.schedulers.pbt_replay import load_policy
from tests.unit.fake_controller import FakeController, make_trial

CONTINUE, PAUSE = TrialScheduler.CONTINUE, TrialScheduler.PAUSE


def make_pbt(**kwargs) -> PopulationBasedTraining:
    kwargs.setdefault("time_attr", "training_iteration")
    kwargs.setdefault("metric", "score")
    kwargs.setdefault("mode", "max")
    kwargs.setdefault("perturbation_interval", 2)
    kwargs.setdefault("hyperparam_mutations", {"x": [1, 2, 3, 4]})
    kwargs.setdefault("log_config", False)
    kwargs.setdefault("seed", 0)
    return PopulationBasedTraining(**kwargs)


async def population(scheduler, n, configs=None, *, status=Trial.RUNNING, **controller_kw):
    controller = FakeController(**controller_kw)
    for i in range(n):
        trial = controller.add(make_trial(i, (configs or [{"x": 2}] * n)[i]))
        await scheduler.on_trial_add(controller, trial)
        trial.status = status
    return controller, controller.trials


def res(t, score, **extra):
    return {"training_iteration": t, "score": score, **extra}


async def report(scheduler, controller, trial, t, score):
    trial.last_result = res(t, score)
    return await scheduler.on_trial_result(controller, trial, trial.last_result)


async def round_at(scheduler, controller, trials, t, scores):
    """Every trial reports ``scores[i]`` at time ``t``, in order; returns the decisions."""
    return [await report(scheduler, controller, tr, t, s) for tr, s in zip(trials, scores)]


class Scripted(random.Random):
    """A random source whose draws the test dictates."""

    def __init__(self, randoms=(), picks=()):
        super().__init__(0)
        self.randoms, self.picks = list(randoms), list(picks)

    def random(self):
        return self.randoms.pop(0)

    def choice(self, seq):
        return seq[self.picks.pop(0)]


def sampler(randoms=(), picks=(), seed=0):
    return _Sampler(Scripted(randoms, picks), np.random.default_rng(seed), seeded=True)


def run_explore(config, mutations, randoms=(), picks=(), p=0.25, custom=None):
    return explore(config, mutations, p, (1.2, 0.8), custom, sampler(randoms, picks))[0]


# ------------------------------------------------------------------ validation


def test_needs_mutations_or_custom_explore_fn():
    with pytest.raises(ConfigError, match=r"hyperparam_mutations.*custom_explore_fn"):
        PopulationBasedTraining(metric="m", mode="max")


@pytest.mark.parametrize("fraction", [-0.1, 0.51, 1.0])
def test_quantile_fraction_must_be_within_0_and_half(fraction):
    with pytest.raises(ConfigError, match=f"quantile_fraction.*{fraction}"):
        make_pbt(quantile_fraction=fraction)


@pytest.mark.parametrize("interval", [0, -1])
def test_perturbation_interval_must_be_positive(interval):
    with pytest.raises(ConfigError, match=r"perturbation_interval.*> 0"):
        make_pbt(perturbation_interval=interval)


@pytest.mark.parametrize(
    "spec, error",
    [
        (5, ConfigTypeError),
        ("abc", ConfigTypeError),
        ([], ConfigError),
        (tune.sample_from(lambda spec: 1), ConfigError),
        (lambda a, b: 1, ConfigError),
        ({"inner": 3}, ConfigTypeError),
    ],
)
def test_mutation_values_are_checked(spec, error):
    if error is None:
        make_pbt(hyperparam_mutations={"x": spec})
        return
    with pytest.raises(error, match=r"hyperparam_mutations\['x"):
        make_pbt(hyperparam_mutations={"x": spec})


def test_reward_attr_means_maximise_it():
    pbt = make_pbt(metric=None, mode=None, reward_attr="episode_reward_mean")
    assert (pbt.metric, pbt.mode) == ("episode_reward_mean", "max")


async def test_adding_a_trial_without_metric_and_mode_fails():
    pbt = make_pbt(metric=None, mode=None)
    with pytest.raises(ConfigError, match=r"metric.*mode"):
        await pbt.on_trial_add(FakeController(), make_trial(0))


async def test_a_model_based_searcher_is_rejected():
    controller = FakeController()
    controller.searcher = object()
    with pytest.raises(ConfigError, match="searcher"):
        await make_pbt().on_trial_add(controller, make_trial(0))


async def test_missing_metric_raises_unless_require_attrs_is_off(caplog):
    pbt = make_pbt()
    controller, (t,) = await population(pbt, 1)
    with pytest.raises(ConfigError, match="'score'"):
        await pbt.on_trial_result(controller, t, {"training_iteration": 2})
    lax = make_pbt(require_attrs=False)
    controller, (t,) = await population(lax, 1)
    with caplog.at_level(logging.WARNING, logger="atune"):
        assert await lax.on_trial_result(controller, t, {"training_iteration": 2}) == CONTINUE
    assert "'score'" in caplog.text


# ------------------------------------------------------------------ quantiles


@pytest.mark.parametrize(
    "n, fraction, size",
    [(0, 0.25, 0), (1, 0.5, 0), (2, 0.25, 1), (4, 0.25, 1), (5, 0.25, 2), (8, 0.5, 4),
     (3, 0.5, 1), (10, 0.25, 3), (6, 0.0, 0)],
)  # fmt: skip
def test_quantile_size_is_ceil_n_q_at_most_half(n, fraction, size):
    lower, upper = quantiles(list(range(n)), fraction)
    assert lower == list(range(size))
    assert upper == list(range(n - size, n))


# ------------------------------------------------------------------ explore rules


@pytest.mark.parametrize("pick, expected", [(0, 12.0), (1, 8.0)])
def test_continuous_value_is_multiplied_by_a_factor(pick, expected):
    new = run_explore({"x": 10.0}, {"x": tune.uniform(0, 20)}, randoms=[0.9], picks=[pick])
    assert new["x"] == pytest.approx(expected)


def test_perturbation_factors_are_configurable():
    new = explore(
        {"x": 10.0}, {"x": tune.uniform(0, 20)}, 0.0, (2.0, 0.5), None, sampler([0.9], [0])
    )[0]
    assert new["x"] == 20.0


@pytest.mark.parametrize("old, pick, expected", [(10, 0, 12), (3, 1, 2), (1, 0, 1)])
def test_ints_stay_ints(old, pick, expected):
    new = run_explore({"n": old}, {"n": tune.randint(1, 100)}, randoms=[0.9], picks=[pick])
    assert new["n"] == expected and type(new["n"]) is int


def test_continuous_value_is_resampled_with_resample_probability():
    new = run_explore({"x": 10.0}, {"x": tune.uniform(100, 200)}, randoms=[0.1])
    assert 100 <= new["x"] <= 200


def test_resampled_int_stays_int():
    new = run_explore({"n": 10}, {"n": tune.uniform(100, 200)}, randoms=[0.1])
    assert type(new["n"]) is int and 100 <= new["n"] <= 200


@pytest.mark.parametrize(
    "old, pick, expected",
    [(2, 1, 3), (2, 0, 1), (4, 1, 4), (1, 0, 1)],  # +1, -1, clamped right, clamped left
)
def test_list_value_moves_to_a_neighbour_clamped_at_the_ends(old, pick, expected):
    new, ops = explore(
        {"x": old}, {"x": [1, 2, 3, 4]}, 0.25, (1.2, 0.8), None, sampler([0.9], [pick])
    )
    assert new["x"] == expected
    assert ops["x"].startswith("shift") and (("noop" in ops["x"]) == (old == expected))


def test_list_value_is_resampled_with_resample_probability():
    new, ops = explore({"x": 2}, {"x": [1, 2, 3, 4]}, 0.25, (1.2,), None, sampler([0.1], [3]))
    assert new["x"] == 4 and ops["x"] == "resample"


def test_list_value_not_in_the_list_is_resampled():
    new, ops = explore({"x": 2.5}, {"x": [1, 2, 3]}, 0.25, (1.2,), None, sampler([0.9], [0]))
    assert new["x"] == 1 and ops["x"] == "resample"


def test_list_lookup_compares_by_equality():
    # 0.7's example: the config has 1.0, the list has 1.
    assert run_explore({"x": 1.0}, {"x": [1, 2]}, randoms=[0.9], picks=[1]) == {"x": 2}


def test_nested_dicts_are_explored_and_other_keys_kept():
    config = {"opt": {"lr": 0.1, "mom": 0.5, "other": 7}, "y": "keep"}
    mutations = {"opt": {"lr": [0.1, 0.01, 0.001], "mom": tune.uniform(0, 1)}}
    new = run_explore(config, mutations, randoms=[0.9, 0.9], picks=[1, 0])
    assert new == {"opt": {"lr": 0.01, "mom": pytest.approx(0.6), "other": 7}, "y": "keep"}
    assert config["opt"]["lr"] == 0.1  # the clone's config is not touched


def test_choice_domain_is_treated_as_continuous_like_ray():
    new = run_explore({"x": 10}, {"x": tune.choice([1, 10, 100])}, randoms=[0.9], picks=[0])
    assert new["x"] == 12


def test_non_numeric_domain_value_is_always_resampled():
    new = run_explore({"act": "relu"}, {"act": tune.choice(["tanh"])}, randoms=[0.9])
    assert new["act"] == "tanh"


def test_zero_arg_lambda_of_07_is_called_to_resample():
    new = run_explore({"x": 4.0}, {"x": lambda: random.uniform(50.0, 60.0)}, randoms=[0.1])
    assert 50.0 <= new["x"] <= 60.0


def test_zero_arg_lambda_draws_are_reproducible_with_a_seed():
    def draws():
        s = _Sampler(random.Random(7), np.random.default_rng(7), seeded=True)
        return [s.sample(lambda: random.random()) for _ in range(3)]

    assert draws() == draws()


def test_custom_explore_fn_runs_after_the_builtin_rules():
    seen = {}

    def fix(config):
        seen.update(config)
        config["batch"] = max(config["batch"], 2 * config["mini"])
        return config

    new = run_explore(
        {"batch": 10, "mini": 8}, {"batch": [10, 20]}, randoms=[0.9], picks=[0], custom=fix
    )
    assert seen["batch"] == 10  # shifted left and clamped before fix() saw it
    assert new == {"batch": 16, "mini": 8}


def test_custom_explore_fn_must_return_the_config():
    with pytest.raises(AtuneError, match="custom_explore_fn"):
        run_explore({"x": 1}, {}, custom=lambda config: None)


def test_tag_lists_the_mutated_values():
    tag = make_experiment_tag("3_x=1", {"x": 11.97176, "y": 2, "z": 0}, {"x": [], "y": []})
    assert tag == "3_x=1@perturbed[x=11.972,y=2]"


# ------------------------------------------------------------------ scheduler


async def test_missing_mutated_keys_are_sampled_into_the_config():
    pbt = make_pbt(hyperparam_mutations={"x": [1, 2], "y": tune.uniform(5, 6), "z": {"w": [9]}})
    _, (t,) = await population(pbt, 1, [{"x": 2}])
    assert t.config["x"] == 2
    assert 5 <= t.config["y"] <= 6
    assert t.config["z"] == {"w": 9}
    assert set(t.evaluated_params) >= {"y", "z/w"}


async def test_bottom_trial_clones_a_top_trial():
    pbt = make_pbt()
    controller, (t0, t1, t2, t3) = await population(pbt, 4, [{"x": i + 1} for i in range(4)])
    # Round 1 at t=2, worst first: t1, t2, t3 each are the top trial when they report.
    assert await round_at(pbt, controller, [t0, t1, t2, t3], 2, [1, 2, 3, 4]) == [CONTINUE] * 4
    assert controller.saved == [t1.trial_id, t2.trial_id, t3.trial_id]
    assert controller.resets == []
    donor_ckpt = pbt._state[t3.trial_id].last_checkpoint
    # t0 is still the worst at t=4: it restarts from t3's checkpoint with t3's config moved.
    assert await report(pbt, controller, t0, 4, 1.5) == PAUSE
    ((target, config, ckpt),) = controller.resets
    assert target == t0.trial_id and ckpt == donor_ckpt
    assert config["x"] in (3, 4)  # a neighbour of t3's x=4 (clamped) or a resample
    assert t0.experiment_tag == f"0@perturbed[x={config['x']}]"


async def test_exploit_takes_over_the_clones_perturbation_time():
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2)
    await round_at(pbt, controller, [t0, t1], 2, [1, 2])
    await report(pbt, controller, t1, 4, 5)  # t1 top again, saved at 4
    await report(pbt, controller, t0, 5, 0)  # t0 at 5 clones t1 (checkpointed at 4)
    assert controller.resets and controller.resets[0][0] == t0.trial_id
    assert pbt.sync_point(t0) == ("training_iteration", 6.0)  # 4 + 2


async def test_top_trial_without_checkpoint_is_not_cloned(caplog):
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2)
    # t1 reports first, alone: it is not a top trial, so it is not checkpointed.
    with caplog.at_level(logging.INFO, logger="atune"):
        await round_at(pbt, controller, [t1, t0], 2, [5, 1])
    assert controller.saved == [] and controller.resets == []
    assert "no top trial has a checkpoint" in caplog.text


async def test_deleted_checkpoint_is_not_cloned():
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2)
    await round_at(pbt, controller, [t0, t1], 2, [1, 2])
    # The controller kept only a later checkpoint of t1 (num_to_keep deleted the one PBT had).
    later = tune.Checkpoint("/tmp/fake/t_00001/checkpoint_999")
    t1.checkpoint = later
    t1.checkpoints = [(later, {})]
    await report(pbt, controller, t0, 4, 0)
    assert controller.resets == []


async def test_exploit_logs_explore_and_exploit_lines(caplog):
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2, [{"x": 1}, {"x": 2}])
    await round_at(pbt, controller, [t0, t1], 2, [1, 4])
    with caplog.at_level(logging.INFO, logger="atune"):
        await report(pbt, controller, t0, 4, 1.5)
    new_x = controller.resets[0][1]["x"]
    assert f"[explore] perturbed config from {{'x': 2}} -> {{'x': {new_x}}}" in caplog.text
    assert (
        f"[exploit] transferring weights from trial {t1.name} (score 4) -> {t0.name} "
        "(score 1.5)" in caplog.text
    )


async def test_min_mode_ranks_low_values_on_top():
    pbt = make_pbt(mode="min")
    controller, (t0, t1) = await population(pbt, 2)
    await round_at(pbt, controller, [t0, t1], 2, [10.0, 1.0])  # t1 is better
    assert controller.saved == [t1.trial_id]
    await report(pbt, controller, t0, 4, 9.0)
    assert controller.resets[0][0] == t0.trial_id


async def test_nan_score_ranks_last():
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2)
    await round_at(pbt, controller, [t1, t0], 2, [float("nan"), 1.0])
    assert controller.saved == [t0.trial_id]


async def test_finished_trials_are_not_ranked():
    pbt = make_pbt()
    controller, (t0, t1, t2) = await population(pbt, 3)
    await round_at(pbt, controller, [t0, t1, t2], 2, [1, 2, 3])
    t2.status = Trial.TERMINATED
    await pbt.on_trial_complete(controller, t2, {})
    controller.saved.clear()
    await report(pbt, controller, t1, 4, 2)  # now the top of two live trials
    assert controller.saved == [t1.trial_id]


async def test_burn_in_period_delays_the_first_perturbation():
    pbt = make_pbt(burn_in_period=5)
    controller, (t0, t1) = await population(pbt, 2)
    assert pbt.sync_point(t0) == ("training_iteration", 5.0)
    for t in (2, 4):
        await round_at(pbt, controller, [t0, t1], t, [1, 2])
    assert controller.saved == []
    await round_at(pbt, controller, [t0, t1], 5, [1, 2])
    assert controller.saved == [t1.trial_id]
    assert pbt.sync_point(t1) == ("training_iteration", 7.0)


async def test_sync_point_is_the_next_perturbation_time():
    pbt = make_pbt(perturbation_interval=3)
    controller, (t0, _) = await population(pbt, 2)
    assert pbt.sync_point(t0) == ("training_iteration", 3.0)
    assert await report(pbt, controller, t0, 2, 1) == CONTINUE  # before the point: nothing
    assert pbt.sync_point(t0) == ("training_iteration", 3.0)
    await report(pbt, controller, t0, 3, 1)
    assert pbt.sync_point(t0) == ("training_iteration", 6.0)
    assert pbt.sync_point(make_trial(9)) is None  # not part of the population


async def test_async_mode_pauses_when_other_trials_wait():
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2)
    waiting = controller.add(make_trial(2, {"x": 2}))
    await pbt.on_trial_add(controller, waiting)
    assert await report(pbt, controller, t0, 2, 1) == PAUSE  # t2 is PENDING: make room
    waiting.status = Trial.RUNNING
    assert await report(pbt, controller, t1, 2, 5) == CONTINUE


async def test_choose_trial_to_run_prefers_least_progress():
    pbt = make_pbt()
    controller, (a, b, c) = await population(pbt, 3)
    await round_at(pbt, controller, [a, b], 2, [1, 2])
    await round_at(pbt, controller, [b], 4, [2])
    a.status = b.status = Trial.PAUSED
    c.status = Trial.RUNNING
    assert await pbt.choose_trial_to_run(controller) is a  # at 2, b is at 4
    fresh = controller.add(make_trial(3, {"x": 2}))
    await pbt.on_trial_add(controller, fresh)
    assert await pbt.choose_trial_to_run(controller) is fresh  # at 0
    controller.slots = 1  # c holds the only slot
    assert await pbt.choose_trial_to_run(controller) is None


async def test_debug_string_counts_checkpoints_and_perturbs():
    pbt = make_pbt()
    controller, (t0, t1) = await population(pbt, 2)
    await round_at(pbt, controller, [t0, t1], 2, [1, 2])
    await report(pbt, controller, t0, 4, 0)
    assert pbt.debug_string() == "PopulationBasedTraining: 1 checkpoints, 1 perturbs"


async def test_custom_explore_fn_alone_is_enough():
    pbt = make_pbt(hyperparam_mutations=None, custom_explore_fn=lambda c: {**c, "x": 99})
    controller, (t0, t1) = await population(pbt, 2)
    await round_at(pbt, controller, [t0, t1], 2, [1, 2])
    await report(pbt, controller, t0, 4, 0)
    assert controller.resets[0][1]["x"] == 99
    assert t0.experiment_tag == "0@perturbed[]"


async def test_same_seed_same_decisions():
    async def run():
        pbt = make_pbt(
            hyperparam_mutations={"x": [1, 2, 3, 4], "lr": tune.loguniform(1e-4, 1e-1)},
            quantile_fraction=0.5,
            seed=3,
        )
        controller, trials = await population(pbt, 6, [{"x": 2, "lr": 0.01}] * 6)
        for t in (2, 4, 6):
            await round_at(pbt, controller, trials, t, [t * i for i in range(6)])
        return controller.resets

    assert await run() == await run()


async def test_decisions_are_made_one_at_a_time():
    """A bottom trial deciding while a top trial is being saved waits for that save."""
    import anyio

    class SlowSaves(FakeController):
        def __init__(self):
            super().__init__()
            self.release = anyio.Event()

        async def save_trial(self, trial):
            await self.release.wait()
            return await super().save_trial(trial)

    pbt = make_pbt()
    controller = SlowSaves()
    t0, t1 = (controller.add(make_trial(i, {"x": 2})) for i in range(2))
    for t in (t0, t1):
        await pbt.on_trial_add(controller, t)
        t.status = Trial.RUNNING
    await report(pbt, controller, t0, 2, 1)  # alone: no save
    async with anyio.create_task_group() as tg:
        tg.start_soon(report, pbt, controller, t1, 2, 5)  # top: saving, blocked
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(report, pbt, controller, t0, 4, 0)  # bottom: must wait for it
        await anyio.wait_all_tasks_blocked()
        assert controller.resets == []
        controller.release.set()
    ((target, _, ckpt),) = controller.resets
    assert target == t0.trial_id and ckpt == t1.checkpoint


# ------------------------------------------------------------------ synchronous mode


async def test_synch_mode_waits_for_every_trial_then_perturbs_all():
    pbt = make_pbt(synch=True)
    controller, (t0, t1, t2, t3) = await population(pbt, 4)
    assert pbt.sync_point(t0) == ("training_iteration", 2.0)
    for t, s in ((t0, 1), (t1, 2), (t2, 3)):
        assert await report(pbt, controller, t, 2, s) == PAUSE
        t.status = Trial.PAUSED  # the controller pauses it
    assert controller.saved == [] and controller.resets == []
    assert await pbt.choose_trial_to_run(controller) is None  # the waiting do not rerun
    assert await report(pbt, controller, t3, 2, 4) == PAUSE  # the last one: all perturb
    assert controller.saved == [t3.trial_id]  # the top trial is checkpointed first
    assert [r[0] for r in controller.resets] == [t0.trial_id]  # the paused bottom one
    assert t0.restore_from == pbt._state[t3.trial_id].last_checkpoint
    assert pbt.sync_point(t1) == ("training_iteration", 4.0)
    t3.status = Trial.PAUSED
    assert await pbt.choose_trial_to_run(controller) is t0  # all at 2: creation order


async def test_synch_round_completes_when_the_last_runner_finishes():
    pbt = make_pbt(synch=True)
    controller, (t0, t1, t2) = await population(pbt, 3)
    await report(pbt, controller, t0, 2, 1)
    await report(pbt, controller, t1, 2, 5)
    t0.status = t1.status = Trial.PAUSED
    t2.status = Trial.TERMINATED  # stopped before it reached the perturbation time
    await pbt.on_trial_complete(controller, t2, res(1, 9))
    # The controller asks what to start next: the round nobody was left to trigger.
    assert await pbt.choose_trial_to_run(controller) is t0
    assert controller.saved == [t1.trial_id]
    assert [r[0] for r in controller.resets] == [t0.trial_id]


# ------------------------------------------------------------------ policy log + replay


async def logged_population(tmp_path, n):
    pbt = make_pbt(log_config=True)
    controller, trials = await population(pbt, n, [{"x": i + 1} for i in range(n)])
    for t in trials:
        t.local_path = str(tmp_path / "exp" / t.trial_id)
    return pbt, controller, trials


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


async def test_exploit_writes_policy_rows(tmp_path):
    pbt, controller, (t0, t1) = await logged_population(tmp_path, 2)
    await round_at(pbt, controller, [t0, t1], 2, [1, 2])
    await report(pbt, controller, t0, 4, 0)
    new_config = controller.resets[0][1]
    row = ["0", "1", 4, 2, {"x": 2}, new_config]
    assert read_rows(tmp_path / "exp" / "pbt_global.txt") == [row]
    assert read_rows(tmp_path / "exp" / f"pbt_policy_{t0.trial_id}.txt") == [row]


async def test_policy_file_carries_the_clones_history(tmp_path):
    pbt, controller, (t0, t1, t2) = await logged_population(tmp_path, 3)
    await round_at(pbt, controller, [t0, t1, t2], 2, [1, 2, 3])
    await report(pbt, controller, t0, 4, 0)  # t0 clones t2 (saved at 2)
    await report(pbt, controller, t0, 4, 10)  # from there to 4 again, now top: saved
    await report(pbt, controller, t1, 4, 0)  # t1 clones t0
    rows = read_rows(tmp_path / "exp" / f"pbt_policy_{t1.trial_id}.txt")
    assert [(r[0], r[1], r[3]) for r in rows] == [("0", "2", 2), ("1", "0", 4)]
    assert len(read_rows(tmp_path / "exp" / "pbt_global.txt")) == 2
    initial, schedule = load_policy(str(tmp_path / "exp" / f"pbt_policy_{t1.trial_id}.txt"))
    assert initial == {"x": 3}  # t2's config, where the lineage started
    assert [step for step, _ in schedule] == [2, 4]


def write_policy_file(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


ROWS = [
    ["5", "9", 4, 4, {"x": 0}, {"x": 100}],  # another lineage: overwritten later
    ["1", "0", 2, 2, {"x": 1, "k": "a"}, {"x": 2, "k": "a"}],
    ["3", "1", 5, 6, {"x": 2, "k": "a"}, {"x": 3, "k": "a"}],
]


def test_load_policy_follows_the_lineage_back_from_the_end(tmp_path):
    initial, schedule = load_policy(write_policy_file(tmp_path / "p.txt", ROWS))
    assert initial == {"x": 1, "k": "a"}
    assert schedule == [(2, {"x": 2, "k": "a"}), (6, {"x": 3, "k": "a"})]


async def test_replay_applies_the_schedule_at_the_recorded_iterations(tmp_path):
    replay = PopulationBasedTrainingReplay(write_policy_file(tmp_path / "p.txt", ROWS))
    controller = FakeController()
    trial = controller.add(make_trial(0, {}))
    await replay.on_trial_add(controller, trial)
    trial.status = Trial.RUNNING
    assert trial.config == {"x": 1, "k": "a"}
    assert replay.sync_point(trial) == ("training_iteration", 2.0)
    assert await replay.on_trial_result(controller, trial, res(1, 0)) == CONTINUE
    assert await replay.on_trial_result(controller, trial, res(2, 0)) == PAUSE
    ((tid, config, ckpt),) = controller.resets
    assert config == {"x": 2, "k": "a"} and tid == trial.trial_id
    assert ckpt is not None and ckpt == trial.restore_from  # its own checkpoint
    assert trial.experiment_tag == "replay_p.txt@perturbed[k=a,x=2]"
    assert replay.sync_point(trial) == ("training_iteration", 6.0)
    assert await replay.on_trial_result(controller, trial, res(6, 0)) == PAUSE
    assert trial.config == {"x": 3, "k": "a"}
    assert replay.sync_point(trial) is None
    assert await replay.on_trial_result(controller, trial, res(7, 0)) == CONTINUE
    assert replay.debug_string() == "PopulationBasedTraining replay: Step 6, perturb 2"


async def test_replay_accepts_only_one_trial(tmp_path):
    replay = PopulationBasedTrainingReplay(write_policy_file(tmp_path / "p.txt", ROWS))
    controller = FakeController()
    await replay.on_trial_add(controller, controller.add(make_trial(0)))
    with pytest.raises(ConfigError, match="num_samples=1"):
        await replay.on_trial_add(controller, controller.add(make_trial(1)))


def test_replay_rejects_missing_or_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="policy_file"):
        PopulationBasedTrainingReplay(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text('["a", "b"]\n')
    with pytest.raises(ConfigError, match="line 1"):
        PopulationBasedTrainingReplay(bad)


async def test_replay_of_a_pbt_policy_log(tmp_path):
    pbt, controller, (t0, t1) = await logged_population(tmp_path, 2)
    await round_at(pbt, controller, [t0, t1], 2, [1, 2])
    await report(pbt, controller, t0, 4, 0)
    replay = PopulationBasedTrainingReplay(
        os.path.join(tmp_path, "exp", f"pbt_policy_{t0.trial_id}.txt")
    )
    assert replay.config == {"x": 2}
    assert replay._policy == [(2, controller.resets[0][1])]


# ------------------------------------------------------------------ property


@given(
    scores=st.lists(
        st.lists(st.floats(-100, 100), min_size=3, max_size=3), min_size=2, max_size=10
    ),
    fraction=st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.5]),
    order_seed=st.integers(0, 1000),
)
def test_pbt_only_copies_from_the_top_quantile_into_the_bottom_one(scores, fraction, order_seed):
    """Over three rounds in a random order, every clone goes from top to bottom."""

    async def run():
        pbt = make_pbt(quantile_fraction=fraction, seed=order_seed)
        controller, trials = await population(pbt, len(scores), [{"x": 2}] * len(scores))
        latest: dict[str, float] = {}
        donors_ckpt = {}
        order = random.Random(order_seed)
        for rnd in range(3):
            for i in order.sample(range(len(trials)), len(trials)):
                trial, score = trials[i], scores[i][rnd]
                latest[trial.trial_id] = score
                # Ties keep creation order, as in PBT's ranking.
                ranked = sorted(
                    (t.trial_id for t in trials if t.trial_id in latest), key=latest.get
                )
                lower, upper = quantiles(ranked, fraction)
                before = len(controller.resets)
                await report(pbt, controller, trial, 2 * (rnd + 1), score)
                if len(controller.resets) > before:
                    target, _, ckpt = controller.resets[-1]
                    donor = donors_ckpt[ckpt.path]
                    assert target == trial.trial_id and target in lower
                    assert donor in upper and latest[donor] >= latest[target]
                if controller.saved and controller.saved[-1] == trial.trial_id:
                    donors_ckpt[trial.checkpoint.path] = trial.trial_id

    asyncio.run(run())
