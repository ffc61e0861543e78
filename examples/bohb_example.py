"""BOHB: TuneBOHB's model-based sampler with the HyperBandForBOHB scheduler.

Each trial's learning curve is a sigmoid: ``tanh(step / width) * height``, so "height"
decides how good a trial ends up and "width" how slowly it gets there. HyperBandForBOHB
runs brackets of trials to small budgets first and keeps the best third at each
milestone; TuneBOHB records every trial's result at each milestone budget and, once it
has enough of them, proposes new configs from a density model of the good ones.

    python examples/bohb_example.py [--smoke-test]

Needs ``pip install "atune[bohb]"`` (hpbandster and ConfigSpace).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

import atune as tune
from atune.schedulers import HyperBandForBOHB
from atune.search.bohb import TuneBOHB


class MyTrainableClass(tune.Trainable):
    """Example agent whose learning curve is a sigmoid set by "width" and "height"."""

    def setup(self, config, **kwargs):
        self.timestep = 0

    def step(self):
        self.timestep += 1
        v = np.tanh(float(self.timestep) / self.config["width"])
        v *= self.config["height"]
        return {"episode_reward_mean": v}

    def save_checkpoint(self, checkpoint_dir):
        path = os.path.join(checkpoint_dir, "checkpoint")
        with open(path, "w") as f:
            f.write(json.dumps({"timestep": self.timestep}))
        return checkpoint_dir

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "checkpoint")) as f:
            self.timestep = json.loads(f.read())["timestep"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="Finish quickly for testing")
    args = parser.parse_args()

    # The space can also be a ConfigSpace.ConfigurationSpace.
    space = {
        "width": tune.uniform(10, 100),
        "height": tune.uniform(0, 100),
        "activation": tune.choice(["relu", "tanh"]),
    }
    bohb_search = TuneBOHB(
        space=space,
        points_to_evaluate=[{"width": 50.0, "height": 50.0, "activation": "relu"}],
        seed=0,
    )
    bohb_hyperband = HyperBandForBOHB(
        time_attr="training_iteration",
        max_t=9 if args.smoke_test else 100,
        reduction_factor=3,
    )
    tuner = tune.Tuner(
        MyTrainableClass,
        tune_config=tune.TuneConfig(
            metric="episode_reward_mean",
            mode="max",
            search_alg=bohb_search,
            scheduler=bohb_hyperband,
            num_samples=8 if args.smoke_test else 60,
        ),
        run_config=tune.RunConfig(name="bohb_example", verbose=1),
    )
    results = tuner.fit_sync()

    for result in results:
        print(
            f"height={result.config['height']:6.2f} width={result.config['width']:6.2f}: "
            f"{result.metrics['training_iteration']:3d} iterations, "
            f"reward {result.metrics['episode_reward_mean']:.2f}"
        )
    best = results.get_best_result()
    print("Best config:", best.config)


if __name__ == "__main__":
    main()
