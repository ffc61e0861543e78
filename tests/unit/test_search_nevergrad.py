"""NevergradSearch on the real nevergrad package (no Ray)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

ng = pytest.importorskip("nevergrad")

import atune as tune  # noqa: E402
from atune.errors import ConfigError, ConfigTypeError  # noqa: E402
from atune.search.nevergrad import NevergradSearch  # noqa: E402
from tests.unit.search_helpers import QUAD_SPACE, assert_beats_random  # noqa: E402
from tests.unit.search_helpers import run_trials as run  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SPACE = QUAD_SPACE


def make(space: dict[str, Any] | None = None, optimizer: Any = None, **kwargs: Any):
    searcher = NevergradSearch(
        optimizer or ng.optimizers.OnePlusOne, metric="loss", mode="min", **kwargs
    )
    assert searcher.set_search_properties(None, None, space if space is not None else SPACE)
    return searcher


async def test_suggestions_lie_inside_the_space() -> None:
    space = {
        "x": tune.uniform(-5, 5),
        "lr": tune.loguniform(1e-4, 1e-1),
        "k": tune.randint(1, 4),
        "q": tune.quniform(0, 1, 0.25),
        "c": tune.choice(["a", "b", "c"]),
    }
    searcher = make(space, seed=0)
    for i in range(30):
        config = await searcher.suggest(f"t{i}")
        assert isinstance(config, dict)
        assert -5 <= config["x"] <= 5
        assert 1e-4 * (1 - 1e-9) <= config["lr"] <= 1e-1 * (1 + 1e-9)
        assert config["k"] in (1, 2, 3) and isinstance(config["k"], int)
        assert config["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert config["c"] in ("a", "b", "c")
        await searcher.on_trial_complete(f"t{i}", {"loss": config["x"] ** 2})


async def test_points_to_evaluate_come_first() -> None:
    points = [{"x": 1.0, "y": 2.0}, {"x": -1.0, "y": 3.0}]
    configs = await run(make(points_to_evaluate=points), 4)
    assert [{k: pytest.approx(v) for k, v in c.items()} for c in configs[:2]] == points


async def test_nested_space_and_constants() -> None:
    searcher = make({"opt": {"lr": tune.uniform(0, 1)}, "epochs": 3})
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert config["epochs"] == 3 and 0 <= config["opt"]["lr"] <= 1


async def test_same_seed_gives_same_suggestions() -> None:
    first = await run(make(seed=3), 6)
    second = await run(make(seed=3), 6)
    other = await run(make(seed=4), 6)
    assert first == second
    assert first != other


async def test_save_restore_gives_the_same_next_suggestion(tmp_path) -> None:
    searcher = make(seed=0)
    await run(searcher, 5)
    path = str(tmp_path / "ng.pkl")
    searcher.save(path)
    restored = NevergradSearch(ng.optimizers.OnePlusOne)
    restored.restore(path)
    assert await restored.suggest("next") == await searcher.suggest("next")


async def test_errored_trials_are_not_told() -> None:
    searcher = make(seed=0)
    await searcher.suggest("a")
    await searcher.suggest("b")
    await searcher.on_trial_complete("a", error=True)
    await searcher.on_trial_complete("b", {"loss": float("nan")})
    await searcher.on_trial_complete("unknown", {"loss": 1.0})
    assert searcher._optimizer.num_tell == 0
    await searcher.suggest("c")
    await searcher.on_trial_complete("c", {"loss": 1.0})
    assert searcher._optimizer.num_tell == 1


async def test_max_mode_tells_the_negated_metric() -> None:
    searcher = NevergradSearch(ng.optimizers.OnePlusOne, space=SPACE, metric="s", mode="max")
    await searcher.suggest("a")
    await searcher.on_trial_complete("a", {"s": 2.0})
    assert searcher._optimizer.current_bests["pessimistic"].mean == pytest.approx(-2.0)


async def test_optimizer_instance_with_native_parametrization() -> None:
    parametrization = ng.p.Dict(x=ng.p.Scalar(lower=0, upper=1), c=ng.p.Choice([1, 2]))
    parametrization.random_state = np.random.RandomState(0)
    optimizer = ng.optimizers.OnePlusOne(parametrization=parametrization)
    searcher = NevergradSearch(optimizer, metric="loss", mode="min")
    assert searcher.set_search_properties(None, None, {"const": "k"})
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert 0 <= config["x"] <= 1 and config["c"] in (1, 2) and config["const"] == "k"


async def test_optimizer_instance_with_parameter_names() -> None:
    optimizer = ng.optimizers.OnePlusOne(parametrization=2)
    searcher = NevergradSearch(optimizer, space=["a", "b"], metric="loss", mode="min")
    config = await searcher.suggest("t")
    assert isinstance(config, dict) and set(config) == {"a", "b"}
    assert all(isinstance(v, float) for v in config.values())


async def test_native_parameters_in_a_dict_space() -> None:
    searcher = make({"x": ng.p.Scalar(lower=2, upper=3), "y": tune.uniform(0, 1)})
    config = await searcher.suggest("a")
    assert isinstance(config, dict)
    assert 2 <= config["x"] <= 3 and 0 <= config["y"] <= 1


async def test_configured_optimizer_with_kwargs() -> None:
    searcher = make(optimizer=ng.optimizers.CMA, optimizer_kwargs={"budget": 20}, seed=0)
    configs = await run(searcher, 8)
    assert len(configs) == 8


def test_instance_with_a_dict_space_is_rejected() -> None:
    optimizer = ng.optimizers.OnePlusOne(parametrization=2)
    with pytest.raises(ConfigError, match="list of parameter names"):
        NevergradSearch(optimizer, space=SPACE)


def test_wrong_optimizer_is_rejected() -> None:
    with pytest.raises(ConfigTypeError, match="`optimizer` must be"):
        NevergradSearch("OnePlusOne", space=SPACE)


async def test_no_optimizer_means_one_plus_one() -> None:
    searcher = NevergradSearch(space=SPACE, metric="loss", mode="min", seed=0)
    configs = await run(searcher, 6)
    assert len(configs) == 6 and all(-5 <= c["x"] <= 5 and 0 <= c["y"] <= 10 for c in configs)
    assert type(searcher._optimizer).__name__ == "_OnePlusOne"


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"g": tune.grid_search([1, 2])}, "grid_search parameter 'g'"),
        ({"f": tune.sample_from(lambda _: 1)}, "cannot search the sample_from function 'f'"),
    ],
)
def test_unsupported_domains_are_rejected(space: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        NevergradSearch(ng.optimizers.OnePlusOne, space=space)


async def test_point_that_does_not_fit_is_a_config_error() -> None:
    searcher = make(points_to_evaluate=[{"x": 1.0}])
    with pytest.raises(ConfigError, match="points_to_evaluate"):
        await searcher.suggest("a")


async def test_metric_and_mode_are_required() -> None:
    searcher = NevergradSearch(ng.optimizers.OnePlusOne, space=SPACE)
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        await searcher.suggest("a")


async def test_beats_random_search_on_a_quadratic() -> None:
    """30 trials: Nevergrad ends closer to the optimum than random search (mean of 3 seeds)."""
    await assert_beats_random(lambda seed: NevergradSearch(ng.optimizers.OnePlusOne, seed=seed))
