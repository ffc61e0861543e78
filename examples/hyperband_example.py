"""HyperBand early stopping on a class trainable that saves and restores its state.

Each trial's learning curve is a sigmoid: ``tanh(step / width) * height``, so "height"
decides how good a trial ends up and "width" how slowly it gets there. HyperBand puts
the trials into brackets, pauses each at its bracket's milestone until the whole
bracket got there, keeps the best third, and stops the rest. Paused trials resume from
the checkpoint written at the milestone.

    python examples/hyperband_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import os
import random

import numpy as np

import atune as tune
from atune.schedulers import HyperBandScheduler


class MyTrainableClass(tune.Trainable):
    """Example agent whose learning curve is a random sigmoid.

    The dummy hyperparameters "width" and "height" determine the slope and the
    maximum reward value reached.
    """

    def setup(self, config):
        self.timestep = 0

    def step(self):
        self.timestep += 1
        v = np.tanh(float(self.timestep) / self.config["width"])
        v *= self.config["height"]
        # Here we use `episode_reward_mean`, but you can also report other objectives
        # such as loss or accuracy.
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

    # HyperBand early stopping, with `episode_reward_mean` as the objective and
    # `training_iteration` (filled in by atune) as the time unit. With max_t=100 the
    # brackets hold 5, 8, 15, ... trials with first milestones 100, 33, 11, ...
    hyperband = HyperBandScheduler(
        time_attr="training_iteration",
        metric="episode_reward_mean",
        mode="max",
        max_t=9 if args.smoke_test else 100,
    )
    tuner = tune.Tuner(
        MyTrainableClass,
        param_space={
            "width": tune.sample_from(lambda spec: 10 + int(90 * random.random())),
            "height": tune.sample_from(lambda spec: int(100 * random.random())),
        },
        tune_config=tune.TuneConfig(scheduler=hyperband, num_samples=8 if args.smoke_test else 20),
        run_config=tune.RunConfig(name="hyperband_test", verbose=1),
    )
    results = tuner.fit_sync()

    print(hyperband.debug_string())
    for result in results:
        print(
            f"height={result.config['height']:3d} width={result.config['width']:3d}: "
            f"{result.metrics['training_iteration']:3d} iterations, "
            f"reward {result.metrics['episode_reward_mean']:.2f}"
        )
    best = results.get_best_result(metric="episode_reward_mean", mode="max")
    print("Best config:", best.config)


if __name__ == "__main__":
    main()
