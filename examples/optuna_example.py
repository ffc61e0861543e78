"""Optuna's TPE sampler as the search algorithm (a port of Ray Tune's optuna_example).

The objective is a toy "learning curve" shaped by ``width``, ``height`` and
``activation``; OptunaSearch proposes each new config from the results so far. The
second run shows a define-by-run space: the space is a function that asks the Optuna
trial for values, so it can be conditional (``mult`` only exists for "relu").

Run:  python examples/optuna_example.py [--smoke-test]
Needs: pip install "atune[optuna]"
"""

from __future__ import annotations

import argparse
import asyncio

import atune as tune
from atune.search.optuna import OptunaSearch


def evaluation_fn(step: int, width: float, height: float, mult: float = 1.0) -> float:
    return (0.1 + width * step / 100) ** (-1) + height * 0.1 * mult


def easy_objective(config: dict) -> None:
    mult = config.get("activation", {}).get("mult", 1.0)
    for step in range(config["steps"]):
        score = evaluation_fn(step, config["width"], config["height"], mult)
        tune.report({"iterations": step, "mean_loss": score})


def define_by_run(trial) -> dict:
    """A conditional space: Optuna samples ``mult`` only when the activation is relu."""
    trial.suggest_float("width", 0, 20)
    trial.suggest_float("height", -100, 100)
    if trial.suggest_categorical("activation/type", ["relu", "tanh"]) == "relu":
        trial.suggest_float("activation/mult", 1, 2)
    return {"steps": 10}  # constants


async def main(smoke_test: bool) -> None:
    num_samples = 4 if smoke_test else 100
    searcher = OptunaSearch(
        metric="mean_loss",
        mode="min",
        seed=0,
        points_to_evaluate=[{"width": 10, "height": 0, "activation": {"type": "relu"}}],
    )
    tuner = tune.Tuner(
        easy_objective,
        param_space={
            "steps": 10 if smoke_test else 100,
            "width": tune.uniform(0, 20),
            "height": tune.uniform(-100, 100),
            "activation": {"type": tune.choice(["relu", "tanh"])},
        },
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=num_samples, max_concurrent_trials=2
        ),
        run_config=tune.RunConfig(name="optuna_example", verbose=0),
    )
    results = await tuner.fit()
    best = results.get_best_result("mean_loss", "min")
    print(f"Best config: {best.config}")

    tuner = tune.Tuner(
        easy_objective,
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(define_by_run, metric="mean_loss", mode="min", seed=0),
            num_samples=num_samples,
            max_concurrent_trials=2,
        ),
        run_config=tune.RunConfig(name="optuna_define_by_run_example", verbose=0),
    )
    results = await tuner.fit()
    best = results.get_best_result("mean_loss", "min")
    print(f"Best config (define-by-run): {best.config}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    asyncio.run(main(args.smoke_test))
