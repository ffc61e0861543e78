"""ZOOptSearch on the real zoopt package (no Ray)."""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import numpy as np
import pytest

zoopt = pytest.importorskip("zoopt")

import atune as tune  # noqa: E402
from atune.errors import ConfigError, ConfigTypeError  # noqa: E402
from atune.search import FINISHED, BasicVariantGenerator  # noqa: E402
from atune.search.zoopt import ZOOptSearch, _convert_domain  # noqa: E402
from tests.unit.search_helpers import QUAD_SPACE, quadratic  # noqa: E402
from tests.unit.search_helpers import run_trials as run  # noqa: E402

ValueType = zoopt.ValueType

SPACE = QUAD_SPACE


def make(space: dict[str, Any] | None = None, num_samples: int = 30, **kwargs: Any) -> ZOOptSearch:
    kwargs.setdefault("seed", 0)
    searcher = ZOOptSearch(metric="loss", mode="min", **kwargs)
    config = space if space is not None else ({} if "dim_dict" in kwargs else SPACE)
    assert searcher.set_search_properties(None, None, config, num_samples=num_samples)
    return searcher


# --------------------------------------------------------------------------- spaces

MIXED = {
    "x": tune.uniform(-5, 5),
    "lr": tune.loguniform(1e-4, 1e-1),
    "k": tune.randint(1, 4),
    "q": tune.quniform(0, 1, 0.25),
    "qi": tune.qrandint(0, 10, 5),
    "li": tune.lograndint(1, 100),
    "ql": tune.qloguniform(1e-3, 1, 1e-3),
    "c": tune.choice(["a", 2, None, {"d": 1}]),
}


async def test_suggestions_lie_inside_the_space() -> None:
    searcher = make(MIXED, num_samples=40)
    configs = await run(searcher, 40, objective=lambda c: c["x"] ** 2)
    assert len(configs) == 40
    for config in configs:
        assert all(domain.is_valid(config[key]) for key, domain in MIXED.items()), config
        assert isinstance(config["x"], float) and isinstance(config["lr"], float)
        assert all(type(config[k]) is int for k in ("k", "qi", "li"))
    # choice keeps the categories' own types (ZOOpt searches their indices)
    assert {repr(c["c"]) for c in configs} <= {"'a'", "2", "None", "{'d': 1}"}
    assert any(c["c"] == 2 and type(c["c"]) is int for c in configs)


@pytest.mark.parametrize(
    ("domain", "dim"),
    [
        (tune.uniform(-1, 2), (ValueType.CONTINUOUS, [-1.0, 2.0], 1e-12)),
        (tune.loguniform(1e-3, 1), (ValueType.CONTINUOUS, [math.log(1e-3), 0.0], 1e-12)),
        (tune.randint(2, 5), (ValueType.DISCRETE, [2, 4], True)),
        (tune.qrandint(0, 10, 5), (ValueType.DISCRETE, [0, 2], True)),
        (tune.quniform(0.5, 2, 0.5), (ValueType.DISCRETE, [1, 4], True)),
        (tune.choice(["a", "b", "c"]), (ValueType.GRID, [0, 1, 2])),
    ],
)
def test_domains_convert_to_zoopt_dimensions(domain: Any, dim: tuple[Any, ...]) -> None:
    converted = _convert_domain("p", domain).dim
    assert converted[0] == dim[0] and len(converted) == len(dim)
    assert converted[1] == pytest.approx(dim[1])
    assert converted[2:] == dim[2:]


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"g": tune.grid_search([1, 2])}, "grid_search parameter 'g'"),
        ({"f": tune.sample_from(lambda _: 1)}, "sample_from function 'f'"),
        ({"n": tune.randn(0, 1)}, "bounded range for 'n'"),
        ({"a": {"n": tune.qrandn(0, 1, 0.5)}}, "bounded range for 'a/n'"),
        ({}, "at least one parameter"),
    ],
)
def test_unsupported_spaces_are_rejected(space: dict[str, Any], match: str) -> None:
    searcher = ZOOptSearch(metric="loss", mode="min")
    with pytest.raises(ConfigError, match=match):
        searcher.set_search_properties(None, None, space, num_samples=10)


async def test_nested_space_and_constants() -> None:
    searcher = make({"opt": {"lr": tune.uniform(0, 1), "name": "sgd"}, "epochs": 3})
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert config["epochs"] == 3 and config["opt"]["name"] == "sgd"
    assert 0 <= config["opt"]["lr"] <= 1


