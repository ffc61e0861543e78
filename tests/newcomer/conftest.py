"""Tests that run scripts in fresh processes the way a newcomer does.

No Ray of the test's own: each script starts with no Ray running and lets atune start
one, so these tests see what a user sees (Ray's start-up, several experiments in one
process, a notebook's running loop). Keep them apart from tests/integration, whose
session fixture calls ``ray.init()`` in the test process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass

import pytest


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return (
            f"exit code {self.returncode}\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


@pytest.fixture
def run_script(tmp_path):
    """Run Python ``code`` in a fresh process with no Ray of its own; a :class:`Run`."""

    def run(code: str, *, timeout: float, args: tuple[str, ...] = ()) -> Run:
        script = tmp_path / "script.py"
        script.write_text(textwrap.dedent(code))
        env = {**os.environ, "ATUNE_RESULTS_DIR": str(tmp_path / "results")}
        env.pop("RAY_ADDRESS", None)
        # A Ray of its own, in its own temp dir, beside any other Ray on the machine
        # (short: Ray's socket paths must fit in 107 bytes).
        ray_tmp = tempfile.mkdtemp(prefix="atn", dir="/tmp")
        env["RAY_TMPDIR"] = ray_tmp
        try:
            proc = subprocess.run(
                [sys.executable, str(script), *args],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"the script did not end within {timeout} s (a hang):\n"
                f"stdout:\n{(exc.stdout or b'')[-3000:]!r}\n"
                f"stderr:\n{(exc.stderr or b'')[-3000:]!r}"
            )
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    return run
