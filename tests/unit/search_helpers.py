"""Helpers shared by the searcher tests: a test problem, a trial loop, the quality bar.

The quality bar of a model-based searcher is to beat random search on a 2-D quadratic:
each integration's tests call :func:`assert_beats_random` with a factory of seeded
searchers; the searcher and random search get the same budget and the same seeds, and
the mean of the best losses over the seeds is compared, so one unlucky seed does not
decide the test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import atune as tune
from atune.search import FINISHED, BasicVariantGenerator, Searcher

#: A 2-D box whose optimum sits away from the centre and the corners.
QUAD_SPACE: dict[str, Any] = {"x": tune.uniform(-5, 5), "y": tune.uniform(0, 10)}
OPTIMUM = (1.5, 7.0)


def quadratic(config: dict[str, Any]) -> float:
    """Squared distance to :data:`OPTIMUM` (0 at the optimum)."""
    return float((config["x"] - OPTIMUM[0]) ** 2 + (config["y"] - OPTIMUM[1]) ** 2)


async def run_trials(
    searcher: Searcher,
    n: int,
    prefix: str = "t",
    objective: Callable[[dict[str, Any]], float] = quadratic,
) -> list[dict[str, Any]]:
    """Up to ``n`` sequential trials (suggest → objective → complete); the configs.

    Stops early when the searcher answers ``FINISHED``.
    """
    configs = []
    for i in range(n):
        config = await searcher.suggest(f"{prefix}{i}")
        if config == FINISHED:
            break
        assert isinstance(config, dict), config
        configs.append(config)
        await searcher.on_trial_complete(f"{prefix}{i}", {"loss": objective(config)})
    return configs


async def best_found(
    searcher: Searcher, trials: int, objective: Callable[[dict[str, Any]], float] = quadratic
) -> float:
    """Run ``trials`` sequential trials (suggest → objective → complete); the best loss."""
    best = float("inf")
    for i in range(trials):
        config = await searcher.suggest(f"q{i}")
        assert isinstance(config, dict), f"suggestion {i} was {config!r}, not a config"
        loss = objective(config)
        best = min(best, loss)
        await searcher.on_trial_complete(f"q{i}", {"loss": loss})
    return best


async def assert_beats_random(
    make: Callable[[int], Searcher],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    trials: int = 30,
    space: dict[str, Any] | None = None,
) -> tuple[list[float], list[float]]:
    """Assert that ``make(seed)`` ends closer to the optimum than random search.

    ``make`` builds an unconfigured searcher; it gets ``metric="loss"``, ``mode="min"``
    and ``space`` (default :data:`QUAD_SPACE`) through ``set_search_properties``.
    Returns the best losses of the searcher and of random search, per seed.
    """
    space = QUAD_SPACE if space is None else space
    model, random = [], []
    for seed in seeds:
        searcher = make(seed)
        assert searcher.set_search_properties("loss", "min", space, num_samples=trials)
        model.append(await best_found(searcher, trials))
        basic = BasicVariantGenerator(random_state=seed)
        basic.set_search_properties("loss", "min", space, num_samples=trials)
        random.append(await best_found(basic, trials))
    assert np.mean(model) < np.mean(random), (model, random)
    return model, random
