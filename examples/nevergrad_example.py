"""Gradient-free search (NevergradSearch, OnePlusOne) over a mixed space on a local Ray.

Run:  python examples/nevergrad_example.py [--smoke-test]
Needs ``pip install "atune[nevergrad]"``. Nevergrad handles floats, log-scaled floats,
integers and categories.
"""

from __future__ import annotations

import argparse
import asyncio
import math

import nevergrad as ng

import atune as tune
from atune.search.nevergrad import NevergradSearch


def objective(config: dict) -> None:
    """Lowest at lr=1e-2, layers=3, activation="relu"."""
    penalty = {"relu": 0.0, "tanh": 0.3, "sigmoid": 0.6}[config["activation"]]
    for step in range(1, config["epochs"] + 1):
        loss = (math.log10(config["lr"]) + 2) ** 2 + 0.1 * (config["layers"] - 3) ** 2
        tune.report({"loss": loss + penalty + 0.1 / step})


async def main(num_samples: int, epochs: int) -> None:
    searcher = NevergradSearch(
        optimizer=ng.optimizers.OnePlusOne,
        points_to_evaluate=[{"lr": 1e-3, "layers": 2, "activation": "tanh"}],
        seed=0,
    )
    tuner = tune.Tuner(
        objective,
        param_space={
            "lr": tune.loguniform(1e-5, 1e-1),
            "layers": tune.randint(1, 6),
            "activation": tune.choice(["relu", "tanh", "sigmoid"]),
            "epochs": epochs,
        },
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", search_alg=searcher, num_samples=num_samples
        ),
        run_config=tune.RunConfig(name="nevergrad_example"),
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
