"""ResourceChangingScheduler on real Ray: trials are resized and see their new resources."""

from __future__ import annotations

import json
import os
import tempfile

import atune as tune
from atune.schedulers import ResourceChangingScheduler


def grows(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with open(os.path.join(ckpt.path, "step.txt")) as f:
            start = int(f.read())
    for step in range(start + 1, 7):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "step.txt"), "w") as f:
            f.write(str(step))
        cpus = tune.get_trial_resources().get("CPU", 0)
        tune.report({"step": step, "cpus": cpus}, checkpoint=tune.Checkpoint.from_directory(d))


async def test_trials_are_resized_and_see_their_resources(storage):
    grid = await tune.Tuner(
        grows,
        param_space={"k": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(scheduler=ResourceChangingScheduler()),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    for result in grid:
        with open(os.path.join(result.path, "result.json")) as f:
            rows = [json.loads(line) for line in f]
        assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # resumed exactly
        cpus = [r["cpus"] for r in rows]
        assert cpus[0] == 1.0
        assert max(cpus) >= 2.0  # 4 CPUs shared by the live trials
        assert set(cpus) <= {1.0, 2.0, 4.0}  # 1 at start; 2 each while both live; 4 alone
