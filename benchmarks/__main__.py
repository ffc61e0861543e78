"""``python -m benchmarks [NAME ...] [--quick]``: atune and Ray Tune, side by side.

Every case of every benchmark named (all by default) runs once per library, each in a
fresh process (``ray.init(num_cpus=<cores>)``, the library's defaults), one after the
other; the suite prints both figures and the ratio as it goes, then one Markdown table
of everything. The figures are written to ``--out`` (JSON), and ``--plots DIR`` draws
them (PNG).

    python -m benchmarks                    # everything (over half an hour on 2 cores)
    python -m benchmarks throughput paced   # some
    python -m benchmarks --quick            # each benchmark's first case, tiny: proves it works
    python -m benchmarks --list             # what there is

``--quick`` figures mean nothing: start-up dominates them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._libs import LABELS, LIBS
from benchmarks._suite import BENCHMARKS, BY_NAME, FIGURES, Benchmark, Case, ratio, steady_rate

ROOT = Path(__file__).resolve().parents[1]
#: A case that runs longer than this is stopped (and reported as failed).
CASE_TIMEOUT_S = 3_600


def machine() -> str:
    import ray

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Ray {ray.__version__}"
    )


def run_case(case: Case, lib: str, quick: bool, logs: Path) -> dict[str, Any]:
    params = (case.quick if quick else case.params)[lib]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "figures.json")
        cmd = [sys.executable, "-m", "benchmarks._child", case.workload, lib]
        cmd += [json.dumps(params), out]
        if case.num_cpus:
            cmd += ["--num-cpus", str(case.num_cpus)]
        if case.no_loggers:
            cmd.append("--no-loggers")
        # Ray's workers import the trainables from this package.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        log = logs / f"{case.workload}-{lib}-{abs(hash(case.label)) % 10**6}.log"
        with open(log, "w") as f:
            proc = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp,
                timeout=CASE_TIMEOUT_S,
            )  # fmt: skip
        if proc.returncode != 0:
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"{LABELS[lib]} failed on {case.label!r} (log {log}):\n{tail}")
        with open(out) as f:
            figures: dict[str, Any] = json.load(f)
    figures["params"] = params
    return figures


def fmt(value: float, figure: str) -> str:
    unit = FIGURES[figure][0]
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"


def run_benchmark(bench: Benchmark, quick: bool, logs: Path) -> list[dict[str, Any]]:
    print(f"\n## {bench.name}: {bench.title}", flush=True)
    rows: list[dict[str, Any]] = []
    by_label: dict[str, dict[str, dict[str, Any]]] = {}
    for case in bench.cases[:1] if quick else bench.cases:
        figures = {lib: run_case(case, lib, quick, logs) for lib in LIBS}
        by_label[case.label] = figures
        a, r = (figures[lib][case.figure] for lib in LIBS)
        row = {
            "benchmark": bench.name,
            "case": case.label,
            "figure": case.figure,
            "atune": a,
            "raytune": r,
            "ratio": ratio(case.figure, a, r),
            "extra": {k: [figures[lib].get(k) for lib in LIBS] for k in case.extra},
            "runs": figures,
        }
        rows.append(row)
        print(line(row), flush=True)
    for label, small, large in [] if quick else bench.derived:
        a, r = (steady_rate(by_label[small][lib], by_label[large][lib]) for lib in LIBS)
        row = {
            "benchmark": bench.name,
            "case": label,
            "figure": "results_per_s",
            "atune": a,
            "raytune": r,
            "ratio": ratio("results_per_s", a, r),
            "extra": {},
            "runs": {},
        }
        rows.append(row)
        print(line(row), flush=True)
    return rows


def line(row: dict[str, Any]) -> str:
    figure = row["figure"]
    text = (
        f"{row['case']:<58} atune {fmt(row['atune'], figure):>18}   "
        f"Ray Tune {fmt(row['raytune'], figure):>18}   {row['ratio']:6.1f}x"
    )
    for key, (a, r) in row["extra"].items():
        text += f"\n{'':<4}{key}: atune {a:,.1f}, Ray Tune {r:,.1f}"
    return text


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| benchmark | case | atune | Ray Tune | ratio |", "|---|---|---|---|---|"]
    for row in rows:
        figure = row["figure"]
        notes = "; ".join(f"{key} {a:,.1f} vs {r:,.1f}" for key, (a, r) in row["extra"].items())
        case = row["case"] + (f" ({notes})" if notes else "")
        out.append(
            f"| {row['benchmark']} | {case} | {fmt(row['atune'], figure)} | "
            f"{fmt(row['raytune'], figure)} | {row['ratio']:.1f}x |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="atune and Ray Tune, side by side."
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves it works")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    parser.add_argument("--out", help="write the figures here (JSON)")
    parser.add_argument("--plots", metavar="DIR", help="draw PNG plots of the figures here")
    args = parser.parse_args(argv)
    if args.list:
        for bench in BENCHMARKS:
            print(f"{bench.name:<12} {bench.title}")
        return 0
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BY_NAME)}")
    chosen = [BY_NAME[n] for n in args.names] if args.names else BENCHMARKS
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"machine: {machine()}\ndate: {started:%Y-%m-%d %H:%M} UTC", flush=True)
    if args.quick:
        print("--quick: tiny sizes; the figures mean nothing", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="atune-bench-logs-"))
    rows: list[dict[str, Any]] = []
    report = {
        "machine": machine(),
        "date": started.isoformat(timespec="minutes"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "rows": rows,
    }
    for bench in chosen:
        rows += run_benchmark(bench, args.quick, logs)
        if args.out:  # after each benchmark: a later failure loses nothing measured
            Path(args.out).write_text(json.dumps(report, indent=1))
    print("\n" + table(rows))
    print(f"\nlogs of every run: {logs}")
    if args.plots:
        from benchmarks._plots import draw

        for path in draw(report, Path(args.plots)):
            print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
