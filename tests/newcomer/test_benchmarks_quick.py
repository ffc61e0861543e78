"""The benchmarks run (in their quick mode): proof that they work, never a speed check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_state_overhead_quick(tmp_path: Path) -> None:
    env = {**os.environ, "ATUNE_RESULTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "state_overhead.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if "|" in line and "us" in line]
    assert len(rows) == 2, proc.stdout  # one per size, each with both figures
    assert all("ms" in row and row.rstrip().endswith("x") for row in rows), proc.stdout