async def test_native_dim_dict() -> None:
    dim_dict = {
        "height": (ValueType.CONTINUOUS, [-10, 10], 1e-2),
        "width": (ValueType.DISCRETE, [-10, 10], False),
        "layers": (ValueType.GRID, [4, "wide", None]),
        "model": {"lr": tune.loguniform(1e-4, 1e-1)},  # atune domains may be mixed in
        "opt/momentum": (ValueType.CONTINUOUS, [0, 1], 1e-3),
    }
    searcher = make(dim_dict=dim_dict, num_samples=20)
    searcher.set_search_properties(None, None, {"steps": 5}, num_samples=20)  # constants only
    configs = await run(searcher, 20, objective=lambda c: c["height"] ** 2)
    assert len(configs) == 20
    for c in configs:
        assert -10 <= c["height"] <= 10 and c["height"] == round(c["height"], 2)
        assert type(c["width"]) is int and -10 <= c["width"] <= 10
        assert c["layers"] in (4, "wide", None)
        assert 1e-4 <= c["model"]["lr"] <= 1e-1
        assert 0 <= c["opt"]["momentum"] <= 1
        assert c["steps"] == 5
    assert any(type(c["layers"]) is int for c in configs)


def test_dim_dict_and_a_param_space_with_domains_are_rejected() -> None:
    searcher = ZOOptSearch(dim_dict={"x": (ValueType.CONTINUOUS, [0, 1], 1e-6)})
    with pytest.raises(ConfigError, match=r"defines search parameters \['y'\]"):
        searcher.set_search_properties("loss", "min", {"y": tune.uniform(0, 1)})


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ((ValueType.CONTINUOUS, [0, 1]), r"\(ValueType.CONTINUOUS, \[lower, upper\], float_"),
        ((ValueType.CONTINUOUS, [1, 0], 1e-3), "lower <= upper"),
        ((ValueType.CONTINUOUS, [0, 1], 0), "float_precision > 0"),
        ((ValueType.DISCRETE, [0.5, 3], True), "integer bounds"),
        ((ValueType.DISCRETE, [0, "3"], True), "two finite numbers"),
        ((ValueType.GRID, []), "at least one value"),
        ((ValueType.GRID, [1, 2], 3), r"\(ValueType.GRID, \[value, ...\]\)"),
    ],
)
def test_bad_native_dimensions_are_rejected(entry: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=rf"dim_dict\['p'\].*{match}|{match}"):
        ZOOptSearch(dim_dict={"p": entry})


def test_bad_has_order_is_a_type_error() -> None:
    with pytest.raises(ConfigTypeError, match="has_order True or False"):
        ZOOptSearch(dim_dict={"p": (ValueType.DISCRETE, [0, 3], "yes")})


# --------------------------------------------------------------------------- behaviour


async def test_points_to_evaluate_come_first() -> None:
    points = [{"x": 1.0 + i / 10, "y": 2.0} for i in range(6)]  # more than ZOOpt's 4 initial
    configs = await run(make(points_to_evaluate=points), 8)
    assert configs[:6] == points
    assert configs[6] not in points


async def test_points_keep_exact_values_and_tell_zoopt_the_same_point() -> None:
    space = {"lr": tune.loguniform(1e-4, 1e-1), "c": tune.choice(["a", "b"]), "n": {"k": 7}}
    point = {"lr": 1e-3, "c": "b", "n": {"k": 7}}
    searcher = make(space, points_to_evaluate=[point])
    config = await searcher.suggest("a")
    assert config == point
    x = searcher._live["a"].get_x()
    assert x == pytest.approx([math.log(1e-3), 1])


@pytest.mark.parametrize(
    ("point", "match"),
    [
        ({"x": 1.0}, r"lacks \['y'\]"),
        ({"x": 1.0, "y": 11.0}, "'y' to 11.0, which lies outside"),
        ({"x": 1.0, "y": 1.0, "z": 0}, "'z', which is not a parameter"),
    ],
)
def test_points_that_do_not_fit_are_rejected(point: dict[str, Any], match: str) -> None:
    searcher = ZOOptSearch(metric="loss", mode="min", points_to_evaluate=[point])
    with pytest.raises(ConfigError, match=match):
        searcher.set_search_properties(None, None, SPACE, num_samples=10)


async def test_max_mode_tells_the_negated_metric() -> None:
    searcher = ZOOptSearch(metric="score", mode="max", budget=10, dim_dict=SPACE)
    await searcher.suggest("a")
    solution = searcher._live["a"]
    await searcher.on_trial_complete("a", {"score": 2.0})
    assert solution.get_value() == -2.0


