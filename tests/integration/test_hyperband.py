"""HyperBandScheduler on a real Ray: halving, pausing, resuming from checkpoints."""

from __future__ import annotations

import json
import os
import tempfile

import atune as tune
from atune.schedulers.hyperband import HyperBandScheduler

# The qualities, their expected ends, the class trainable and the restore counter are
# the executor contract suite's (which runs the class-trainable case on both executors).
from tests.contract.test_schedulers import EXPECTED_END, QUALITIES, Linear, Restores


def _lines(path: str) -> list[dict]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def linear_function(config):
    i = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with open(os.path.join(ckpt.path, "state.json")) as f:
            i = json.load(f)["i"]
    while True:
        i += 1
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"i": i}, f)
            tune.report(
                {"score": config["q"] * i, "i": i},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


async def _fit(trainable, storage):
    scheduler = HyperBandScheduler(max_t=9, reduction_factor=3, metric="score", mode="max")
    restores = Restores()
    grid = await tune.Tuner(
        trainable,
        param_space={"q": tune.grid_search(QUALITIES)},
        tune_config=tune.TuneConfig(scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[restores]),
    ).fit()
    return grid, scheduler, restores


def _check(grid, scheduler, restores):
    assert grid.num_errors == 0
    ends = {r.config["q"]: r.metrics["training_iteration"] for r in grid}
    assert ends == EXPECTED_END
    best = grid.get_best_result(metric="score", mode="max")
    assert best.config["q"] == 8 and best.metrics["training_iteration"] == 9
    # Of the two survivors of bracket 1, at most one was the last to reach the
    # milestone (it went straight on); the other was paused and resumed.
    by_q = {r.config["q"]: r for r in grid}
    survivors = [by_q[7].metrics["trial_id"], by_q[8].metrics["trial_id"]]
    assert any(restores.restored.get(tid) for tid in survivors), restores.restored
    for result in grid:
        lines = _lines(result.path)
        end = EXPECTED_END[result.config["q"]]
        assert [r["training_iteration"] for r in lines] == list(range(1, end + 1))
        # The trainable's own counter continued from the checkpoint, not from scratch.
        assert [r["i"] for r in lines] == list(range(1, end + 1))
        if restores.restored.get(result.metrics["trial_id"]):
            assert lines[3]["iterations_since_restore"] == 1
    assert scheduler.debug_string().splitlines() == [
        "Using HyperBand: num_stopped=3 total_brackets=2",
        "Round #0:",
        "  Bracket(Max Size (n)=3, Milestone (r)=9, completed=100.0%): {TERMINATED: 3} ",
        "  Bracket(Max Size (n)=2, Milestone (r)=9, completed=100.0%): {TERMINATED: 5} ",
    ]


async def test_class_trainable_is_halved_paused_and_resumed(storage):
    _check(*await _fit(Linear, storage))


async def test_function_trainable_resumes_from_its_reported_checkpoint(storage):
    _check(*await _fit(linear_function, storage))
