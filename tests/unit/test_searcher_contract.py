"""The contract every searcher honours, run against each implementation.

A factory gives a fresh searcher for a seed, the space it supports and whether it
accepts ``points_to_evaluate``. Integrations whose library is not installed are skipped.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import atune as tune
from atune.errors import ConfigError
from atune.search import (
    FINISHED,
    BasicVariantGenerator,
    ConcurrencyLimiter,
    Repeater,
    Searcher,
    SearchGenerator,
)

MIXED_SPACE = {"x": tune.uniform(-5.0, 5.0), "n": tune.randint(0, 10), "c": tune.choice(["a", "b"])}
FLOAT_SPACE = {"x": tune.uniform(-5.0, 5.0), "y": tune.uniform(0.0, 1.0)}


@dataclass
class Case:
    make: Callable[..., Searcher]  # make(seed, points_to_evaluate) -> Searcher
    space: dict[str, Any]
    needs: str | None = None  # module that must be importable


def _basic(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    return BasicVariantGenerator(points_to_evaluate=points, random_state=seed)


CASES: dict[str, Case] = {
    "basic_variant": Case(_basic, MIXED_SPACE),
    "concurrency_limited": Case(
        lambda seed, points=None: ConcurrencyLimiter(SearchGenerator(_basic(seed, points)), 2),
        MIXED_SPACE,
    ),
    "repeater": Case(lambda seed, points=None: Repeater(_basic(seed, points), 1), MIXED_SPACE),
}


def _optuna(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    from atune.search.optuna import OptunaSearch

    return OptunaSearch(seed=seed, points_to_evaluate=points)


def _hyperopt(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    from atune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(random_state_seed=seed, points_to_evaluate=points, n_initial_points=3)


def _bayesopt(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    from atune.search.bayesopt import BayesOptSearch

    return BayesOptSearch(random_state=seed, points_to_evaluate=points, random_search_steps=3)


def _nevergrad(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    import nevergrad as ng

    from atune.search.nevergrad import NevergradSearch

    return NevergradSearch(optimizer=ng.optimizers.OnePlusOne, points_to_evaluate=points, seed=seed)


def _zoopt(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    from atune.search.zoopt import ZOOptSearch

    # The contract's default num_samples is -1 (unlimited): give ZOOpt a budget itself.
    return ZOOptSearch(budget=20, points_to_evaluate=points, seed=seed)


def _bohb(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    from atune.search.bohb import TuneBOHB

    return TuneBOHB(seed=seed, points_to_evaluate=points)


def _ax(seed: int, points: list[dict[str, Any]] | None = None) -> Searcher:
    from atune.search.ax import AxSearch

    return AxSearch(seed=seed, points_to_evaluate=points)


CASES["optuna"] = Case(_optuna, MIXED_SPACE, needs="optuna")
CASES["hyperopt"] = Case(_hyperopt, MIXED_SPACE, needs="hyperopt")
CASES["bayesopt"] = Case(_bayesopt, FLOAT_SPACE, needs="bayes_opt")
CASES["nevergrad"] = Case(_nevergrad, MIXED_SPACE, needs="nevergrad")
CASES["zoopt"] = Case(_zoopt, MIXED_SPACE, needs="zoopt")
CASES["bohb"] = Case(_bohb, MIXED_SPACE, needs="hpbandster")
CASES["ax"] = Case(_ax, MIXED_SPACE, needs="ax")


def case(name: str) -> Case:
    c = CASES[name]
    if c.needs is not None and importlib.util.find_spec(c.needs) is None:
        pytest.skip(f"{c.needs} is not installed")
    return c


def prepared(c: Case, seed: int = 0, points=None, num_samples: int = -1) -> Searcher:
    return prepared_from(c.make(seed, points), c, num_samples)


def prepared_from(searcher: Searcher, c: Case, num_samples: int = -1) -> Searcher:
    """``searcher`` as a Tuner sets it up: wrapped for the budget, given the space."""
    if not isinstance(searcher, (BasicVariantGenerator, SearchGenerator)):
        searcher = SearchGenerator(searcher)
    assert searcher.set_search_properties("loss", "min", c.space, num_samples=num_samples)
    return searcher


def loss(config: dict[str, Any]) -> float:
    return (config["x"] - 1.0) ** 2 + (0.5 if config.get("c") == "b" else 0.0)


def inside(config: dict[str, Any], space: dict[str, Any]) -> bool:
    return all(domain.is_valid(config[key]) for key, domain in space.items())


async def run_trials(searcher: Searcher, n: int, start: int = 0) -> list[dict[str, Any]]:
    configs = []
    for i in range(start, start + n):
        config = await searcher.suggest(f"t{i}")
        assert isinstance(config, dict), config
        configs.append(config)
        await searcher.on_trial_complete(f"t{i}", {"loss": loss(config)})
    return configs


NAMES = sorted(CASES)
#: Searchers that take whatever space each Tuner gives (no model tied to one space).
WITHOUT_OWN_SPACE = {"basic_variant", "concurrency_limited", "repeater"}


@pytest.mark.parametrize("name", NAMES)
async def test_suggestions_lie_inside_the_space(name):
    c = case(name)
    configs = await run_trials(prepared(c), 12)
    assert all(inside(config, c.space) for config in configs)


@pytest.mark.parametrize("name", NAMES)
async def test_points_to_evaluate_come_first(name):
    c = case(name)
    point = {k: v for k, v in {"x": 1.25, "n": 3, "c": "b", "y": 0.5}.items() if k in c.space}
    searcher = prepared(c, points=[point])
    first = await searcher.suggest("t0")
    assert {k: first[k] for k in point} == point


@pytest.mark.parametrize("name", NAMES)
async def test_a_seed_reproduces_the_first_suggestions(name):
    c = case(name)
    a = await run_trials(prepared(c, seed=3), 4)
    b = await run_trials(prepared(c, seed=3), 4)
    assert a == b


@pytest.mark.parametrize("name", NAMES)
async def test_save_then_restore_gives_the_same_next_suggestion(name, tmp_path):
    c = case(name)
    searcher = prepared(c, seed=5)
    await run_trials(searcher, 5)
    path = str(tmp_path / "state.pkl")
    searcher.save(path)
    expected = await searcher.suggest("t5")
    restored = prepared(c, seed=99)  # a different seed: the state must win
    restored.restore(path)
    assert await restored.suggest("t5") == expected


@pytest.mark.parametrize("name", NAMES)
async def test_restored_searcher_continues_in_a_new_tuner_with_the_same_space(name, tmp_path):
    """save → restore into a searcher built like the first → the Tuner's param space again."""
    c = case(name)
    searcher = prepared(c, seed=5)
    await run_trials(searcher, 5)
    inner = searcher.searcher if isinstance(searcher, SearchGenerator) else searcher
    path = str(tmp_path / "state.pkl")
    inner.save(path)  # the state a Tuner writes to searcher-state.pkl
    expected = await searcher.suggest("t5")
    restored = c.make(5, None)
    restored.restore(path)
    again = prepared_from(restored, c, num_samples=10)  # what a new Tuner does
    assert await again.suggest("t5") == expected