async def test_budget_from_num_samples_then_finished() -> None:
    searcher = make(num_samples=5)
    assert len(await run(searcher, 10)) == 5
    assert searcher.is_finished()
    assert await searcher.suggest("more") == FINISHED


async def test_own_budget_and_a_budget_below_zoopts_minimum() -> None:
    searcher = ZOOptSearch(metric="loss", mode="min", budget=2, dim_dict=SPACE)
    assert len(await run(searcher, 5)) == 2  # zoopt.Parameter itself exits for budget < 3


async def test_budget_is_required() -> None:
    searcher = ZOOptSearch(metric="loss", mode="min", dim_dict=SPACE)
    assert searcher.set_search_properties(None, None, {}, num_samples=-1)
    with pytest.raises(ConfigError, match=r"needs a `budget`.*num_samples=N"):
        await searcher.suggest("a")


def test_budget_and_num_samples_that_differ_warn(caplog) -> None:
    searcher = ZOOptSearch(budget=10, dim_dict=SPACE)
    with caplog.at_level(logging.WARNING):
        searcher.set_search_properties("loss", "min", {}, num_samples=20)
    assert "budget=10 differs from num_samples=20" in caplog.text


async def test_fully_enumerated_space_finishes() -> None:
    searcher = make({"c": tune.choice(["a", "b"])}, num_samples=10)
    configs = await run(searcher, 10, objective=lambda c: 0.0)
    assert sorted(c["c"] for c in configs) == ["a", "b"]
    assert searcher.is_finished()


async def test_failed_trials_are_told_as_worst_and_the_search_goes_on() -> None:
    searcher = make(num_samples=12)
    told = []
    for i in range(8):  # every initial trial fails: ZOOpt must still leave its initial phase
        config = await searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        told.append(searcher._live[f"t{i}"])
        result = None if i % 2 else {"other": 1.0}
        await searcher.on_trial_complete(f"t{i}", result, error=i % 4 == 1)
    assert all(solution.get_value() == math.inf for solution in told)
    await searcher.on_trial_complete("unknown", {"loss": 1.0})  # ignored
    configs = await run(searcher, 4, prefix="ok")
    assert len(configs) == 4


async def test_nan_metric_is_told_as_worst() -> None:
    searcher = make()
    await searcher.suggest("a")
    solution = searcher._live["a"]
    await searcher.on_trial_complete("a", {"loss": float("nan")})
    assert solution.get_value() == math.inf


async def test_parallel_num_limits_outstanding_suggestions() -> None:
    sequential = make()
    assert isinstance(await sequential.suggest("a"), dict)
    assert await sequential.suggest("b") is None  # parallel_num=1: wait for "a"
    await sequential.on_trial_complete("a", {"loss": 1.0})
    assert isinstance(await sequential.suggest("b"), dict)

    parallel = make(parallel_num=3)
    assert all([isinstance(await parallel.suggest(f"p{i}"), dict) for i in range(3)])
    assert await parallel.suggest("p3") is None
    await parallel.on_trial_complete("p0", {"loss": 1.0})
    assert isinstance(await parallel.suggest("p3"), dict)


async def test_zoopt_waits_for_its_initial_sample() -> None:
    searcher = make(parallel_num=8)  # budget 30: 4 initial configs
    for i in range(4):
        assert isinstance(await searcher.suggest(f"t{i}"), dict)
    assert await searcher.suggest("t4") is None  # the model needs all 4 results
    for i in range(3):
        await searcher.on_trial_complete(f"t{i}", {"loss": float(i)})
    assert await searcher.suggest("t4") is None
    await searcher.on_trial_complete("t3", {"loss": 3.0})
    assert all([isinstance(await searcher.suggest(f"t{i}"), dict) for i in range(4, 12)])
    assert await searcher.suggest("t12") is None


@pytest.mark.parametrize("done", [2, 10])  # inside and after the initial phase
async def test_save_restore_gives_the_same_next_suggestion(tmp_path, done: int) -> None:
    searcher = make(MIXED, parallel_num=2)
    await run(searcher, done, objective=lambda c: c["x"] ** 2)
    assert isinstance(await searcher.suggest("live"), dict)  # outstanding when saved
    path = str(tmp_path / "zoopt.pkl")
    searcher.save(path)
    restored = make(MIXED, parallel_num=2, seed=99)
    restored.restore(path)
    assert await restored.suggest("next") == await searcher.suggest("next")
    for s in (searcher, restored):
        await s.on_trial_complete("live", {"loss": 0.5})
        await s.on_trial_complete("next", {"loss": 0.25})
    assert await run(restored, 5, "r", lambda c: c["x"] ** 2) == await run(
        searcher, 5, "r", lambda c: c["x"] ** 2
    )


