"""SIGKILL the driver (a script's whole process group) at random moments; restore each time.

Each round runs the same script in a fresh process group with no Ray of the test's own:
the first round starts the experiment, later rounds find it with
``Tuner.can_restore`` and continue it with ``Tuner.restore``. A round is killed at a
seeded random moment (during Ray's start-up, while trials run, while they finish),
until one round completes. Then:

- every trial completed with iterations 1..N exactly once in ``result.json``, and each
  row's own counter (restored from the trial's checkpoint) agrees with
  ``training_iteration``: the history is the one the trial's state continues from;
- no trial that had finished before a kill (TERMINATED in the journal) ran again;
- trials that were running continued from a checkpoint, not from scratch.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from atune._engine import journal as J
from atune._engine.restore import _last_logged_iteration

ITERATIONS = 50
TRIALS = 6
#: One round, unkilled, finishes well within this (Ray's start-up included).
ROUND_TIMEOUT_S = 180
MAX_ROUNDS = 8

SCRIPT = f"""
import json, logging, os, sys, tempfile, time
import atune as tune

ITERATIONS = {ITERATIONS}
logging.basicConfig(level=logging.WARNING)


def train(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            with open(os.path.join(d, "state.json")) as f:
                start = json.load(f)["i"]
    with open("starts.txt", "a") as f:  # the trial's directory
        f.write(f"{{start}}\\n")
    for i in range(start, ITERATIONS):
        time.sleep(0.05)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({{"i": i + 1}}, f)
            tune.report(
                {{"score": config["x"] * (i + 1), "i": i + 1}},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


path = sys.argv[1]
if tune.Tuner.can_restore(path):
    tuner = tune.Tuner.restore(path, train)
else:
    tuner = tune.Tuner(
        train,
        param_space={{"x": tune.uniform(0, 1)}},
        tune_config=tune.TuneConfig(metric="score", mode="max", num_samples={TRIALS}),
        run_config=tune.RunConfig(
            name=os.path.basename(path),
            storage_path=os.path.dirname(path),
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
grid = tuner.fit_sync()
print("DONE", len(grid), flush=True)
"""


def _round(script: Path, exp: Path, kill_after: float | None) -> bool:
    """Run one round; True if it completed, False if it was killed."""
    env = {**os.environ}
    env.pop("RAY_ADDRESS", None)
    ray_tmp = tempfile.mkdtemp(prefix="atk", dir="/tmp")
    env["RAY_TMPDIR"] = ray_tmp
    log = open(exp.parent / "rounds.log", "a")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(script), str(exp)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: Ray's processes die with it
    )
    try:
        try:
            proc.wait(timeout=kill_after if kill_after is not None else ROUND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            if kill_after is None:
                pytest.fail(f"a round did not end within {ROUND_TIMEOUT_S} s")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False
        if proc.returncode != 0:
            pytest.fail(f"a round failed:\n{(exp.parent / 'rounds.log').read_text()[-5000:]}")
        return True
    finally:
        log.close()
        _kill_leftovers(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _kill_leftovers(ray_tmp: str) -> None:
    """Ray's own daemons may have left the process group; end those of this round."""
    out = subprocess.run(["pgrep", "-f", ray_tmp], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    time.sleep(0.5)


@pytest.mark.parametrize("seed", [1, 2])
def test_driver_killed_at_random_moments_always_completes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(SCRIPT))
    exp = tmp_path / "exp"
    finished_before: dict[str, tuple[str, str]] = {}  # trial id -> (starts, result.json)
    #: (trial id, the checkpoint iteration it must continue from after a kill)
    expected_starts: list[tuple[str, int]] = []
    kills = 0
    for n in range(MAX_ROUNDS):
        last = n == MAX_ROUNDS - 1
        kill_after = None if last else rng.uniform(1.5, 9.0)
        if _round(script, exp, kill_after):
            break
        kills += 1
        if not (exp / "journal").exists():
            continue  # killed before the experiment began: the next round starts it
        state, _ = J.load(str(exp))
        for trial_id in state.order:
            rec = state.trials[trial_id]
            logged = _last_logged_iteration(rec["path"])
            usable = [k[1] for k in state.kept(trial_id) if logged is None or k[1] <= logged]
            if rec["status"] == "RUNNING" and usable:
                expected_starts.append((trial_id, max(usable)))
            if rec["status"] == "TERMINATED" and trial_id not in finished_before:
                d = Path(rec["path"])
                finished_before[trial_id] = (
                    (d / "starts.txt").read_text(),
                    (d / "result.json").read_text(),
                )
    assert kills >= 1, "no round was killed: the test proved nothing"
    state, _ = J.load(str(exp))
    assert len(state.order) == TRIALS, state.order
    for trial_id in state.order:
        rec = state.trials[trial_id]
        assert rec["status"] == "TERMINATED", rec
        d = Path(rec["path"])
        rows = [json.loads(line) for line in (d / "result.json").read_text().splitlines()]
        its = [r["training_iteration"] for r in rows]
        assert its == list(range(1, ITERATIONS + 1)), (trial_id, its)
        assert all(r["i"] == r["training_iteration"] for r in rows), (trial_id, rows)
        starts = [int(s) for s in (d / "starts.txt").read_text().split()]
        for tid, it in expected_starts:
            if tid == trial_id:
                assert it in starts, (trial_id, it, starts)
        if trial_id in finished_before:
            assert (d / "starts.txt").read_text() == finished_before[trial_id][0], trial_id
            assert (d / "result.json").read_text() == finished_before[trial_id][1], trial_id
