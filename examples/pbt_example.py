"""Population Based Training with a class trainable (Ray Tune's pbt_example, ported).

A fake agent whose reward grows fastest at factor_1 = 10 and with factor_2 = 2. Ten
trials start at factor_1 = 4; every 10 iterations (5 in the smoke test) the bottom
quarter copies the weights of a top trial and perturbs its factors. The smoke test
runs on 4 CPUs, so the ten trials are time-multiplexed (paused at their perturbation
points while others run).

    python examples/pbt_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import atune as tune
from atune.schedulers import PopulationBasedTraining


class MyTrainableClass(tune.Trainable):
    """Fake agent whose learning speed is set by two dummy factors."""

    def setup(self, config):
        self.timestep = 0
        self.current_value = 0.0

    def step(self):
        time.sleep(self.config.get("sleep", 0.1))
        self.timestep += 1
        # A parabola in factor_1 with its maximum at 10, plus a flat gain from factor_2.
        self.current_value += max(
            0.0, random.gauss(5.0 - (self.config["factor_1"] - 10.0) ** 2, 2.0)
        )
        self.current_value += random.gauss(self.config["factor_2"], 1.0)
        return {"episode_reward_mean": self.current_value}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"timestep": self.timestep, "value": self.current_value}, f)

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            state = json.load(f)
        self.timestep, self.current_value = state["timestep"], state["value"]

    def reset_config(self, new_config):
        self.config = new_config  # switch hyperparameters without a new process
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="finish quickly for testing")
    args = parser.parse_args()

    if args.smoke_test:
        import ray

        ray.init(num_cpus=4, include_dashboard=False)  # fewer slots than trials: pausing

    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        reward_attr="episode_reward_mean",  # the 0.7 spelling of metric=..., mode="max"
        perturbation_interval=5 if args.smoke_test else 10,
        hyperparam_mutations={
            # Scaled by 1.2 or 0.8; resampled from the function with probability 0.25.
            "factor_1": lambda: random.uniform(0.0, 20.0),
            # Moved to a neighbouring value (or resampled).
            "factor_2": [1, 2],
        },
    )
    tuner = tune.Tuner(
        MyTrainableClass,
        param_space={"factor_1": 4.0, "factor_2": 1.0, "sleep": 0.01 if args.smoke_test else 0.1},
        tune_config=tune.TuneConfig(scheduler=pbt, num_samples=10, reuse_actors=True),
        run_config=tune.RunConfig(
            name="pbt_test",
            stop={"training_iteration": 20 if args.smoke_test else 100},
            verbose=1,
        ),
    )
    results = tuner.fit_sync()
    best = results.get_best_result(metric="episode_reward_mean", mode="max")
    print("Best config:", {k: best.config[k] for k in ("factor_1", "factor_2")})
    print("Best reward:", round(best.metrics["episode_reward_mean"], 2))
    print("Best trial's tag:", best.metrics["experiment_tag"])


if __name__ == "__main__":
    main()