async def test_state_of_another_version_is_rejected() -> None:
    searcher = make()
    state = searcher.get_state()
    state["version"] = 0
    with pytest.raises(ConfigError, match="cannot restore this state"):
        make().set_state(state)


async def test_seeds_and_the_global_random_state() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = await run(make(seed=3), 8)
    assert (np.random.get_state()[1] == before).all()  # the user's np.random is untouched
    assert first == await run(make(seed=3), 8)
    assert first != await run(make(seed=4), 8)
    np.random.seed(7)
    unseeded = await run(make(seed=None), 8)
    np.random.seed(7)
    assert unseeded == await run(make(seed=None), 8)


async def test_searchers_do_not_disturb_each_other() -> None:
    alone = await run(make(seed=1), 10)
    a = make(seed=1)
    # b's precision (3 decimals) must not leak into a's (12 decimals), nor its draws
    b = make(seed=2, dim_dict={"z": (ValueType.CONTINUOUS, [0, 1], 1e-3)})
    interleaved = []
    for i in range(10):
        config = await a.suggest(f"a{i}")
        assert isinstance(config, dict)
        interleaved.append(config)
        other = await b.suggest(f"b{i}")
        assert isinstance(other, dict)
        await b.on_trial_complete(f"b{i}", {"loss": other["z"]})
        await a.on_trial_complete(f"a{i}", {"loss": quadratic(config)})
    assert interleaved == alone


@pytest.mark.parametrize("algo", ["asracos", "Asracos", "sracos"])
async def test_algo_names(algo: str) -> None:
    assert len(await run(make(algo=algo), 6)) == 6


async def test_parameter_kwargs_reach_zoopt() -> None:
    searcher = make(exploration_rate=0.5, uncertain_bits=1)
    await searcher.suggest("a")
    assert searcher._optimizer._parameter.get_probability() == 0.5
    assert searcher._optimizer.ub == 1


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"algo": "racos"}, ConfigError, "`algo` must be one of"),
        ({"budget": 0}, ConfigError, "`budget` must be >= 1"),
        ({"budget": 2.5}, ConfigTypeError, "`budget` must be an int"),
        ({"parallel_num": 0}, ConfigError, "`parallel_num` must be >= 1"),
        ({"seed": -1}, ConfigError, "`seed` must be None or an int"),
        ({"mode": "maximize"}, ConfigError, "`mode` must be 'min' or 'max'"),
        ({"dim_dict": [("x", 1)]}, ConfigTypeError, "`dim_dict` must be a dict"),
        ({"points_to_evaluate": {"x": 1}}, ConfigTypeError, "list of dicts"),
        ({"train_size": 3}, ConfigError, r"unknown arguments \['train_size'\]"),
        ({"exploration_rate": 2}, ConfigError, r"`exploration_rate` must be a number in \[0, 1\]"),
        ({"uncertain_bits": 0}, ConfigError, "`uncertain_bits` must be >= 1"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ZOOptSearch(**kwargs)


async def test_metric_mode_and_space_are_required() -> None:
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        await ZOOptSearch(dim_dict=SPACE, budget=5).suggest("a")
    with pytest.raises(ConfigError, match="pass `dim_dict` to ZOOptSearch or a `param_space`"):
        await ZOOptSearch(metric="loss", mode="min", budget=5).suggest("a")


def test_missing_library_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "zoopt", None)  # makes `import zoopt` fail
    with pytest.raises(ImportError, match=r'pip install "atune\[zoopt\]"'):
        ZOOptSearch()


# --------------------------------------------------------------------------- quality


async def test_beats_random_search_on_a_quadratic() -> None:
    """30 trials: ZOOpt ends closer to the optimum than random search (mean of 5 seeds).

    SRacos changes one coordinate per sample and sometimes settles early, so single runs
    vary a lot: over seeds 0-19 the mean best is 0.40 for ZOOpt and 0.96 for random
    search, but on seeds 0-2 alone random search is lucky (0.42) and the two tie.
    """
    zoopt_best, random_best = [], []
    for seed in range(5):
        configs = await run(make(seed=seed), 30)
        assert len(configs) == 30
        zoopt_best.append(min(quadratic(c) for c in configs))
        random = BasicVariantGenerator(random_state=seed)
        random.set_search_properties("loss", "min", SPACE, num_samples=30)
        random_best.append(min(quadratic(c) for c in await run(random, 30)))
    assert np.mean(zoopt_best) < np.mean(random_best)
