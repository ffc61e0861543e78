"""PB2: a GP bandit tunes a learning-rate schedule for a small population.

A toy model whose accuracy grows fastest when the learning rate is close to an ideal
value that decays during training (1e-2 at the start, 1e-3 by the end), so no fixed
learning rate is best: PB2 discovers a schedule. The trainable is a function that
reports a checkpoint with every result, so trials can be restarted from each other's
state. Needs scikit-learn: pip install "atune[pb2]".

    python examples/pb2_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time

import atune as tune
from atune.schedulers import PB2


def ideal_lr(step: int, steps: int) -> float:
    return 10 ** (-2 - step / steps)


def train(config: dict) -> None:
    step, accuracy = 0, 0.0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:  # started from its own or another trial's checkpoint
        with open(os.path.join(ckpt.path, "state.json")) as f:
            state = json.load(f)
        step, accuracy = state["step"], state["accuracy"]
    while True:
        time.sleep(config["sleep"])
        step += 1
        miss = abs(math.log10(config["lr"]) - math.log10(ideal_lr(step, config["steps"])))
        accuracy += (1.0 - accuracy) * 0.05 * max(0.0, 1.0 - miss)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"step": step, "accuracy": accuracy}, f)
            tune.report(
                {"mean_accuracy": accuracy, "lr": config["lr"]},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true", help="finish quickly for testing")
    args = parser.parse_args()
    steps = 24 if args.smoke_test else 200

    pb2 = PB2(
        time_attr="training_iteration",
        metric="mean_accuracy",
        mode="max",
        perturbation_interval=4 if args.smoke_test else 10,
        hyperparam_bounds={"lr": [1e-4, 1e-1]},
        seed=0,
    )
    tuner = tune.Tuner(
        train,
        param_space={
            "lr": tune.loguniform(1e-4, 1e-1),
            "steps": steps,
            "sleep": 0.01 if args.smoke_test else 0.05,
        },
        tune_config=tune.TuneConfig(scheduler=pb2, num_samples=4),
        run_config=tune.RunConfig(
            name="pb2_example", stop={"training_iteration": steps}, verbose=1
        ),
    )
    results = tuner.fit_sync()
    best = results.get_best_result(metric="mean_accuracy", mode="max")
    print("Best trial's tag:", best.metrics["experiment_tag"])
    print("Best accuracy:", round(best.metrics["mean_accuracy"], 4))
    history = best.metrics_dataframe
    print(
        "Its learning rate over time:",
        [f"{lr:.1e}" for lr in history["lr"][:: max(1, steps // 12)]],
    )
    print(pb2.debug_string())


if __name__ == "__main__":
    main()
