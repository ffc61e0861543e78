"""Every script in examples/ runs to completion with --smoke-test, in a fresh process.

Each script starts its own Ray through atune, as a user running it does.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*.py"))
#: A smoke test is a few seconds of work plus Ray's start-up; far more means a hang.
SMOKE_TIMEOUT_S = 240


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_smoke_test(script, tmp_path):
    env = {**os.environ, "ATUNE_RESULTS_DIR": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke-test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    assert "Best" in proc.stdout, proc.stdout[-2000:]
