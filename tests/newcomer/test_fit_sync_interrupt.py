"""Ctrl-C during ``fit_sync()`` stops the experiment, then raises KeyboardInterrupt.

Each script runs in a fresh process with no Ray of the test's own (as in conftest's
``run_script``), started with Popen so that the test can send it SIGINT, as Ctrl-C in a
terminal or a notebook's interrupt button does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Ray's start-up, then the trials' first reports; far more means a hang.
FIRST_REPORTS_TIMEOUT_S = 120
#: From SIGINT to the end of the process: stopping the trials, saving, ray.shutdown().
EXIT_TIMEOUT_S = 60

SCRIPT = """
import asyncio, glob, os, sys, threading, time
import atune as tune

MODE = sys.argv[1]  # "script", "loop" or "loop-slow-cleanup"
REPORTS = os.path.abspath("reports.txt")


def forever(config):
    i = 0
    while True:
        time.sleep(0.05)
        i += 1
        with open(config["reports"], "a") as f:
            f.write(f"{config['x']} {i}\\n")
        tune.report({"v": i})


class SlowCleanup(tune.Callback):
    def on_experiment_end(self, trials, **info):
        print("CLEANUP STARTED", flush=True)
        time.sleep(30)  # holds up fit()'s shutdown: only a second Ctrl-C ends the wait


def reports():
    try:
        with open(REPORTS) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def cell():
    tuner = tune.Tuner(
        forever,
        param_space={"x": tune.grid_search([1, 2]), "reports": REPORTS},
        run_config=tune.RunConfig(
            name="endless",
            storage_path=os.path.abspath("results"),
            verbose=0,
            callbacks=[SlowCleanup()] if MODE == "loop-slow-cleanup" else [],
        ),
    )
    try:
        tuner.fit_sync()
    except KeyboardInterrupt:
        print(f"INTERRUPTED {time.time():.3f}", flush=True)
    else:
        sys.exit("fit_sync() returned although the trials report forever")
    print("THREADS", ",".join(t.name for t in threading.enumerate()), flush=True)
    if MODE == "loop-slow-cleanup":
        return
    before = reports()
    time.sleep(2)
    print("REPORTS", before, reports(), flush=True)
    grid = tuner.get_results()
    saved = sum(
        len(open(p).read().splitlines())
        for p in glob.glob(os.path.join(grid.experiment_path, "*", "result.json"))
    )
    print("SAVED", len(grid), saved, flush=True)
    print("RESTORABLE", tune.Tuner.can_restore(grid.experiment_path), flush=True)


if MODE == "script":
    cell()  # no running loop: fit_sync() runs anyio.run() on this thread
else:

    async def main():
        asyncio.get_running_loop()
        cell()  # a notebook cell: synchronous code on the thread that runs the loop

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        # asyncio.run's own SIGINT handler saw the Ctrl-C too (fit_sync calls it).
        print("ASYNCIO.RUN INTERRUPTED", flush=True)
print("END", flush=True)
"""


@dataclass
class Script:
    proc: subprocess.Popen[bytes]
    dir: Path

    def stdout(self) -> str:
        return (self.dir / "stdout.txt").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.dir / "stderr.txt").read_text(errors="replace")

    def reports(self) -> int:
        path = self.dir / "reports.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def explain(self) -> str:
        return (
            f"exit code {self.proc.poll()}\n"
            f"stdout:\n{self.stdout()[-4000:]}\nstderr:\n{self.stderr()[-4000:]}"
        )

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"the script ended before {what}:\n{self.explain()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout} s:\n{self.explain()}")
            time.sleep(0.1)

    def wait_for_exit(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the script did not end within {timeout} s of SIGINT:\n{self.explain()}")

    def marker(self, name: str) -> list[str]:
        """The words after ``name`` on its line of stdout."""
        for line in self.stdout().splitlines():
            if line.startswith(name + " ") or line == name:
                return line[len(name) :].split()
        pytest.fail(f"no {name!r} line in the output:\n{self.explain()}")


@pytest.fixture
def start_script(tmp_path: Path) -> Iterator[Callable[..., Script]]:
    """Start SCRIPT in a fresh process, like conftest's run_script, but without waiting."""
    started: list[subprocess.Popen[bytes]] = []
    # A Ray of its own, in its own temp dir (short: socket paths must fit in 107 bytes).
    ray_tmp = tempfile.mkdtemp(prefix="atn", dir="/tmp")

    def start(mode: str) -> Script:
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(SCRIPT))
        env = {**os.environ, "ATUNE_RESULTS_DIR": str(tmp_path / "results"), "RAY_TMPDIR": ray_tmp}
        env.pop("RAY_ADDRESS", None)
        with open(tmp_path / "stdout.txt", "wb") as out, open(tmp_path / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(script), mode],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, to clean up after a failure
            )
        started.append(proc)
        return Script(proc, tmp_path)

    yield start
    for proc in started:
        if proc.poll() is None:  # the test failed: take the script and its Ray down
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def interrupt_after_first_reports(script: Script) -> float:
    """SIGINT the script once both trials report; returns when (time.time())."""
    script.wait_for("reports", lambda: script.reports() >= 20, FIRST_REPORTS_TIMEOUT_S)
    sent = time.time()
    script.proc.send_signal(signal.SIGINT)
    return sent