@pytest.mark.parametrize("name", NAMES)
async def test_errored_trials_do_not_break_the_search(name):
    c = case(name)
    searcher = prepared(c)
    for i in range(3):
        config = await searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        await searcher.on_trial_complete(f"t{i}", None, error=True)
    configs = await run_trials(searcher, 3, start=3)
    assert all(inside(config, c.space) for config in configs)


@pytest.mark.parametrize("name", NAMES)
async def test_finishes_when_the_budget_is_spent(name):
    c = case(name)
    searcher = prepared(c, num_samples=3)
    await run_trials(searcher, 3)
    assert await searcher.suggest("t3") == FINISHED


def test_loss_helper_has_its_optimum_at_x_1():
    assert math.isclose(loss({"x": 1.0, "c": "a"}), 0.0)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in WITHOUT_OWN_SPACE])
async def test_restored_searcher_refuses_a_different_space(name, tmp_path):
    c = case(name)
    searcher = prepared(c, seed=5)
    await run_trials(searcher, 2)
    path = str(tmp_path / "state.pkl")
    searcher.searcher.save(path)
    restored = c.make(5, None)
    restored.restore(path)
    other = {**c.space, "x": tune.uniform(-1.0, 1.0)}
    with pytest.raises(ConfigError, match="already searches the param_space it was given"):
        SearchGenerator(restored).set_search_properties("loss", "min", other)


# ----------------------------------------------------------------------- by name

BY_NAME = {
    "random": "BasicVariantGenerator",
    "variant_generator": "BasicVariantGenerator",
    "basic_variant": "BasicVariantGenerator",
    "optuna": "OptunaSearch",
    "hyperopt": "HyperOptSearch",
    "bayesopt": "BayesOptSearch",
    "nevergrad": "NevergradSearch",
    "zoopt": "ZOOptSearch",
    "bohb": "TuneBOHB",
    "ax": "AxSearch",
}
_NAME_NEEDS = {
    "optuna": "optuna",
    "hyperopt": "hyperopt",
    "bayesopt": "bayes_opt",
    "nevergrad": "nevergrad",
    "zoopt": "zoopt",
    "bohb": "hpbandster",
    "ax": "ax",
}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_searcher_can_be_named(name):
    from atune.search import create_searcher

    needs = _NAME_NEEDS.get(name)
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    searcher = create_searcher(name.upper())  # names are case-insensitive
    assert type(searcher).__name__ == BY_NAME[name]
    tuner = tune.Tuner(
        lambda config: None,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=name, num_samples=2),
    )
    assert tuner is not None


def test_unknown_name_and_bad_arguments_are_clear_errors():
    from atune.errors import ConfigTypeError
    from atune.search import create_searcher

    with pytest.raises(ConfigError, match=r"`search_alg` must be one of .*'optuna'"):
        create_searcher("tpe")
    with pytest.raises(ConfigTypeError, match=r"'random' \(BasicVariantGenerator\).*it takes:"):
        create_searcher("random", seeed=1)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in WITHOUT_OWN_SPACE])
@pytest.mark.parametrize(
    ("leaf", "kind"),
    [(tune.grid_search([1, 2]), "grid_search"), (tune.sample_from(lambda _: 1), "sample_from")],
)
def test_grid_search_and_sample_from_are_clear_errors(name, leaf, kind):
    c = case(name)
    searcher = SearchGenerator(c.make(0, None))
    with pytest.raises(ConfigError, match=kind) as info:
        searcher.set_search_properties("loss", "min", {**c.space, "g": leaf})
    assert "'g'" in str(info.value)
