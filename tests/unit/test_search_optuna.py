"""OptunaSearch with the real Optuna, driven through the async searcher API (no Ray)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")

import atune as tune  # noqa: E402
from atune.errors import ConfigError, ConfigTypeError  # noqa: E402
from atune.search.optuna import OptunaSearch  # noqa: E402
from tests.unit.search_helpers import assert_beats_random, run_trials  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE: dict[str, Any] = {
    "model": {"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.randint(1, 5)},
    "q": tune.quniform(0.1, 1.0, 0.3),
    "qi": tune.qrandint(1, 10, 3),
    "li": tune.lograndint(1, 100),
    "act": tune.choice(["relu", "tanh"]),
    "shape": tune.choice([[1, 2], [3]]),
    "x": tune.uniform(-1, 1),
    "const": {"name": "net", "sizes": [1, 2]},
}


def make(space: Any = SPACE, num_samples: int = 0, **kwargs: Any) -> OptunaSearch:
    kwargs.setdefault("metric", "loss")
    kwargs.setdefault("mode", "min")
    searcher = OptunaSearch(**kwargs)
    assert searcher.set_search_properties(None, None, space, num_samples=num_samples)
    return searcher


async def test_suggestions_lie_inside_the_space_and_keep_constants():
    searcher = make(seed=0)
    for config in await run_trials(searcher, 20, objective=lambda c: c["x"] ** 2):
        assert 1e-4 <= config["model"]["lr"] <= 1e-1
        assert config["model"]["layers"] in range(1, 5)
        assert isinstance(config["model"]["layers"], int)
        assert config["q"] in (0.3, 0.6, 0.9)
        assert config["qi"] in (3, 6, 9)
        assert 1 <= config["li"] < 100 and isinstance(config["li"], int)
        assert config["act"] in ("relu", "tanh")
        assert config["shape"] in ([1, 2], [3])
        assert -1 <= config["x"] <= 1
        assert config["const"] == {"name": "net", "sizes": [1, 2]}


async def test_points_to_evaluate_come_first():
    points = [
        {
            "model": {"lr": 0.01, "layers": 2},
            "q": 0.6,
            "qi": 6,
            "li": 10,
            "act": "tanh",
            "shape": [3],
            "x": 0.25,
        },
        {"x": -0.5},  # partial: the rest is sampled
    ]
    searcher = make(points_to_evaluate=points, seed=0)
    first = await searcher.suggest("a")
    second = await searcher.suggest("b")
    assert first["model"] == {"lr": 0.01, "layers": 2}
    assert (first["act"], first["shape"], first["x"]) == ("tanh", [3], 0.25)
    assert second["x"] == -0.5


async def test_points_to_evaluate_with_unknown_key_is_rejected():
    searcher = make(points_to_evaluate=[{"nope": 1}])
    with pytest.raises(ConfigError, match="'nope'"):
        await searcher.suggest("a")


async def test_seed_reproduces_the_first_suggestions():
    a = await run_trials(make(seed=42), 12, objective=lambda c: c["x"] ** 2)
    b = await run_trials(make(seed=42), 12, objective=lambda c: c["x"] ** 2)
    c = await run_trials(make(seed=7), 12, objective=lambda c: c["x"] ** 2)
    assert a == b
    assert a != c


async def test_save_restore_gives_the_same_next_suggestion(tmp_path):
    searcher = make(seed=3)
    await run_trials(searcher, 12, objective=lambda c: (c["x"] - 0.3) ** 2)
    pending = await searcher.suggest("live")  # a live trial travels with the state
    path = str(tmp_path / "optuna.pkl")
    searcher.save(path)
    restored = OptunaSearch()
    restored.restore(path)
    assert restored.metric == "loss" and restored.mode == "min"
    for s in (searcher, restored):
        await s.on_trial_complete("live", {"loss": pending["x"] ** 2})
    assert await searcher.suggest("next") == await restored.suggest("next")


async def test_errored_and_metric_less_trials_are_told_fail(caplog):
    searcher = make(seed=0)
    for trial_id in ("a", "b", "c"):
        await searcher.suggest(trial_id)
    await searcher.on_trial_complete("a", {"loss": 1.0})
    await searcher.on_trial_complete("b", error=True)
    with caplog.at_level(logging.WARNING):
        await searcher.on_trial_complete("c", {"other": 1.0})
    assert "without reporting" in caplog.text
    states = [t.state for t in searcher._study.trials]
    TrialState = optuna.trial.TrialState
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]


async def test_unknown_trial_completion_is_ignored():
    searcher = make(seed=0)
    await searcher.on_trial_complete("never-suggested", {"loss": 1.0})


def test_normal_distribution_is_rejected_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"'a/noise'.*normal"):
        make({"a": {"noise": tune.randn(0, 1)}})


def test_grid_search_is_rejected():
    with pytest.raises(ConfigError, match="grid_search"):
        make({"x": tune.grid_search([1, 2])})


def test_sample_from_is_rejected():
    with pytest.raises(ConfigError, match="sample_from"):
        make({"x": tune.sample_from(lambda spec: 1)})


def test_mismatched_multi_objective_metric_and_mode():
    with pytest.raises(ConfigError, match="same length"):
        OptunaSearch(metric=["a", "b"], mode=["min"])


async def test_missing_metric_is_a_clear_error():
    searcher = OptunaSearch()
    searcher.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
    with pytest.raises(ConfigError, match="metric"):
        await searcher.suggest("a")


async def test_define_by_run_space_with_constants():
    def space(trial):
        kind = trial.suggest_categorical("kind", ["lin", "mlp"])
        if kind == "mlp":
            trial.suggest_int("mlp/width", 8, 64, log=True)
        return {"fixed": 3}

    searcher = OptunaSearch(space=space, metric="loss", mode="min", seed=0)
    searcher.set_search_properties(None, None, {"epochs": 5})
    configs = await run_trials(
        searcher, 15, objective=lambda c: c["mlp"]["width"] if c["kind"] == "mlp" else 50
    )
    for config in configs:
        assert config["fixed"] == 3 and config["epochs"] == 5
        if config["kind"] == "mlp":
            assert 8 <= config["mlp"]["width"] <= 64
        else:
            assert "mlp" not in config
    assert {c["kind"] for c in configs} == {"lin", "mlp"}


async def test_own_space_rejects_domains_in_param_space():
    searcher = OptunaSearch(space={"x": tune.uniform(0, 1)}, metric="loss", mode="min")
    with pytest.raises(ConfigError, match="own `space`"):
        searcher.set_search_properties(None, None, {"y": tune.uniform(0, 1)})


async def test_native_optuna_distributions():
    dists = optuna.distributions
    space = {
        "a/x": dists.FloatDistribution(0, 1),
        "n": dists.IntDistribution(1, 3),
        "c": dists.CategoricalDistribution(["u", "v"]),
    }
    searcher = OptunaSearch(
        space=space, metric="loss", mode="max", seed=0, points_to_evaluate=[{"a": {"x": 0.5}}]
    )
    searcher.set_search_properties(None, None, {})
    configs = await run_trials(searcher, 6, objective=lambda c: c["a"]["x"])
    assert configs[0]["a"]["x"] == 0.5
    for config in configs:
        assert 0 <= config["a"]["x"] <= 1 and config["n"] in (1, 2, 3) and config["c"] in "uv"


async def test_multi_objective_tells_a_list_of_values():
    searcher = OptunaSearch(
        space={"x": tune.uniform(0, 1)}, metric=["a", "b"], mode=["min", "max"], seed=0
    )
    searcher.set_search_properties(None, None, {})
    for i in range(5):
        config = await searcher.suggest(str(i))
        await searcher.on_trial_complete(str(i), {"a": config["x"], "b": config["x"] ** 2})
    study = searcher._study
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert all(len(t.values) == 2 for t in study.trials)
    assert study.best_trials


async def test_evaluated_rewards_are_added_as_finished_trials():
    searcher = OptunaSearch(
        space={"x": tune.uniform(0, 1)},
        metric="loss",
        mode="min",
        points_to_evaluate=[{"x": 0.1}, {"x": 0.9}],
        evaluated_rewards=[0.01, 0.81],
        seed=0,
    )
    searcher.set_search_properties(None, None, {})
    await searcher.suggest("a")
    values = [t.value for t in searcher._study.trials if t.value is not None]
    assert values == [0.01, 0.81]


def test_bad_sampler_type():
    with pytest.raises(ConfigTypeError, match="sampler"):
        OptunaSearch(sampler="tpe")


# ----------------------------------------------------------------------- quality


async def test_tpe_beats_random_search_on_a_quadratic():
    await assert_beats_random(lambda seed: OptunaSearch(seed=seed))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize(
    ("verbosity", "expect_lines"), [(optuna.logging.INFO, False), (optuna.logging.DEBUG, True)]
)
async def test_optuna_info_lines_are_muted_only_at_the_default_verbosity(verbosity, expect_lines):
    handler = _Collect()
    optuna_logger = logging.getLogger("optuna")
    optuna_logger.addHandler(handler)
    optuna.logging.set_verbosity(verbosity)
    try:
        await run_trials(make({"x": tune.uniform(0, 1)}, seed=0), 3, objective=lambda c: c["x"])
        assert optuna.logging.get_verbosity() == verbosity  # restored after each call
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna_logger.removeHandler(handler)
    created = [m for m in handler.messages if "A new study created" in m]
    assert bool(created) is expect_lines
