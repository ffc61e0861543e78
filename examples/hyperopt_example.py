"""HyperOpt's TPE as the search algorithm (a port of Ray Tune's hyperopt_example).

The first run converts an atune param space, with a conditional part: ``activation``
is a choice among dicts, and ``mult`` exists only in the "relu" branch. Known good
configs go first through ``points_to_evaluate`` (choices given by value). The second
run passes a native HyperOpt space.

Run:  python examples/hyperopt_example.py [--smoke-test]
Needs: pip install "atune[hyperopt]"
"""

from __future__ import annotations

import argparse
import asyncio

from hyperopt import hp

import atune as tune
from atune.search.hyperopt import HyperOptSearch


def evaluation_fn(step: int, width: float, height: float, mult: float = 1.0) -> float:
    return (0.1 + width * step / 100) ** (-1) + height * 0.1 * mult


def easy_objective(config: dict) -> None:
    mult = config["activation"].get("mult", 1.0)
    for step in range(config["steps"]):
        score = evaluation_fn(step, config["width"], config["height"], mult)
        tune.report({"iterations": step, "mean_loss": score})


async def main(smoke_test: bool) -> None:
    num_samples = 4 if smoke_test else 100
    steps = 10 if smoke_test else 100
    searcher = HyperOptSearch(
        metric="mean_loss",
        mode="min",
        random_state_seed=0,
        n_initial_points=2 if smoke_test else 20,
        points_to_evaluate=[
            {"width": 1.0, "height": 2.0, "activation": {"type": "tanh"}},
            {"width": 4.0, "height": 2.0, "activation": {"type": "tanh"}},
        ],
    )
    tuner = tune.Tuner(
        easy_objective,
        param_space={
            "steps": steps,
            "width": tune.uniform(0, 20),
            "height": tune.uniform(-100, 100),
            "activation": tune.choice(
                [{"type": "relu", "mult": tune.uniform(1, 2)}, {"type": "tanh"}]
            ),
        },
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=num_samples),
        run_config=tune.RunConfig(name="hyperopt_example", verbose=0),
    )
    results = await tuner.fit()
    best = results.get_best_result("mean_loss", "min")
    print(f"Best config: {best.config}")

    native_space = {
        "width": hp.uniform("width", 0, 20),
        "height": hp.uniform("height", -100, 100),
        "activation": hp.choice(
            "activation",
            [{"type": "relu", "mult": hp.uniform("mult", 1, 2)}, {"type": "tanh"}],
        ),
    }
    tuner = tune.Tuner(
        easy_objective,
        param_space={"steps": steps},  # constants merge into every config
        tune_config=tune.TuneConfig(
            search_alg=HyperOptSearch(
                native_space, metric="mean_loss", mode="min", random_state_seed=0
            ),
            num_samples=num_samples,
        ),
        run_config=tune.RunConfig(name="hyperopt_native_example", verbose=0),
    )
    results = await tuner.fit()
    best = results.get_best_result("mean_loss", "min")
    print(f"Best config (native space): {best.config}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    asyncio.run(main(args.smoke_test))
