"""The median stopping rule on noisy learning curves.

Each trial trains a toy model whose accuracy creeps towards a ceiling set by its
learning rate, with some noise. After a grace period of a few iterations, a trial
whose best accuracy so far is strictly below the median of the other trials' mean
accuracies (taken over the same iterations) is stopped.

When a trial cannot be judged yet (fewer than ``min_samples_required`` other trials
got as far) while others wait for a CPU, the rule makes it yield: it is paused and
resumed later from its checkpoint, so the trainable saves and restores its state.

Run:  python examples/median_stopping_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import math
import random

import atune as tune
from atune.schedulers import MedianStoppingRule


class NoisyModel(tune.Trainable):
    """Accuracy approaches ``ceiling(lr)`` at a rate of 10% of the gap per iteration."""

    def setup(self, config):
        self.accuracy = 0.0
        self.rng = random.Random(config["seed"])

    def step(self):
        lr = self.config["lr"]
        ceiling = 0.95 - 0.1 * abs(math.log10(lr) + 2)  # best at lr = 0.01
        self.accuracy += 0.1 * (ceiling - self.accuracy)
        return {"mean_accuracy": self.accuracy + self.rng.gauss(0, 0.005)}

    def save_checkpoint(self, checkpoint_dir):
        return {"accuracy": self.accuracy, "rng": self.rng.getstate()}

    def load_checkpoint(self, checkpoint):
        self.accuracy = checkpoint["accuracy"]
        self.rng.setstate(checkpoint["rng"])


def main(smoke_test: bool) -> None:
    iterations = 10 if smoke_test else 50
    scheduler = MedianStoppingRule(
        time_attr="training_iteration",
        metric="mean_accuracy",
        mode="max",
        grace_period=3 if smoke_test else 10,
        min_samples_required=3,
        # Yield at most once per trial while the rule lacks samples.
        min_time_slice=iterations,
    )
    tuner = tune.Tuner(
        NoisyModel,
        param_space={"lr": tune.loguniform(1e-4, 1.0), "seed": tune.randint(0, 10_000)},
        tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=6 if smoke_test else 20),
        run_config=tune.RunConfig(
            name="median_stopping_example",
            stop={"training_iteration": iterations},
            verbose=1,
        ),
    )
    results = tuner.fit_sync()
    print(scheduler.debug_string())
    for r in sorted(results, key=lambda r: r.config["lr"]):
        print(
            f"  lr={r.config['lr']:.5f}: {r.metrics['training_iteration']:3d} iterations, "
            f"accuracy {r.metrics['mean_accuracy']:.3f}"
        )
    best = results.get_best_result(metric="mean_accuracy", mode="max")
    print(f"Best config: {best.config}")
    print(f"Best mean_accuracy: {best.metrics['mean_accuracy']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="finish quickly for testing")
    args, _ = parser.parse_known_args()
    main(args.smoke_test)
