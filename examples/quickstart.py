"""Quick start: tune two hyperparameters of a toy objective on a local Ray.

Run:  python examples/quickstart.py
A local Ray starts automatically; results go to ~/atune_results/quickstart.
"""

from __future__ import annotations

import argparse
import asyncio

import atune as tune


def objective(config: dict) -> None:
    """A noisy-free bowl with its minimum at lr=0.01, momentum=0.9."""
    import math

    for step in range(1, 21):
        distance = (math.log10(config["lr"]) + 2) ** 2 + (config["momentum"] - 0.9) ** 2
        loss = distance + 1.0 / step
        tune.report({"loss": loss})


async def main(num_samples: int) -> None:
    tuner = tune.Tuner(
        objective,
        param_space={
            "lr": tune.loguniform(1e-4, 1e-1),
            "momentum": tune.uniform(0.5, 0.99),
        },
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=num_samples),
        run_config=tune.RunConfig(name="quickstart", stop={"training_iteration": 20}),
    )
    results = await tuner.fit()
    best = results.get_best_result()
    print(f"Best config: {best.config}")
    print(f"Best loss:   {best.metrics['loss']:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--smoke-test", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    asyncio.run(main(4 if args.smoke_test else args.num_samples))
