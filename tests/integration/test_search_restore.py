"""A searcher's state saved during a Tuner run continues the search when restored."""

from __future__ import annotations

import importlib.util
import os
import pickle
from collections.abc import Callable
from typing import Any

import pytest

import atune as tune
from atune.search import ConcurrencyLimiter, Searcher


def objective(config: dict[str, Any]) -> None:
    tune.report({"loss": (config["x"] - 1.0) ** 2 + (0.5 if config["c"] == "b" else 0.0)})


SPACE = {"x": tune.uniform(-5.0, 5.0), "c": tune.choice(["a", "b"]), "const": 7}


def _optuna() -> Searcher:
    from atune.search.optuna import OptunaSearch

    return OptunaSearch(seed=3)


def _hyperopt() -> Searcher:
    from atune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(random_state_seed=3, n_initial_points=2)


def _zoopt() -> Searcher:
    from atune.search.zoopt import ZOOptSearch

    return ZOOptSearch(budget=20, seed=3)


def _limited_bohb() -> Searcher:
    from atune.search.bohb import TuneBOHB

    return ConcurrencyLimiter(TuneBOHB(seed=3), max_concurrent=2)


FACTORIES: dict[str, tuple[Callable[[], Searcher], str]] = {
    "optuna": (_optuna, "optuna"),
    "hyperopt": (_hyperopt, "hyperopt"),
    "zoopt": (_zoopt, "zoopt"),
    "bohb_in_a_limiter": (_limited_bohb, "hpbandster"),
}


# (A searcher in a ConcurrencyLimiter cannot also get max_concurrent_trials.)
CASES = [
    (name, limit)
    for name in sorted(FACTORIES)
    for limit in (None, 2)
    if not (limit and name == "bohb_in_a_limiter")
]


@pytest.mark.parametrize(("name", "max_concurrent_trials"), CASES)
async def test_restored_searcher_continues_the_search(storage, name, max_concurrent_trials):
    make, module = FACTORIES[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")

    async def fit(searcher: Searcher, num_samples: int, experiment: str) -> Any:
        return await tune.Tuner(
            objective,
            param_space=SPACE,
            tune_config=tune.TuneConfig(
                metric="loss",
                mode="min",
                search_alg=searcher,
                num_samples=num_samples,
                max_concurrent_trials=max_concurrent_trials,
            ),
            run_config=tune.RunConfig(storage_path=storage, name=experiment, verbose=0),
        ).fit()

    searcher = make()
    grid = await fit(searcher, 6, f"restore_{name}")
    assert len(grid) == 6 and not grid.errors
    assert all(r.config["const"] == 7 for r in grid)

    # The file holds the state of the searcher given to the Tuner (not of the Tuner's
    # own wrappers), so a searcher built the same way restores from it directly.
    with open(os.path.join(grid.experiment_path, "searcher-state.pkl"), "rb") as f:
        saved = pickle.load(f)
    assert saved["format"] == "atune.searcher-state/1"
    assert len(saved["wrappers"]) == (2 if max_concurrent_trials else 1)

    # A new experiment with a searcher built the same way, restored from the first one's
    # directory and given the same param space: it continues where the first stopped.
    expected = await searcher.suggest("next")
    restored = make()
    restored.restore_from_dir(grid.experiment_path)
    second = await fit(restored, 3, f"again_{name}")
    assert len(second) == 3 and not second.errors
    first = min(second, key=lambda r: r.path)  # trial 00000
    assert first.config == expected


def test_restore_from_a_directory_without_state_names_the_problem(tmp_path):
    from atune.search import BasicVariantGenerator

    with pytest.raises(FileNotFoundError, match=r"no searcher-state\.pkl in"):
        BasicVariantGenerator().restore_from_dir(str(tmp_path))
