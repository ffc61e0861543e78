"""BayesOptSearch on the real bayesian-optimization package (no Ray)."""

from __future__ import annotations

import math
from typing import Any

import pytest

pytest.importorskip("bayes_opt")

import atune as tune
from atune.errors import ConfigError
from atune.search import FINISHED
from atune.search.bayesopt import BayesOptSearch
from tests.unit.search_helpers import QUAD_SPACE, assert_beats_random, quadratic
from tests.unit.search_helpers import run_trials as run

SPACE = QUAD_SPACE


def make(space: dict[str, Any] | None = None, **kwargs: Any) -> BayesOptSearch:
    searcher = BayesOptSearch(metric="loss", mode="min", **kwargs)
    assert searcher.set_search_properties(None, None, space if space is not None else SPACE)
    return searcher


def inside(config: dict[str, Any]) -> bool:
    return -5 <= config["x"] <= 5 and 0 <= config["y"] <= 10


async def test_suggestions_lie_inside_the_space() -> None:
    configs = await run(make(random_search_steps=4), 12)
    assert len(configs) == 12
    assert all(inside(c) for c in configs)


async def test_points_to_evaluate_come_first() -> None:
    points = [{"x": 1.0, "y": 2.0}, {"x": -1.0, "y": 3.0}]
    searcher = make(points_to_evaluate=points)
    configs = await run(searcher, 4)
    assert configs[:2] == points


async def test_points_are_registered_with_the_model() -> None:
    searcher = make(points_to_evaluate=[{"x": 1.0, "y": 2.0}], random_search_steps=1)
    await run(searcher, 1)
    assert len(searcher._optimizer.space) == 1
    assert searcher._optimizer.space.target[0] == pytest.approx(-quadratic({"x": 1.0, "y": 2.0}))


async def test_same_seed_gives_same_suggestions() -> None:
    first = await run(make(random_state=7, random_search_steps=3), 6)
    second = await run(make(random_state=7, random_search_steps=3), 6)
    other = await run(make(random_state=8, random_search_steps=3), 6)
    assert first == second
    assert first != other


async def test_save_restore_gives_the_same_next_suggestion(tmp_path) -> None:
    searcher = make(random_search_steps=3)
    await run(searcher, 5)
    path = str(tmp_path / "bo.pkl")
    searcher.save(path)
    restored = BayesOptSearch()
    restored.restore(path)
    assert await restored.suggest("next") == await searcher.suggest("next")


async def test_random_phase_waits_for_its_results() -> None:
    searcher = make(random_search_steps=2)
    assert isinstance(await searcher.suggest("a"), dict)
    assert isinstance(await searcher.suggest("b"), dict)
    assert await searcher.suggest("c") is None  # the model has no data yet
    await searcher.on_trial_complete("a", {"loss": 1.0})
    await searcher.on_trial_complete("b", {"loss": 2.0})
    assert len(searcher._optimizer.space) == 2
    assert isinstance(await searcher.suggest("c"), dict)


async def test_errored_trials_are_not_registered_and_are_replaced() -> None:
    searcher = make(random_search_steps=2)
    await searcher.suggest("a")
    await searcher.suggest("b")
    await searcher.on_trial_complete("a", error=True)
    await searcher.on_trial_complete("b", {"loss": math.nan})
    assert len(searcher._optimizer.space) == 0
    # both random slots are free again
    assert isinstance(await searcher.suggest("c"), dict)
    assert isinstance(await searcher.suggest("d"), dict)


async def test_unknown_trial_is_ignored() -> None:
    searcher = make()
    await searcher.on_trial_complete("never-suggested", {"loss": 1.0})


async def test_max_mode_registers_the_metric_as_is() -> None:
    searcher = BayesOptSearch(metric="score", mode="max", random_search_steps=1)
    searcher.set_search_properties(None, None, SPACE)
    await searcher.suggest("a")
    await searcher.on_trial_complete("a", {"score": 3.5})
    assert searcher._optimizer.space.target[0] == 3.5


