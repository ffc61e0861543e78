"""HyperOptSearch with the real HyperOpt, driven through the async searcher API (no Ray)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

hyperopt = pytest.importorskip("hyperopt")

import atune as tune  # noqa: E402
from atune.errors import ConfigError, ConfigTypeError  # noqa: E402
from atune.search.hyperopt import HyperOptSearch  # noqa: E402
from tests.unit.search_helpers import assert_beats_random, quadratic, run_trials  # noqa: E402

hp = hyperopt.hp

SPACE: dict[str, Any] = {
    "model": {"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.randint(1, 5)},
    "q": tune.quniform(0.1, 1.0, 0.3),
    "qi": tune.qrandint(1, 10, 3),
    "li": tune.lograndint(1, 100),
    "noise": tune.randn(0, 1),
    "act": tune.choice(["relu", "tanh"]),
    "shape": tune.choice([[1, 2], [3]]),
    "x": tune.uniform(-1, 1),
    "const": {"name": "net", "sizes": [1, 2]},
}

FULL_POINT = {
    "model": {"lr": 0.01, "layers": 2},
    "q": 0.6,
    "qi": 6,
    "li": 10,
    "noise": 0.5,
    "act": "tanh",
    "shape": [3],
    "x": 0.25,
}


def make(space: Any = SPACE, num_samples: int = 0, **kwargs: Any) -> HyperOptSearch:
    kwargs.setdefault("metric", "loss")
    kwargs.setdefault("mode", "min")
    searcher = HyperOptSearch(**kwargs)
    assert searcher.set_search_properties(None, None, space, num_samples=num_samples)
    return searcher


async def test_suggestions_lie_inside_the_space_and_keep_constants():
    searcher = make(random_state_seed=0, n_initial_points=5)
    for config in await run_trials(searcher, 15, objective=lambda c: c["x"] ** 2):
        assert 1e-4 <= config["model"]["lr"] <= 1e-1
        assert config["model"]["layers"] in range(1, 5)
        assert isinstance(config["model"]["layers"], int)
        assert config["q"] in (0.3, 0.6, 0.9)
        assert config["qi"] in (3, 6, 9)
        assert 1 <= config["li"] < 100 and isinstance(config["li"], int)
        assert isinstance(config["noise"], float)
        assert config["act"] in ("relu", "tanh")
        assert config["shape"] in ([1, 2], [3])  # lists stay lists
        assert -1 <= config["x"] <= 1
        assert config["const"] == {"name": "net", "sizes": [1, 2]}


async def test_points_to_evaluate_come_first_with_choices_given_by_value():
    second = {**FULL_POINT, "act": "relu", "x": -0.5}
    searcher = make(points_to_evaluate=[FULL_POINT, second], random_state_seed=0)
    configs = await run_trials(searcher, 3, objective=lambda c: c["x"] ** 2)
    assert {k: configs[0][k] for k in FULL_POINT} == FULL_POINT
    assert {k: configs[1][k] for k in second} == second


async def test_points_to_evaluate_with_a_choice_index_explains_the_change():
    point = {**FULL_POINT, "act": 1}
    searcher = make(points_to_evaluate=[point])
    with pytest.raises(ConfigError, match="not as indices"):
        await searcher.suggest("a")


async def test_partial_point_for_a_converted_space_is_rejected():
    searcher = make(points_to_evaluate=[{"x": 0.1}])
    with pytest.raises(ConfigError, match="missing"):
        await searcher.suggest("a")


async def test_seed_reproduces_the_first_suggestions():
    objective = lambda c: c["x"] ** 2  # noqa: E731
    a = await run_trials(make(random_state_seed=42, n_initial_points=3), 8, objective=objective)
    b = await run_trials(make(random_state_seed=42, n_initial_points=3), 8, objective=objective)
    c = await run_trials(make(random_state_seed=7, n_initial_points=3), 8, objective=objective)
    assert a == b
    assert a != c


async def test_matches_hyperopt_fmin_with_the_same_seed():
    """The ask/tell loop is the one ``hyperopt.fmin`` runs: same seed, same trials."""
    space = {"x": tune.uniform(-2, 2), "y": tune.uniform(-2, 2)}
    searcher = make(space, random_state_seed=5, n_initial_points=4)
    ours = [c["x"] for c in await run_trials(searcher, 10, objective=quadratic)]
    trials = hyperopt.Trials()
    hyperopt.fmin(
        quadratic,
        {"x": hp.uniform("x", -2, 2), "y": hp.uniform("y", -2, 2)},
        algo=partial(hyperopt.tpe.suggest, n_startup_jobs=4),
        max_evals=10,
        trials=trials,
        rstate=np.random.default_rng(5),
        show_progressbar=False,
    )
    assert ours == [t["misc"]["vals"]["x"][0] for t in trials.trials]


async def test_save_restore_gives_the_same_next_suggestion(tmp_path):
    searcher = make(random_state_seed=3, n_initial_points=4)
    await run_trials(searcher, 8, objective=lambda c: (c["x"] - 0.3) ** 2)
    pending = await searcher.suggest("live")
    path = str(tmp_path / "hyperopt.pkl")
    searcher.save(path)
    restored = HyperOptSearch()
    restored.restore(path)
    assert restored.metric == "loss" and restored.mode == "min"
    for s in (searcher, restored):
        await s.on_trial_complete("live", {"loss": pending["x"] ** 2})
    assert await searcher.suggest("next") == await restored.suggest("next")


async def test_errored_and_metric_less_trials_are_marked_failed():
    searcher = make(random_state_seed=0)
    for trial_id in ("a", "b", "c"):
        await searcher.suggest(trial_id)
    await searcher.on_trial_complete("a", {"loss": 1.0})
    await searcher.on_trial_complete("b", error=True)
    await searcher.on_trial_complete("c", {"other": 1.0})
    docs = searcher._trials._dynamic_trials
    assert [d["state"] for d in docs] == [
        hyperopt.JOB_STATE_DONE,
        hyperopt.JOB_STATE_ERROR,
        hyperopt.JOB_STATE_ERROR,
    ]
    assert searcher._trials.losses() == [1.0]  # failed trials are left out of the model
    assert isinstance(await searcher.suggest("d"), dict)


async def test_mode_max_negates_the_metric():
    searcher = make({"x": tune.uniform(0, 1)}, mode="max", random_state_seed=0)
    await searcher.suggest("a")
    await searcher.on_trial_complete("a", {"loss": 0.7})
    assert searcher._trials.losses() == [-0.7]


def test_grid_search_is_rejected():
    with pytest.raises(ConfigError, match="grid_search"):
        make({"x": tune.grid_search([1, 2])})


def test_sample_from_is_rejected_naming_the_parameter():
    with pytest.raises(ConfigError, match="cannot search the sample_from function 'a/f'"):
        make({"a": {"f": tune.sample_from(lambda spec: 1)}})


async def test_missing_metric_is_a_clear_error():
    searcher = HyperOptSearch()
    searcher.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
    with pytest.raises(ConfigError, match="metric"):
        await searcher.suggest("a")


async def test_constant_only_space_is_a_clear_error():
    searcher = make({"x": 1})
    with pytest.raises(ConfigError, match="only constants"):
        await searcher.suggest("a")


def test_bad_arguments():
    with pytest.raises(ConfigError, match="gamma"):
        HyperOptSearch(gamma=1.5)
    with pytest.raises(ConfigTypeError, match="points_to_evaluate"):
        HyperOptSearch(points_to_evaluate={"x": 1})  # type: ignore[arg-type]


async def test_conditional_space_from_a_choice_of_dicts():
    space = {
        "opt": tune.choice(
            [
                {"name": "sgd", "momentum": tune.uniform(0.5, 0.99)},
                {"name": "adam", "betas": [0.9, 0.999]},
            ]
        )
    }
    searcher = make(space, random_state_seed=0, n_initial_points=3)
    configs = await run_trials(searcher, 12, objective=lambda c: c["opt"].get("momentum", 1.0))
    for config in configs:
        opt = config["opt"]
        if opt["name"] == "sgd":
            assert set(opt) == {"name", "momentum"} and 0.5 <= opt["momentum"] <= 0.99
        else:
            assert opt == {"name": "adam", "betas": [0.9, 0.999]}
    assert {c["opt"]["name"] for c in configs} == {"sgd", "adam"}


async def test_native_hyperopt_space_with_points_by_label():
    space = {
        "width": hp.uniform("width", 0, 20),
        "act": hp.choice("act", ["relu", "tanh"]),
        "arch": hp.choice(
            "arch",
            [{"kind": "lin"}, {"kind": "mlp", "units": hp.quniform("units", 8, 64, 8)}],
        ),
    }
    searcher = HyperOptSearch(
        space=space,
        metric="loss",
        mode="min",
        random_state_seed=0,
        points_to_evaluate=[{"width": 10.0, "act": "tanh", "arch": 0}],
    )
    searcher.set_search_properties(None, None, {"epochs": 3})
    configs = await run_trials(searcher, 6, objective=lambda c: c["width"])
    assert configs[0] == {"width": 10.0, "act": "tanh", "arch": {"kind": "lin"}, "epochs": 3}
    for config in configs:
        assert 0 <= config["width"] <= 20 and config["act"] in ("relu", "tanh")
        assert config["epochs"] == 3


async def test_own_space_rejects_domains_in_param_space():
    searcher = HyperOptSearch(space={"x": hp.uniform("x", 0, 1)}, metric="loss", mode="min")
    with pytest.raises(ConfigError, match="own `space`"):
        searcher.set_search_properties(None, None, {"y": tune.uniform(0, 1)})


# ----------------------------------------------------------------------- quality


async def test_tpe_beats_random_search_on_a_quadratic():
    # With the default 20 random start-up points, 30 trials leave TPE only 10 steps.
    await assert_beats_random(
        lambda seed: HyperOptSearch(random_state_seed=seed, n_initial_points=5)
    )
