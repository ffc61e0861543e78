"""Give trials more CPUs as others finish, with ResourceChangingScheduler.

Each trial reads its CPU count with atune.get_trial_resources() and reports a
checkpoint every iteration, so it can be restarted with new resources at any point.

    python examples/resource_changing_example.py [--smoke-test]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import atune as tune
from atune.schedulers import DistributeResources, ResourceChangingScheduler


def train(config: dict) -> None:
    step, loss = 0, 10.0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with open(os.path.join(ckpt.path, "state.json")) as f:
            state = json.load(f)
        step, loss = state["step"], state["loss"]
    while step < config["steps"]:
        cpus = tune.get_trial_resources().get("CPU", 1.0)
        time.sleep(config["work_s"] / cpus)  # more CPUs, faster iterations
        step += 1
        loss *= config["decay"]
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"step": step, "loss": loss}, f)
            tune.report({"loss": loss, "cpus": cpus}, checkpoint=tune.Checkpoint.from_directory(d))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    steps = 4 if args.smoke_test else 20
    scheduler = ResourceChangingScheduler(
        resources_allocation_function=DistributeResources(increase_by={"cpu": 1})
    )
    tuner = tune.Tuner(
        train,
        param_space={
            "decay": tune.grid_search([0.7, 0.8, 0.9]),
            "steps": steps,
            "work_s": 0.05 if args.smoke_test else 0.5,
        },
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler),
        run_config=tune.RunConfig(name="resource_changing_example", verbose=1),
    )
    results = tuner.fit_sync()
    best = results.get_best_result()
    print("Best config:", best.config)
    for r in results:
        history = r.metrics_dataframe
        print(r.config["decay"], "CPUs over time:", history["cpus"].tolist())


if __name__ == "__main__":
    main()
