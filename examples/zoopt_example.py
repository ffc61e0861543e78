"""Derivative-free search (ZOOptSearch, ASRacos) over a mixed space on a local Ray.

Run:  python examples/zoopt_example.py [--smoke-test]
Needs ``pip install "atune[zoopt]"``. The space is given as ZOOpt's own ``dim_dict``
(CONTINUOUS, DISCRETE and GRID dimensions, with an atune domain mixed in); the budget
comes from ``num_samples``, and up to ``parallel_num`` trials run at once.
"""

from __future__ import annotations

import argparse
import asyncio
import math

from zoopt import ValueType

import atune as tune
from atune.search.zoopt import ZOOptSearch


def objective(config: dict) -> None:
    """Lowest at width=3, height=-2, lr=1e-2, activation="relu"."""
    penalty = {"relu": 0.0, "tanh": 0.3, "sigmoid": 0.6}[config["activation"]]
    for step in range(1, config["epochs"] + 1):
        loss = (
            0.1 * (config["width"] - 3) ** 2
            + (config["height"] + 2) ** 2
            + (math.log10(config["lr"]) + 2) ** 2
        )
        tune.report({"loss": loss + penalty + 0.1 / step})


async def main(num_samples: int, epochs: int) -> None:
    searcher = ZOOptSearch(
        algo="asracos",
        dim_dict={
            "height": (ValueType.CONTINUOUS, [-10, 10], 1e-2),
            "width": (ValueType.DISCRETE, [0, 10], True),
            "activation": (ValueType.GRID, ["relu", "tanh", "sigmoid"]),
            "lr": tune.loguniform(1e-5, 1e-1),
        },
        points_to_evaluate=[{"height": 0.0, "width": 5, "activation": "tanh", "lr": 1e-3}],
        parallel_num=2,
        seed=0,
    )
    tuner = tune.Tuner(
        objective,
        param_space={"epochs": epochs},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", search_alg=searcher, num_samples=num_samples
        ),
        run_config=tune.RunConfig(name="zoopt_example"),
    )
    results = await tuner.fit()
    best = results.get_best_result()
    print(f"Best config: {best.config}")
    print(f"Best loss:   {best.metrics['loss']:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-samples", type=int, default=40)
    parser.add_argument("--smoke-test", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    if args.smoke_test:
        asyncio.run(main(num_samples=8, epochs=3))
    else:
        asyncio.run(main(num_samples=args.num_samples, epochs=10))
