"""Fault injection: a trial's worker process is SIGKILLed mid-run, at several points.

The driver notices the dead actor, retries the trial from its latest checkpoint
(``FailureConfig(max_failures=...)``), and the trial completes with the right final
``training_iteration`` and a ``result.json`` that has no gap and no duplicate.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time

import pytest

import atune as tune

STEPS = 9
CHECKPOINT_EVERY = 3


def counts_with_checkpoints(config):
    start = 0
    if (ckpt := tune.get_checkpoint()) is not None:
        with open(os.path.join(ckpt.path, "i.txt")) as f:
            start = int(f.read())
    for i in range(start + 1, STEPS + 1):
        time.sleep(0.02)
        checkpoint = None
        if i % CHECKPOINT_EVERY == 0:
            d = tempfile.mkdtemp()
            with open(os.path.join(d, "i.txt"), "w") as f:
                f.write(str(i))
            checkpoint = tune.Checkpoint.from_directory(d)
        tune.report({"i": i, "pid": os.getpid()}, checkpoint=checkpoint)


class KillWorkerAt(tune.Callback):
    """SIGKILLs the process that reported iteration ``at``, once per trial."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.killed: dict[str, int] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] == self.at and trial.trial_id not in self.killed:
            self.killed[trial.trial_id] = result["pid"]
            os.kill(result["pid"], signal.SIGKILL)


def _iterations(path: str) -> list[int]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line)["training_iteration"] for line in f if line.strip()]


@pytest.mark.parametrize("at", [1, 4, 6, 8])
async def test_a_killed_worker_is_retried_from_its_checkpoint_with_one_history(storage, at):
    killer = KillWorkerAt(at)
    grid = await tune.Tuner(
        counts_with_checkpoints,
        param_space={"x": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(
            storage_path=storage,
            verbose=0,
            callbacks=[killer],
            failure_config=tune.FailureConfig(max_failures=2),
        ),
    ).fit()
    assert len(killer.killed) == 2
    for result in grid:
        assert result.error is None
        assert result.metrics["training_iteration"] == STEPS
        assert _iterations(result.path) == list(range(1, STEPS + 1))
        # The run after the kill is another process, continued from the checkpoint.
        assert result.metrics["pid"] != killer.killed[result.metrics["trial_id"]]
        with open(os.path.join(result.checkpoint.path, "i.txt")) as f:
            assert f.read() == str(STEPS - STEPS % CHECKPOINT_EVERY)