def check_stopped_and_saved(script: Script) -> None:
    before, after = map(int, script.marker("REPORTS"))
    assert before == after, f"trials went on reporting after KeyboardInterrupt: {before} -> {after}"
    assert script.reports() == after, script.explain()
    trials, saved = map(int, script.marker("SAVED"))
    assert trials == 2 and saved > 0, script.explain()  # the results so far are on disk
    assert "END" in script.stdout(), script.explain()
    assert script.proc.returncode == 0, script.explain()
    # It says how to continue, and the experiment can be.
    assert script.marker("RESTORABLE") == ["True"], script.explain()
    path = script.dir / "results" / "endless"
    assert f"atune.Tuner.restore({str(path)!r}, trainable=...)" in script.stderr(), script.explain()


def test_ctrl_c_in_a_script_stops_the_experiment(start_script):
    # No running loop: anyio.run's own SIGINT handling cancels fit().
    script = start_script("script")
    sent = interrupt_after_first_reports(script)
    script.wait_for_exit(EXIT_TIMEOUT_S)
    (interrupted,) = map(float, script.marker("INTERRUPTED"))
    assert interrupted - sent < 30, script.explain()
    check_stopped_and_saved(script)


def test_ctrl_c_inside_a_running_loop_stops_the_experiment(start_script):
    # A notebook: the calling thread runs a loop, so fit() runs on a private thread.
    script = start_script("loop")
    sent = interrupt_after_first_reports(script)
    script.wait_for_exit(EXIT_TIMEOUT_S)
    (interrupted,) = map(float, script.marker("INTERRUPTED"))
    # A single Ctrl-C does it, although asyncio.run's handler alone would not raise.
    assert interrupted - sent < 30, script.explain()
    threads = script.marker("THREADS")[0].split(",")
    assert "atune-fit" not in threads, script.explain()  # the clean-up was waited for
    assert "Interrupted: stopping the experiment's trials" in script.stderr(), script.explain()
    assert "ASYNCIO.RUN INTERRUPTED" in script.stdout(), script.explain()
    check_stopped_and_saved(script)


def test_a_second_ctrl_c_stops_waiting_for_the_clean_up(start_script):
    script = start_script("loop-slow-cleanup")
    interrupt_after_first_reports(script)
    script.wait_for("the clean-up", lambda: "CLEANUP STARTED" in script.stdout(), 30)
    again = time.time()
    script.proc.send_signal(signal.SIGINT)
    script.wait_for_exit(EXIT_TIMEOUT_S)
    (interrupted,) = map(float, script.marker("INTERRUPTED"))
    assert interrupted - again < 5, script.explain()  # not the 30 s the clean-up takes
    assert "stopped waiting for the experiment to shut down" in script.stderr(), script.explain()
    # What was abandoned is still there: fit_sync() did not pretend it was done.
    assert "atune-fit" in script.marker("THREADS")[0].split(","), script.explain()
    assert "END" in script.stdout(), script.explain()
