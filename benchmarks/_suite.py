"""The benchmarks of ``python -m benchmarks``: what each runs, for each library.

A :class:`Benchmark` is a list of :class:`Case`; a case is one workload of
:mod:`benchmarks._workloads` run once per library, each in a fresh process. A case
names the figure it is judged by; the ratio is always "how many times better atune
is" (atune/Ray Tune for a rate, Ray Tune/atune for a time). Where Ray Tune would need
hours for atune's size, it runs a smaller size of the same workload and the figure is
a rate (per result, per trial), which the table says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Figure key -> (unit, higher is better).
FIGURES: dict[str, tuple[str, bool]] = {
    "results_per_s": ("results/s", True),
    "trials_per_s": ("trials/s", True),
    "seconds": ("s", False),
    "lag_p99_ms": ("ms", False),
    "lag_max_ms": ("ms", False),
    "rss_growth_mb": ("MB", False),
}


@dataclass
class Case:
    label: str
    workload: str
    #: Library -> workload parameters (full run); ``quick``: the same for --quick.
    params: dict[str, dict[str, Any]]
    quick: dict[str, dict[str, Any]]
    figure: str
    #: Further figures shown in the table's notes (keys of the workload's result).
    extra: tuple[str, ...] = ()
    no_loggers: bool = False
    num_cpus: int | None = None


@dataclass
class Benchmark:
    name: str
    title: str
    cases: list[Case] = field(default_factory=list)
    #: Figures derived from two cases: (label, case a, case b, how), see derive().
    derived: list[tuple[str, str, str]] = field(default_factory=list)


def _both(full: dict[str, Any], quick: dict[str, Any]) -> dict[str, Any]:
    return {"params": {"atune": full, "raytune": full}, "quick": {"atune": quick, "raytune": quick}}


def _tight(trials: int, reports: int) -> dict[str, int]:
    return {"trials": trials, "reports": reports}


QUICK_TIGHT = _tight(2, 50)

BENCHMARKS: list[Benchmark] = [
    Benchmark(
        "throughput",
        "Result throughput: trials reporting in a tight loop, default loggers",
        [
            *(
                Case(
                    f"{n} x 2,000 results",
                    "throughput",
                    figure="results_per_s",
                    **_both(_tight(n, 2_000), QUICK_TIGHT),
                )
                for n in (1, 2, 4, 8)
            ),
            Case(
                "8 x 20,000 results (Ray Tune: 8 x 4,000)",
                "throughput",
                params={"atune": _tight(8, 20_000), "raytune": _tight(8, 4_000)},
                quick={"atune": _tight(2, 100), "raytune": _tight(2, 100)},
                figure="results_per_s",
            ),
            Case(
                "8 x 2,000 results, loggers off",
                "throughput",
                figure="results_per_s",
                no_loggers=True,
                **_both(_tight(8, 2_000), QUICK_TIGHT),
            ),
            Case(
                "8 x 20,000 results, loggers off (Ray Tune: 8 x 4,000)",
                "throughput",
                params={"atune": _tight(8, 20_000), "raytune": _tight(8, 4_000)},
                quick={"atune": _tight(2, 100), "raytune": _tight(2, 100)},
                figure="results_per_s",
                no_loggers=True,
            ),
        ],
        derived=[
            (
                "steady state (between the 8-trial runs)",
                "8 x 2,000 results",
                "8 x 20,000 results (Ray Tune: 8 x 4,000)",
            ),
            (
                "steady state, loggers off",
                "8 x 2,000 results, loggers off",
                "8 x 20,000 results, loggers off (Ray Tune: 8 x 4,000)",
            ),
        ],
    ),
    Benchmark(
        "overhead",
        "Trial overhead: trials of one result each, at defaults",
        [
            Case(
                "1,000 trials (Ray Tune: 100)",
                "trials",
                params={"atune": {"count": 1_000}, "raytune": {"count": 100}},
                quick={"atune": {"count": 6}, "raytune": {"count": 6}},
                figure="trials_per_s",
            )
        ],
    ),
    Benchmark(
        "paced",
        "Paced workload: 16 trials x 100 results at 100 Hz (ideal: 1 s per trial)",
        [
            Case(
                "16 x 100 at 100 Hz",
                "paced",
                figure="seconds",
                **_both(
                    {"trials": 16, "reports": 100, "hz": 100.0},
                    {"trials": 2, "reports": 10, "hz": 100.0},
                ),
            )
        ],
    ),
    Benchmark(
        "scale",
        "Scale: one experiment of many one-result trials; driver memory and time per trial",
        [
            Case(
                "10,000 trials (Ray Tune: 100)",
                "trials",
                params={"atune": {"count": 10_000}, "raytune": {"count": 100}},
                quick={"atune": {"count": 8}, "raytune": {"count": 8}},
                figure="trials_per_s",
                extra=("rss_growth_mb", "max_open_files"),
            )
        ],
    ),
    Benchmark(
        "loop_lag",
        "Event-loop lag of a host coroutine (10 ms ticker) during a tight-loop experiment",
        [
            Case(
                "8 x 20,000 results (Ray Tune: 8 x 2,000, fit() in a thread)",
                "loop_lag",
                params={"atune": _tight(8, 20_000), "raytune": _tight(8, 2_000)},
                quick={"atune": QUICK_TIGHT, "raytune": QUICK_TIGHT},
                figure="lag_p99_ms",
                extra=("lag_p50_ms", "lag_max_ms", "results_per_s"),
            )
        ],
    ),
    Benchmark(
        "optuna",
        "Searcher-bound: Optuna TPE, 200 one-result trials, 4 at once (4 logical CPUs)",
        [
            Case(
                "200 trials, 4 concurrent",
                "optuna_tpe",
                figure="trials_per_s",
                extra=("best_loss",),
                num_cpus=4,
                **_both({"count": 200, "concurrency": 4}, {"count": 6, "concurrency": 2}),
            )
        ],
    ),
]

BY_NAME = {b.name: b for b in BENCHMARKS}


def ratio(figure: str, atune: float, raytune: float) -> float:
    """How many times better atune is on ``figure``."""
    higher = FIGURES[figure][1]
    if higher:
        return atune / raytune if raytune else float("inf")
    return raytune / atune if atune else float("inf")


def steady_rate(small: dict[str, Any], large: dict[str, Any]) -> float:
    """Results/s between two runs of one workload: start-up cancels out."""
    return (large["results"] - small["results"]) / (large["seconds"] - small["seconds"])
