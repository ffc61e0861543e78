"""ASHA early stopping on a toy learning curve (a port of Ray Tune's async_hyperband_example).

Each trial's reward follows ``height * tanh(iteration / width)``: ``width`` sets how
fast it learns, ``height`` where it levels off. ASHA (AsyncHyperBandScheduler) stops
the trials whose reward is in the bottom of the ones recorded at each rung, so most
of the 30 trials end at 5, 15 or 45 iterations and only the promising ones run to 100.

Run:  python examples/asha_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import math

import atune as tune
from atune.schedulers import ASHAScheduler


class MyTrainableClass(tune.Trainable):
    """A learning curve shaped by the hyperparameters "width" and "height"."""

    def setup(self, config):
        self.timestep = 0

    def step(self):
        self.timestep += 1
        reward = math.tanh(self.timestep / self.config["width"]) * self.config["height"]
        # Any objective works (loss, accuracy, ...); here a reward to maximise.
        return {"episode_reward_mean": reward}

    def save_checkpoint(self, checkpoint_dir):
        return {"timestep": self.timestep}

    def load_checkpoint(self, checkpoint):
        self.timestep = checkpoint["timestep"]


def main(smoke_test: bool) -> None:
    # Time is measured in training_iteration, filled in by atune for every result.
    # Three brackets with rungs at 45/15/5, 45/15 and 45 iterations (the seed output);
    # the smoke test shrinks it to 9/3/1, 9/3 and 9.
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        metric="episode_reward_mean",
        mode="max",
        grace_period=1 if smoke_test else 5,
        max_t=9 if smoke_test else 100,
        reduction_factor=3,
        brackets=3,
    )
    tuner = tune.Tuner(
        MyTrainableClass,
        param_space={
            "width": tune.randint(10, 100),
            "height": tune.randint(0, 100),
        },
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=6 if smoke_test else 30),
        run_config=tune.RunConfig(name="asynchyperband_test", verbose=1),
    )
    results = tuner.fit_sync()
    print(scheduler.debug_string())
    stopped_at = sorted(r.metrics["training_iteration"] for r in results)
    print(f"Iterations run by each trial: {stopped_at}")
    best = results.get_best_result(metric="episode_reward_mean", mode="max")
    print(f"Best config: {best.config}")
    print(f"Best episode_reward_mean: {best.metrics['episode_reward_mean']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="finish quickly for testing")
    args, _ = parser.parse_known_args()
    main(args.smoke_test)
