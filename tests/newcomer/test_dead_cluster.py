"""A Ray that dies under a running experiment ends fit() with a clear error, soon."""

from __future__ import annotations

import pytest

SCRIPT = """
import glob, os, signal, sys, time
import atune as tune
from atune.errors import ClusterDiedError

WHICH = sys.argv[1]


def children_named(name):
    # Only processes this script started (the Ray atune started for it).
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat).read()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        if comm == name and ppid == os.getpid():
            found.append(int(stat.split("/")[2]))
    return found


class KillOnFirstResult(tune.Callback):
    killed_at = None

    def on_trial_result(self, iteration, trials, trial, result):
        if KillOnFirstResult.killed_at is None and result["training_iteration"] >= 3:
            pids = children_named(WHICH)
            assert len(pids) == 1, pids
            os.kill(pids[0], signal.SIGKILL)
            KillOnFirstResult.killed_at = time.monotonic()


def f(config):
    for i in range(600):
        time.sleep(0.1)
        tune.report({"v": i})


storage = os.path.abspath("results")
tuner = tune.Tuner(
    f,
    param_space={"x": tune.grid_search(list(range(6)))},
    run_config=tune.RunConfig(
        name="lost", storage_path=storage, verbose=0, callbacks=[KillOnFirstResult()]
    ),
)
try:
    tuner.fit_sync()
except ClusterDiedError as exc:
    print(f"raised after {time.monotonic() - KillOnFirstResult.killed_at:.1f} s", flush=True)
    print("MESSAGE:", exc, flush=True)
else:
    sys.exit("fit() returned although Ray died under it")

# What was recorded stays recorded, and the trials that ran say what happened.
grid = tuner.get_results()
errored = [r for r in grid if r.error is not None]
assert errored and all(isinstance(r.error, ClusterDiedError) for r in errored), grid
lines = sum(len(open(p).read().splitlines()) for p in glob.glob(storage + "/lost/*/result.json"))
assert lines >= 3, lines
print("recorded results:", lines, flush=True)

# The program goes on: a new experiment starts a new local Ray.
def g(config):
    tune.report({"v": config["x"]})

grid = tune.Tuner(
    g, param_space={"x": tune.grid_search([1, 2])}, run_config=tune.RunConfig(verbose=0)
).fit_sync()
assert sorted(r.metrics["v"] for r in grid) == [1, 2]
print("second experiment ok", flush=True)
"""


@pytest.mark.parametrize("which", ["raylet", "gcs_server"])
def test_killed_head_process_ends_fit_with_a_clear_error(run_script, which):
    run = run_script(SCRIPT, timeout=150, args=(which,))
    assert run.returncode == 0, run.explain()
    seconds = float(run.stdout.split("raised after ")[1].split(" s")[0])
    # Ray alone would wait 60 s and then end the process.
    assert seconds < 30, run.explain()
    message = run.stdout.split("MESSAGE: ")[1]
    assert which in message and "killed by SIGKILL" in message, message
    assert "saved in" in message and "/lost" in message, message  # what was saved
    assert "run the experiment again" in message, message  # how to continue
    assert "second experiment ok" in run.stdout, run.explain()
