"""The benchmarks run (in their quick mode): proof that they work, never a speed check."""

from __future__ import annotations

import json
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


def test_the_suite_runs_both_libraries_and_prints_the_ratio(tmp_path: Path) -> None:
    out, plots = tmp_path / "figures.json", str(tmp_path / "plots")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--plots", plots],
        capture_output=True,
        text=True,
        timeout=1_200,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from benchmarks._suite import BENCHMARKS

    report = json.loads(out.read_text())
    cases = {(r["benchmark"], r["case"]) for r in report["rows"]}
    assert cases == {(b.name, b.cases[0].label) for b in BENCHMARKS}  # --quick: the first
    for row in report["rows"]:
        assert row["atune"] > 0 and row["raytune"] > 0 and row["ratio"] > 0, row
        assert set(row["runs"]) == {"atune", "raytune"}
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == [
        "scale_driver_memory.png",
        "scale_per_trial_cost.png",
        "throughput_vs_trials.png",
    ]
    table = proc.stdout[proc.stdout.index("| benchmark |") :]
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == len(cases) + 1
