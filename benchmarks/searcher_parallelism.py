"""Model-based searchers in parallel: atune vs Ray Tune, side by side, in one run.

Trials that each sleep a fixed time and report once, suggested by a model-based searcher
(Optuna, HyperOpt, BayesOpt, Nevergrad, each framework's own wrapper with the same seed),
on one local Ray of 2 CPUs, both frameworks at their default settings (``reuse_actors``
off, default loggers). Printed per searcher: ``fit()`` wall time and the most trials that
ran at once, from the trainables' own start and end times. With trials of 2 s, 6 trials
on 2 CPUs take about 6 s of trial time when two run at once.

    python benchmarks/searcher_parallelism.py                       # all four searchers
    python benchmarks/searcher_parallelism.py --searchers optuna    # one
    python benchmarks/searcher_parallelism.py --smoke-test          # seconds

Figures and the command that produced them are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from typing import Any

import ray

SEARCHERS = ("optuna", "hyperopt", "bayesopt", "nevergrad")
CPUS = 2


def _trainable(report: Any, seconds: float) -> Any:
    def train(config: dict[str, Any]) -> None:
        start = time.time()
        time.sleep(seconds)
        report({"loss": (config["x"] - 0.3) ** 2, "start": start, "end": time.time()})

    return train


def _searcher(framework: str, name: str) -> Any:
    if framework == "atune":
        from atune import search
    else:
        from ray.tune import search  # type: ignore[no-redef]
    if name == "optuna":
        return search.optuna.OptunaSearch(seed=0)
    if name == "hyperopt":
        return search.hyperopt.HyperOptSearch(random_state_seed=0)
    if name == "bayesopt":
        return search.bayesopt.BayesOptSearch(random_state=0)
    import nevergrad as ng

    return search.nevergrad.NevergradSearch(optimizer=ng.optimizers.OnePlusOne)


def _import_searcher_modules(framework: str) -> None:
    root = "atune.search" if framework == "atune" else "ray.tune.search"
    import importlib

    for name in SEARCHERS:
        importlib.import_module(f"{root}.{name}")


def _most_at_once(grid: Any) -> int:
    spans = [(r.metrics["start"], r.metrics["end"]) for r in grid]
    return max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)


def run(framework: str, searcher: str, trials: int, seconds: float, storage: str) -> tuple:
    """(fit() seconds, most trials at once) of one framework."""
    _import_searcher_modules(framework)
    if framework == "atune":
        import atune as tune

        run_config: Any = tune.RunConfig(name=f"atune_{searcher}", storage_path=storage, verbose=0)
    else:
        from ray import tune  # type: ignore[no-redef]

        run_config = tune.RunConfig(name=f"ray_{searcher}", storage_path=storage, verbose=0)
    tuner = tune.Tuner(
        _trainable(tune.report, seconds),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=trials,
            search_alg=_searcher(framework, searcher),
        ),
        run_config=run_config,
    )
    start = time.perf_counter()
    grid = tuner.fit_sync() if framework == "atune" else tuner.fit()
    elapsed = time.perf_counter() - start
    assert len(grid) == trials and not grid.errors, grid.errors
    return elapsed, _most_at_once(grid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one trial")
    parser.add_argument("--searchers", nargs="*", choices=SEARCHERS, default=list(SEARCHERS))
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    if args.smoke_test:
        args.trials, args.seconds, args.searchers = 2, 0.1, ["optuna"]

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=CPUS, include_dashboard=False, configure_logging=False, log_to_driver=False)
    rows = []
    storage = tempfile.mkdtemp(prefix="atune_bench_")
    try:
        for searcher in args.searchers:
            ours = run("atune", searcher, args.trials, args.seconds, storage)
            theirs = run("ray", searcher, args.trials, args.seconds, storage)
            rows.append((searcher, ours, theirs))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        ray.shutdown()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Ray {ray.__version__}"
    )
    print(
        f"{args.trials} trials of {args.seconds:g} s on {CPUS} CPUs, default settings "
        "(reuse_actors off, default loggers)"
    )
    print(f"{'searcher':<10} {'framework':<9} {'fit() s':>8} {'at once':>8}")
    for searcher, (ours, ours_n), (theirs, theirs_n) in rows:
        print(f"{searcher:<10} {'atune':<9} {ours:8.2f} {ours_n:8d}")
        print(f"{searcher:<10} {'Ray Tune':<9} {theirs:8.2f} {theirs_n:8d}")
        print(f"{searcher:<10} {'ratio':<9} {theirs / ours:7.2f}x faster (atune)")


if __name__ == "__main__":
    main()
