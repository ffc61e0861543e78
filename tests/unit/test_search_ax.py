"""AxSearch on the real ax-platform package (ax.api.Client; no Ray).

Ax fits a GP for every suggestion after its first few (Sobol) trials; one fit takes
0.2-4 s on two cores, so most tests stay inside the Sobol phase (5 trials).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

pytest.importorskip("ax.api")

from ax.api import ChoiceParameterConfig, Client, RangeParameterConfig

import atune as tune
from atune.errors import ConfigError, ConfigTypeError
from atune.search.ax import AxSearch
from tests.unit.search_helpers import QUAD_SPACE, assert_beats_random
from tests.unit.search_helpers import run_trials as run

pytestmark = pytest.mark.filterwarnings("ignore::Warning")

SPACE = QUAD_SPACE


def make(space: Any = None, **kwargs: Any) -> AxSearch:
    kwargs.setdefault("metric", "loss")
    kwargs.setdefault("mode", "min")
    searcher = AxSearch(**kwargs)
    assert searcher.set_search_properties(None, None, space if space is not None else SPACE)
    return searcher


def params(searcher: AxSearch) -> dict[str, Any]:
    return {p.name: p for p in searcher._params}


def trial_statuses(searcher: AxSearch) -> list[str]:
    trials = searcher._client._experiment.trials
    return [trials[i].status.name for i in sorted(trials)]


# --------------------------------------------------------------------------- conversion


def test_atune_domains_convert_to_ax_parameters() -> None:
    searcher = AxSearch(
        space={
            "u": tune.uniform(-1, 1),
            "lu": tune.loguniform(1e-4, 1e-1),
            "r": tune.randint(1, 4),
            "lr": tune.lograndint(1, 100),
            "c": tune.choice(["a", "b", "c"]),
            "qu": tune.quniform(0, 1, 0.25),
            "qr": tune.qrandint(0, 10, 2),
            "one": tune.randint(3, 4),
            "only": tune.choice(["k"]),
        }
    )
    p = params(searcher)
    assert p["u"] == RangeParameterConfig("u", (-1.0, 1.0), "float")
    assert p["lu"] == RangeParameterConfig("lu", (1e-4, 1e-1), "float", scaling="log")
    assert p["r"] == RangeParameterConfig("r", (1, 3), "int")  # atune's upper is excluded
    assert p["lr"] == RangeParameterConfig("lr", (1, 99), "int", scaling="log")
    assert p["c"] == ChoiceParameterConfig("c", ["a", "b", "c"], "str", is_ordered=False)
    assert p["qu"] == ChoiceParameterConfig(
        "qu", [0.0, 0.25, 0.5, 0.75, 1.0], "float", is_ordered=True
    )
    assert p["qr"] == RangeParameterConfig("qr", (0, 10), "int", step_size=2)
    assert "one" not in p and "only" not in p
    assert searcher._constants == {"one": 3, "only": "k"}


async def test_suggestions_lie_inside_the_space_and_keep_python_types() -> None:
    space = {
        "x": tune.uniform(-5, 5),
        "lr": tune.loguniform(1e-4, 1e-1),
        "k": tune.randint(1, 4),
        "q": tune.quniform(0, 1, 0.25),
        "c": tune.choice(["a", "b", "c"]),
        "d": tune.choice([{"depth": 1}, None, [1, 2]]),  # not Ax-native: sent as indices
    }
    searcher = make(space, seed=0)
    for i in range(5):
        config = await searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        assert -5 <= config["x"] <= 5 and type(config["x"]) is float
        assert 1e-4 * (1 - 1e-9) <= config["lr"] <= 1e-1 * (1 + 1e-9)
        assert config["k"] in (1, 2, 3) and type(config["k"]) is int
        assert config["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert config["c"] in ("a", "b", "c")
        assert config["d"] in ({"depth": 1}, None, [1, 2])
        await searcher.on_trial_complete(f"t{i}", {"loss": config["x"] ** 2})


async def test_nested_space_and_constants() -> None:
    searcher = make({"opt": {"lr": tune.uniform(0, 1), "name": "sgd"}, "epochs": 3})
    assert set(params(searcher)) == {"opt/lr"}
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert config["epochs"] == 3 and config["opt"]["name"] == "sgd"
    assert 0 <= config["opt"]["lr"] <= 1


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"n": tune.randn(0, 1)}, "normal distribution has none"),
        ({"n": tune.qloguniform(1, 100, 1)}, "does not combine a log scale"),
        ({"n": tune.qlograndint(1, 100, 2)}, "does not combine a log scale"),
        ({"g": tune.grid_search([1, 2])}, "grid_search parameter 'g'"),
        ({"f": tune.sample_from(lambda _: 1)}, "cannot search the sample_from function 'f'"),
        ({"q": tune.quniform(0, 1000, 0.001)}, "more than 10000"),
        ({"const": 1}, "at least one parameter"),
    ],
)
def test_unsupported_domains_are_config_errors(space: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        AxSearch(space=space)


# --------------------------------------------------------------------------- native spaces


async def test_native_parameter_configs() -> None:
    space = [
        RangeParameterConfig("x", (0.0, 1.0), "float"),
        ChoiceParameterConfig("c", ["a", "b", "c"], "str", is_ordered=False),
        RangeParameterConfig("m/n", (1, 8), "int", scaling="log"),
    ]
    searcher = AxSearch(space=space, metric="loss", mode="min")
    assert searcher.set_search_properties(None, None, {"const": 2})
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert 0 <= config["x"] <= 1 and config["c"] in "abc" and 1 <= config["m"]["n"] <= 8
    assert config["const"] == 2


async def test_ray_style_parameter_dicts() -> None:
    space = [
        {"name": "x", "type": "range", "bounds": [0.0, 1.0]},
        {"name": "n", "type": "range", "bounds": [1, 5], "value_type": "int", "log_scale": True},
        {"name": "c", "type": "choice", "values": [1, 2, 3], "is_ordered": True},
        {"name": "f", "type": "fixed", "value": "k"},
    ]
    searcher = AxSearch(space=space, metric="loss", mode="min")
    assert params(searcher)["n"] == RangeParameterConfig("n", (1, 5), "int", scaling="log")
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert 0 <= config["x"] <= 1 and config["n"] in range(1, 6) and config["c"] in (1, 2, 3)
    assert config["f"] == "k"


@pytest.mark.parametrize(
    ("space", "error", "match"),
    [
        ([{"name": "x", "type": "range"}], ConfigError, r"needs 'bounds'"),
        ([{"name": "x", "type": "interval", "bounds": [0, 1]}], ConfigError, "has type"),
        ([{"name": "x", "type": "range", "bounds": [0, 1], "lo": 0}], ConfigError, r"\['lo'\]"),
        ([{"name": "c", "type": "choice", "values": [1, "a"]}], ConfigError, "mixes value"),
        ([{"type": "range", "bounds": [0, 1]}], ConfigError, "needs a string 'name'"),
        ([{"name": "x", "type": "range", "bounds": [1, 0]}], ConfigError, "Ax refused `space`"),
        (["x"], ConfigTypeError, r"`space\[0\]` must be"),
        ("x", ConfigTypeError, "`space` must be a dict"),
    ],
)
def test_bad_native_spaces(space: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        AxSearch(space=space)


# --------------------------------------------------------------------------- protocol


async def test_points_to_evaluate_come_first() -> None:
    space = {"x": tune.uniform(-5, 5), "m": {"d": tune.choice([{"a": 1}, {"a": 2}, None])}}
    points = [{"x": 1.0, "m": {"d": {"a": 2}}}, {"x": -1.0, "m": {"d": None}}]
    searcher = make(space, points_to_evaluate=points)
    first = await searcher.suggest("a")
    second = await searcher.suggest("b")
    assert [first, second] == points
    assert isinstance(await searcher.suggest("c"), dict)  # then Ax's own trials


@pytest.mark.parametrize(
    ("point", "match"),
    [
        ({"x": 1.0}, "does not fit the search space"),  # y is missing
        ({"x": 1.0, "y": 99.0}, "does not fit the search space"),
        ({"x": 1.0, "y": 1.0, "z": 2}, "'z', which is not a parameter"),
    ],
)
async def test_point_that_does_not_fit_is_a_config_error(point: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        searcher = make(points_to_evaluate=[point])
        await searcher.suggest("a")


def test_point_with_an_unknown_choice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not one of its choices"):
        make({"d": tune.choice([{"a": 1}, None])}, points_to_evaluate=[{"d": 5}])


async def test_mode_max_maximises() -> None:
    searcher = make(metric="score", mode="max", seed=0)
    objective = searcher._client._experiment.optimization_config
    assert objective is None  # set with the first suggestion
    for i, score in enumerate([1.0, 5.0, 2.0]):
        assert isinstance(await searcher.suggest(f"t{i}"), dict)
        await searcher.on_trial_complete(f"t{i}", {"score": score})
    objective = searcher._client._experiment.optimization_config.objective
    assert objective.metric_names == ["score"] and not objective.minimize
    best_index = searcher._client.get_best_parameterization(use_model_predictions=False)[2]
    assert best_index == 1


@pytest.mark.parametrize("metric", ["val/loss", "mean-loss", "1st", "E"])
async def test_metric_names_that_are_not_identifiers(metric: str) -> None:
    searcher = make(metric=metric)
    for i, value in enumerate([3.0, 1.0, 2.0]):
        assert isinstance(await searcher.suggest(f"t{i}"), dict)
        await searcher.on_trial_complete(f"t{i}", {metric: value})
    objective = searcher._client._experiment.optimization_config.objective
    assert len(objective.metric_names) == 1 and objective.minimize
    assert searcher._client.get_best_parameterization(use_model_predictions=False)[2] == 1


async def test_ax_answers_not_now_until_its_sobol_trials_report() -> None:
    searcher = make(seed=0)
    for i in range(5):  # Ax's initialization budget for this space
        assert isinstance(await searcher.suggest(f"t{i}"), dict)
    assert await searcher.suggest("t5") is None
    await searcher.on_trial_complete("t0", {"loss": 1.0})
    assert await searcher.suggest("t5") is None  # Ax wants more observations
    for i in range(1, 5):
        await searcher.on_trial_complete(f"t{i}", {"loss": float(i)})
    assert isinstance(await searcher.suggest("t5"), dict)  # the GP's first proposal


async def test_errored_and_metric_less_trials_are_marked_failed(caplog) -> None:
    searcher = make(seed=0)
    for i in range(3):
        assert isinstance(await searcher.suggest(f"t{i}"), dict)
    await searcher.on_trial_complete("t0", None, error=True)
    with caplog.at_level(logging.WARNING, logger="atune.search._library"):
        await searcher.on_trial_complete("t1", {"other": 1.0})
    assert "ended without reporting 'loss'" in caplog.text
    await searcher.on_trial_complete("t2", {"loss": float("nan")})
    await searcher.on_trial_complete("unknown", {"loss": 1.0})  # not ours: ignored
    assert trial_statuses(searcher) == ["FAILED", "FAILED", "FAILED"]
    configs = await run(searcher, 3, prefix="n")  # failed trials do not block the search
    assert len(configs) == 3
    assert trial_statuses(searcher)[3:] == ["COMPLETED"] * 3


async def test_parameter_constraints_hold() -> None:
    space = {"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)}
    searcher = make(space, parameter_constraints=["x + y <= 1"], seed=0)
    configs = []
    for i in range(5):
        config = await searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        configs.append(config)
    assert all(c["x"] + c["y"] <= 1 + 1e-9 for c in configs)


async def test_outcome_constraints_read_their_metrics_from_the_result() -> None:
    searcher = make(outcome_constraints=["acc >= 0.5"], seed=0)
    await searcher.suggest("a")
    await searcher.suggest("b")
    await searcher.on_trial_complete("a", {"loss": 1.0, "acc": 0.9})
    await searcher.on_trial_complete("b", {"loss": 2.0})  # acc missing: loss still used
    config = searcher._client._experiment.optimization_config
    assert [c.metric_names for c in config.outcome_constraints] == [["acc"]]
    df = searcher._client._experiment.lookup_data().df
    values = {(r.trial_index, r.metric_name): r.mean for r in df.itertuples()}
    assert values == {(0, "loss"): 1.0, (0, "acc"): 0.9, (1, "loss"): 2.0}


async def test_bad_constraints_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="parameter_constraints"):
        AxSearch(space=SPACE, parameter_constraints=["x + nope <= 1"])
    searcher = make(outcome_constraints=["acc >= >= 1"])
    with pytest.raises(ConfigError, match="outcome_constraints"):
        await searcher.suggest("a")


async def test_same_seed_gives_same_suggestions() -> None:
    first = await run(make(seed=3), 5)
    second = await run(make(seed=3), 5)
    other = await run(make(seed=4), 5)
    assert first == second
    assert first != other


async def test_save_restore_gives_the_same_next_suggestion(tmp_path) -> None:
    searcher = make(seed=0, points_to_evaluate=[{"x": 0.5, "y": 0.5}, {"x": 1.0, "y": 1.0}])
    await run(searcher, 1)  # one point used, one left
    path = str(tmp_path / "sobol.pkl")
    searcher.save(path)
    restored = AxSearch()
    restored.restore(path)
    assert await restored.suggest("p") == await searcher.suggest("p") == {"x": 1.0, "y": 1.0}
    await run(searcher, 5, prefix="s")  # into the GP phase
    await searcher.on_trial_complete("p", {"loss": 3.0})
    searcher.save(path)
    restored = AxSearch(seed=99)  # a different seed: the state wins
    restored.restore(path)
    assert await restored.suggest("next") == await searcher.suggest("next")


def test_state_from_another_version_is_refused() -> None:
    searcher = make()
    state = searcher.get_state()
    state["version"] = 0
    with pytest.raises(ConfigError, match="cannot restore this state"):
        AxSearch().set_state(state)


async def test_metric_and_mode_are_required() -> None:
    searcher = AxSearch(space=SPACE)
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        await searcher.suggest("a")


async def test_space_is_required() -> None:
    searcher = AxSearch(metric="loss", mode="min")
    assert searcher.set_search_properties(None, None, {})
    with pytest.raises(ConfigError, match="has no search space"):
        await searcher.suggest("a")


def test_space_given_twice_is_refused() -> None:
    searcher = AxSearch(space=SPACE, metric="loss", mode="min")
    with pytest.raises(ConfigError, match=r"defines search parameters \['z'\]"):
        searcher.set_search_properties(None, None, {"z": tune.uniform(0, 1)})


# --------------------------------------------------------------------------- ax_client


def user_client(objective: str | None = "score") -> Client:
    client = Client()
    client.configure_experiment(
        parameters=[RangeParameterConfig("x", (0.0, 1.0), "float")],
        parameter_constraints=None,
    )
    if objective is not None:
        client.configure_optimization(objective)
    return client


async def test_user_built_client() -> None:
    searcher = AxSearch(ax_client=user_client("score"), seed=0)
    assert (searcher.metric, searcher.mode) == ("score", "max")
    assert searcher.set_search_properties("other", "min", {"const": 1})
    config = await searcher.suggest("a")
    assert isinstance(config, dict) and 0 <= config["x"] <= 1 and config["const"] == 1
    await searcher.on_trial_complete("a", {"score": 2.0})
    assert trial_statuses(searcher) == ["COMPLETED"]


async def test_user_client_without_objective_takes_metric_and_mode() -> None:
    searcher = AxSearch(ax_client=user_client(None), metric="loss", mode="min")
    assert isinstance(await searcher.suggest("a"), dict)
    objective = searcher._client._experiment.optimization_config.objective
    assert objective.metric_names == ["loss"] and objective.minimize


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"space": SPACE}, ConfigError, r"do not pass \['space'\]"),
        ({"outcome_constraints": ["a >= 1"]}, ConfigError, "outcome_constraints"),
        ({"metric": "loss", "mode": "min"}, ConfigError, "optimises 'score' \\(max\\)"),
    ],
)
def test_user_client_conflicts(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        AxSearch(ax_client=user_client(), **kwargs)


def test_user_client_needs_an_experiment() -> None:
    with pytest.raises(ConfigError, match="configure_experiment"):
        AxSearch(ax_client=Client())


def test_multi_objective_client_is_refused() -> None:
    with pytest.raises(ConfigError, match="one metric"):
        AxSearch(ax_client=user_client("a, b"))


def test_legacy_ax_client_is_refused_with_its_replacement() -> None:
    from ax.service.ax_client import AxClient

    with pytest.raises(ConfigError, match=r"legacy .*AxClient.*ax\.api\.Client"):
        AxSearch(ax_client=AxClient())


def test_wrong_client_type() -> None:
    with pytest.raises(ConfigTypeError, match=r"`ax_client` must be an ax\.api\.Client"):
        AxSearch(ax_client=object())


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1}, ConfigError, "`seed` must be None or an int"),
        ({"seed": "0"}, ConfigError, "`seed` must be None or an int"),
        ({"points_to_evaluate": {"x": 1}}, ConfigTypeError, "`points_to_evaluate` must be"),
        ({"parameter_constraints": "x <= 1"}, ConfigTypeError, "`parameter_constraints`"),
        ({"outcome_constraints": [1]}, ConfigTypeError, "`outcome_constraints`"),
        ({"enforce_sequential_optimization": False}, ConfigError, "unknown Ax argument"),
        ({"seed": 1, "random_seed": 2}, ConfigError, "pass one"),
        ({"mode": "best"}, ConfigError, "`mode` must be 'min' or 'max'"),
        ({"space": {}}, ConfigError, "`space` is empty"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        AxSearch(**kwargs)


async def test_ax_kwargs_reach_client_and_generation_strategy() -> None:
    searcher = make(random_seed=1, initialization_budget=2, initialize_with_center=False)
    assert searcher._seed == 1
    configs = await run(searcher, 3)
    assert len(configs) == 3
    nodes = [
        t.generator_runs[0]._generation_node_name
        for t in searcher._client._experiment.trials.values()
    ]
    assert nodes[:2] == ["Sobol", "Sobol"] and nodes[2] != "Sobol"


def test_bad_generation_strategy_kwargs_are_config_errors() -> None:
    searcher = make(method="best")
    with pytest.raises(ConfigError, match="generation strategy"):
        searcher._configure()


def test_missing_library_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ax.api", None)
    with pytest.raises(ImportError, match=r'pip install "atune\[ax\]"'):
        AxSearch(space=SPACE)


def test_ax_info_logging_is_quiet_by_default() -> None:
    AxSearch()
    from ax.utils.common.logger import ROOT_STREAM_HANDLER

    assert ROOT_STREAM_HANDLER.level >= logging.WARNING


# --------------------------------------------------------------------------- quality


async def test_beats_random_search_on_a_quadratic() -> None:
    """30 trials: Ax ends closer to the optimum than random search (mean of 2 seeds).

    Two seeds, not three: once points cluster near the optimum a single BoTorch
    suggestion can take seconds on a 2-core machine.
    """
    await assert_beats_random(lambda seed: AxSearch(seed=seed), seeds=(0, 1))