async def test_patience_finishes_on_repeated_configs() -> None:
    point = {"x": 0.0, "y": 1.0}
    searcher = make(points_to_evaluate=[point] * 3, patience=2, skip_duplicate=False)
    assert await searcher.suggest("a") == point
    assert await searcher.suggest("b") == point
    assert await searcher.suggest("c") == FINISHED


async def test_duplicate_points_are_skipped() -> None:
    point = {"x": 0.0, "y": 1.0}
    searcher = make(points_to_evaluate=[point, point, {"x": 2.0, "y": 2.0}])
    assert await searcher.suggest("a") == point
    assert await searcher.suggest("b") == {"x": 2.0, "y": 2.0}


async def test_native_bounds_and_nested_space_with_constants() -> None:
    searcher = BayesOptSearch(
        space={"opt": {"lr": (0.0, 1.0)}, "width": (0.0, 20.0), "epochs": 3},
        metric="loss",
        mode="min",
    )
    assert searcher.set_search_properties(None, None, {"extra": "kept"})
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert config["epochs"] == 3 and config["extra"] == "kept"
    assert 0 <= config["opt"]["lr"] <= 1 and 0 <= config["width"] <= 20


def test_loguniform_is_rejected_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"'opt/lr'.*log space.*uniform\(-4, -1\)"):
        BayesOptSearch(space={"opt": {"lr": tune.loguniform(1e-4, 1e-1)}})


@pytest.mark.parametrize(
    ("domain", "kind"),
    [
        (tune.randint(0, 10), "Integer"),
        (tune.choice(["a", "b"]), "Categorical"),
    ],
)
def test_non_float_domains_are_rejected(domain: Any, kind: str) -> None:
    with pytest.raises(ConfigError, match=rf"type {kind}: 'p'"):
        BayesOptSearch(space={"p": domain})


def test_sample_from_is_rejected() -> None:
    with pytest.raises(ConfigError, match="cannot search the sample_from function 'p'"):
        BayesOptSearch(space={"p": tune.sample_from(lambda _: 1)})


def test_grid_search_is_rejected() -> None:
    with pytest.raises(ConfigError, match="grid_search parameter 'g'"):
        BayesOptSearch(space={"g": tune.grid_search([1, 2])})


def test_quantized_uniform_drops_the_quantization(caplog: pytest.LogCaptureFixture) -> None:
    searcher = BayesOptSearch(space={"q": tune.quniform(0, 1, 0.1)})
    assert searcher._bounds == {"q": (0.0, 1.0)}
    assert "quantization" in caplog.text


def test_space_in_both_places_is_rejected() -> None:
    searcher = BayesOptSearch(space=SPACE)
    with pytest.raises(ConfigError, match="own `space`"):
        searcher.set_search_properties("loss", "min", {"z": tune.uniform(0, 1)})


def test_point_missing_a_parameter_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"points_to_evaluate\[0\].*missing \['y'\]"):
        BayesOptSearch(space=SPACE, points_to_evaluate=[{"x": 1.0}])


async def test_metric_and_mode_are_required() -> None:
    searcher = BayesOptSearch(space=SPACE)
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        await searcher.suggest("a")


def test_bad_utility_kind_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'ucb', 'ei' or 'poi'"):
        BayesOptSearch(utility_kwargs={"kind": "nope"})


@pytest.mark.parametrize("kind", ["ucb", "ei", "poi"])
async def test_each_acquisition_kind_suggests(kind: str) -> None:
    configs = await run(make(utility_kwargs={"kind": kind}, random_search_steps=3), 5)
    assert len(configs) == 5 and all(inside(c) for c in configs)


async def test_beats_random_search_on_a_quadratic() -> None:
    """30 trials: the GP ends closer to the optimum than random search (mean of 3 seeds)."""
    await assert_beats_random(
        lambda seed: BayesOptSearch(random_state=seed, random_search_steps=10, patience=None)
    )


def test_normal_domain_is_rejected() -> None:
    with pytest.raises(ConfigError, match="bounded uniform range for 'n'"):
        BayesOptSearch(space={"n": tune.randn(0, 1)})
