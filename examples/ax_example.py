"""Bayesian optimisation with Ax as the search algorithm (a port of Ray Tune's ax_example).

The objective is the 6-dimensional Hartmann function (global minimum -3.32237); AxSearch
proposes each new config from a Gaussian process fitted to the results so far, under a
parameter constraint (``x1 + x2 <= 2``) and an outcome constraint (``l2norm <= 1.25``).

Run:  python examples/ax_example.py [--smoke-test]
Needs: pip install "atune[ax]"   (install a CPU build of torch first, see the docs)
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np

import atune as tune
from atune.search.ax import AxSearch

ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(ALPHA * np.exp(-np.sum(A * (x - P) ** 2, axis=1))))


def objective(config: dict) -> None:
    x = np.array([config[f"x{i}"] for i in range(1, 7)])
    for step in range(config["steps"]):
        tune.report(
            {"iterations": step, "hartmann6": hartmann6(x), "l2norm": float(np.linalg.norm(x))}
        )


async def main(smoke_test: bool) -> None:
    searcher = AxSearch(
        metric="hartmann6",
        mode="min",
        seed=0,
        parameter_constraints=["x1 + x2 <= 2.0"],
        outcome_constraints=["l2norm <= 1.25"],
        points_to_evaluate=[{f"x{i}": 0.2 for i in range(1, 7)}],
    )
    tuner = tune.Tuner(
        objective,
        param_space={
            "steps": 2 if smoke_test else 10,
            **{f"x{i}": tune.uniform(0, 1) for i in range(1, 7)},
        },
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=4 if smoke_test else 30,
            max_concurrent_trials=2,
        ),
        run_config=tune.RunConfig(name="ax_example", verbose=0),
    )
    results = await tuner.fit()
    best = results.get_best_result("hartmann6", "min")
    print(f"Best config: {best.config} -> hartmann6={best.metrics['hartmann6']:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    asyncio.run(main(args.smoke_test))
