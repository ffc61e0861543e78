"""Bayesian optimisation (BayesOptSearch) of a two-parameter objective on a local Ray.

Run:  python examples/bayesopt_example.py [--smoke-test]
Needs ``pip install "atune[bayesopt]"``. BayesOpt searches continuous ranges only, so
every searched parameter is ``tune.uniform``; ``epochs`` is a constant.
"""

from __future__ import annotations

import argparse
import asyncio

import atune as tune
from atune.search.bayesopt import BayesOptSearch


def objective(config: dict) -> None:
    """A bowl with its minimum at width=12, height=-30, approached over the epochs."""
    for step in range(1, config["epochs"] + 1):
        distance = ((config["width"] - 12) / 20) ** 2 + ((config["height"] + 30) / 100) ** 2
        tune.report({"loss": distance + 0.1 / step})


async def main(num_samples: int, epochs: int) -> None:
    searcher = BayesOptSearch(
        points_to_evaluate=[{"width": 10.0, "height": 0.0}],
        utility_kwargs={"kind": "ucb", "kappa": 2.5, "xi": 0.0},
        random_search_steps=4,
        random_state=42,
    )
    tuner = tune.Tuner(
        objective,
        param_space={
            "width": tune.uniform(0, 20),
            "height": tune.uniform(-100, 100),
            "epochs": epochs,
        },
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", search_alg=searcher, num_samples=num_samples
        ),
        run_config=tune.RunConfig(name="bayesopt_example"),
    )
    results = await tuner.fit()
    best = results.get_best_result()
    print(f"Best config: {best.config}")
    print(f"Best loss:   {best.metrics['loss']:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-samples", type=int, default=30)
    parser.add_argument("--smoke-test", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    if args.smoke_test:
        asyncio.run(main(num_samples=8, epochs=3))
    else:
        asyncio.run(main(num_samples=args.num_samples, epochs=10))
