"""BasicVariantGenerator: order, counts, concurrency, seeding and save/restore."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

import atune as tune
from atune.errors import ConfigError, ConfigTypeError
from atune.search import FINISHED, BasicVariantGenerator


def make(space: dict[str, Any], num_samples: int = 1, **kwargs: Any) -> BasicVariantGenerator:
    searcher = BasicVariantGenerator(**kwargs)
    assert searcher.set_search_properties(None, None, space, num_samples=num_samples)
    return searcher


async def drain(searcher: BasicVariantGenerator, limit: int = 10_000) -> list[dict[str, Any]]:
    """Suggest until FINISHED, completing each trial at once."""
    out = []
    for i in range(limit):
        config = await searcher.suggest(f"t{i}")
        if config == FINISHED:
            return out
        assert isinstance(config, dict)
        out.append(config)
        await searcher.on_trial_complete(f"t{i}")
    raise AssertionError("searcher did not finish")


GRID3 = {"x": tune.grid_search([1, 2, 3]), "u": tune.uniform(0, 1)}


@pytest.mark.parametrize(
    ("space", "num_samples", "trials"),
    [
        ({"x": tune.choice([0, 1, 2])}, 13, 13),
        ({"x": tune.grid_search([1, 2, 3, 4])}, 1, 4),
        ({"x": tune.grid_search([1, 2, 3])}, 2, 6),
        ({"x": tune.grid_search([1, 2, 3]), "y": tune.grid_search(list("abc"))}, 2, 18),
        ({"x": tune.grid_search([1, 2, 3]), "y": tune.grid_search(list("abc"))}, 5, 45),
        ({}, 3, 3),
        (GRID3, 0, 0),
    ],
)
async def test_the_grid_is_repeated_num_samples_times(space, num_samples, trials):
    searcher = make(space, num_samples)
    assert searcher.total_samples == trials
    assert len(await drain(searcher)) == trials


async def test_every_grid_point_appears_num_samples_times_with_fresh_random_values():
    configs = await drain(make(GRID3, num_samples=4, random_state=0))
    assert [c["x"] for c in configs] == [1, 2, 3] * 4
    assert len({c["u"] for c in configs}) == 12


async def test_finished_after_the_last_config():
    searcher = make({"x": tune.grid_search([1, 2])})
    assert not searcher.is_finished()
    await searcher.suggest("a")
    await searcher.suggest("b")
    assert searcher.is_finished()
    assert await searcher.suggest("c") == FINISHED


async def test_negative_num_samples_never_finishes():
    searcher = make(GRID3, num_samples=-1, random_state=0)
    assert searcher.total_samples is None
    for i in range(500):
        config = await searcher.suggest(f"t{i}")
        assert config["x"] == [1, 2, 3][i % 3]
    assert not searcher.is_finished()


async def test_without_set_search_properties_the_space_is_empty():
    assert await drain(BasicVariantGenerator()) == [{}]


# ------------------------------------------------------------------ points_to_evaluate


async def test_points_to_evaluate_come_first_and_count_as_samples():
    space = {"a": tune.uniform(0, 1), "b": tune.randint(0, 3)}
    points = [{"a": 0.5, "b": 2}, {"a": 0.25, "b": 0}]
    configs = await drain(make(space, num_samples=3, points_to_evaluate=points))
    assert configs[:2] == points
    assert len(configs) == 3


async def test_a_partial_point_is_completed_from_the_param_space():
    space = {"a": tune.uniform(10, 20), "model": {"lr": 0.1, "depth": tune.randint(1, 4)}}
    searcher = make(space, points_to_evaluate=[{"model": {"depth": 3}}], random_state=0)
    config = await searcher.suggest("p")
    assert config["model"] == {"lr": 0.1, "depth": 3}
    assert 10 <= config["a"] <= 20


async def test_points_expand_the_grid_axes_they_do_not_set():
    # The example of Ray Tune's BasicVariantGenerator docstring: 4 samples, 6 trials.
    space = {"a": tune.grid_search([1, 2]), "b": tune.randint(0, 3)}
    points = [{"a": 2, "b": 2}, {"a": 1}, {"b": 2}]
    searcher = make(space, num_samples=4, points_to_evaluate=points, random_state=0)
    assert searcher.total_samples == 6
    configs = await drain(searcher)
    assert configs[0] == {"a": 2, "b": 2}
    assert configs[1]["a"] == 1
    assert configs[2:4] == [{"a": 1, "b": 2}, {"a": 2, "b": 2}]
    assert [c["a"] for c in configs[4:]] == [1, 2]


async def test_more_points_than_num_samples_all_run():
    searcher = make({"a": tune.uniform(0, 1)}, num_samples=1, points_to_evaluate=[{"a": 0.1}] * 3)
    assert [c["a"] for c in await drain(searcher)] == [0.1, 0.1, 0.1]


async def test_a_point_outside_its_domain_is_used_with_a_warning(caplog):
    searcher = make({"a": tune.uniform(0, 1)}, points_to_evaluate=[{"a": 5}])
    with caplog.at_level(logging.WARNING, logger="atune.search.basic_variant"):
        assert await searcher.suggest("p") == {"a": 5}
    assert "points_to_evaluate[0]['a']=5 lies outside uniform(0, 1)" in caplog.text


# ------------------------------------------------------------------ max_concurrent


async def test_max_concurrent_returns_none_until_a_trial_completes():
    searcher = make({"x": tune.grid_search([1, 2, 3])}, max_concurrent=2)
    assert (await searcher.suggest("a"))["x"] == 1
    assert (await searcher.suggest("b"))["x"] == 2
    assert await searcher.suggest("c") is None
    await searcher.on_trial_complete("a", result={"loss": 1.0})
    assert (await searcher.suggest("c"))["x"] == 3


async def test_an_errored_trial_frees_its_slot_too():
    searcher = make({"x": tune.grid_search([1, 2])}, max_concurrent=1)
    await searcher.suggest("a")
    await searcher.on_trial_complete("a", error=True)
    assert (await searcher.suggest("b"))["x"] == 2


async def test_finished_wins_over_a_full_concurrency_limit():
    searcher = make({"x": 1}, max_concurrent=1)
    await searcher.suggest("a")
    assert await searcher.suggest("b") == FINISHED


# ------------------------------------------------------------------ seeding, constant grid


async def test_a_seed_reproduces_the_exact_sequence():
    space = {
        **GRID3,
        "n": tune.randint(0, 1000),
        "f": tune.sample_from(lambda spec: spec.config.u + np.random.normal()),
    }
    first = await drain(make(space, num_samples=3, random_state=42))
    again = await drain(make(space, num_samples=3, random_state=42))
    other = await drain(make(space, num_samples=3, random_state=43))
    assert first == again and first != other


async def test_constant_grid_search_samples_once_per_repeat():
    searcher = make(GRID3, num_samples=2, constant_grid_search=True, random_state=0)
    configs = await drain(searcher)
    assert len({c["u"] for c in configs[:3]}) == 1
    assert len({c["u"] for c in configs[3:]}) == 1
    assert configs[0]["u"] != configs[3]["u"]


# ------------------------------------------------------------------ save / restore


@pytest.mark.parametrize("constant_grid_search", [False, True])
async def test_a_restored_searcher_continues_the_sequence(tmp_path, constant_grid_search):
    space = {**GRID3, "n": tune.qrandint(0, 100, 5)}
    original = make(space, num_samples=3, random_state=7, constant_grid_search=constant_grid_search)
    for i in range(4):
        await original.suggest(f"t{i}")
    path = str(tmp_path / "searcher.pkl")
    original.save(path)

    restored = BasicVariantGenerator()
    restored.restore(path)
    assert await restored.suggest("t4") == await original.suggest("t4")
    assert await drain(restored) == await drain(original)


async def test_a_space_with_lambdas_is_set_again_after_restore(tmp_path):
    space = {"x": tune.grid_search([1, 2]), "f": tune.sample_from(lambda spec: spec.config.x)}
    original = make(space, num_samples=2, random_state=1, max_concurrent=1)
    await original.suggest("t0")
    path = str(tmp_path / "searcher.pkl")
    original.save(path)

    restored = BasicVariantGenerator()
    restored.restore(path)
    restored.set_search_properties(None, None, space, num_samples=2)
    assert await restored.suggest("t1") is None  # t0 is still live after the restore
    await restored.on_trial_complete("t0")
    await original.on_trial_complete("t0")
    assert await restored.suggest("t1") == await original.suggest("t1") == {"x": 2, "f": 2}


def test_restore_rejects_an_unknown_state_version():
    with pytest.raises(ConfigError, match="state version must be 1, got 99"):
        BasicVariantGenerator().set_state({"version": 99})


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_concurrent": -1}, ConfigError, "`max_concurrent` must be >= 0, got -1"),
        ({"max_concurrent": 1.5}, ConfigTypeError, "`max_concurrent` must be an int, got 1.5"),
        ({"points_to_evaluate": [1]}, ConfigTypeError, "`points_to_evaluate` must be a list"),
        ({"random_state": "seed"}, ConfigTypeError, "`random_state` must be None, an int"),
    ],
)
def test_invalid_constructor_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        BasicVariantGenerator(**kwargs)


def test_set_search_properties_validates_the_space_and_num_samples():
    with pytest.raises(ConfigTypeError, match=r"param_space\['a'\]: a bare lambda"):
        make({"a": lambda spec: 1})
    with pytest.raises(ConfigTypeError, match="`num_samples` must be an int, got '3'"):
        make({}, num_samples="3")
