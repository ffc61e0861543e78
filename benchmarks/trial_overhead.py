"""Per-trial overhead: atune vs Ray Tune, side by side, in one run.

Many short trials (each reports one result and returns), so the time is what the
framework spends per trial: asking the searcher, starting or reusing a worker, running
the trainable, recording the result, telling the searcher. Both frameworks run on the
same local Ray with the same searcher library, ``reuse_actors=True`` and the default
loggers; ``fit()`` is timed end to end, after one unmeasured warm-up run of each (Ray
starts its worker processes on first use).

    python benchmarks/trial_overhead.py                      # random search and Optuna
    python benchmarks/trial_overhead.py --searchers optuna   # only one
    python benchmarks/trial_overhead.py --smoke-test         # seconds
    PYTHONPATH=<checkout> python benchmarks/trial_overhead.py --atune-only
                                                             # one atune version

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

SEARCHERS = ("random", "optuna")


def _objective(x: float) -> float:
    return (x - 0.3) ** 2


def atune_run(searcher: str, trials: int, concurrency: int, storage: str) -> float:
    """Seconds of atune's ``fit()`` for ``trials`` one-result trials."""
    import atune

    def train(config: dict[str, Any]) -> None:
        atune.report({"loss": _objective(config["x"])})

    search_alg: Any = None
    if searcher == "optuna":
        from atune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=0)
    tuner = atune.Tuner(
        train,
        param_space={"x": atune.uniform(0, 1)},
        tune_config=atune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=trials,
            search_alg=search_alg,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=atune.RunConfig(name=f"atune_{searcher}", storage_path=storage, verbose=0),
    )
    start = time.perf_counter()
    grid = tuner.fit_sync()
    elapsed = time.perf_counter() - start
    assert len(grid) == trials and not grid.errors, grid.errors
    return elapsed


def ray_tune_run(searcher: str, trials: int, concurrency: int, storage: str) -> float:
    """Seconds of Ray Tune's ``fit()`` for the same experiment."""
    from ray import tune

    report = getattr(tune, "report", None)
    if report is None:  # older Ray 2.x
        from ray import train as _train

        report = _train.report

    def train(config: dict[str, Any]) -> None:
        report({"loss": _objective(config["x"])})

    search_alg: Any = None
    if searcher == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(seed=0)
    run_config_cls = getattr(tune, "RunConfig", None)
    if run_config_cls is None:
        from ray.train import RunConfig as run_config_cls  # type: ignore[no-redef]
    tuner = tune.Tuner(
        train,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=trials,
            search_alg=search_alg,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=run_config_cls(name=f"ray_{searcher}", storage_path=storage, verbose=0),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    elapsed = time.perf_counter() - start
    assert len(grid) == trials and not grid.errors, grid.errors
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="trials running at once")
    parser.add_argument("--searchers", nargs="*", choices=SEARCHERS, default=list(SEARCHERS))
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument(
        "--atune-only",
        action="store_true",
        help="time atune only (to compare versions: run once per checkout on PYTHONPATH)",
    )
    args = parser.parse_args()
    if args.smoke_test:
        args.trials = 12

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(
        num_cpus=args.concurrency,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
    )
    rows = []
    storage = tempfile.mkdtemp(prefix="atune_bench_")
    try:
        # Warm-up, not measured: Ray starts its worker processes on first use.
        atune_run("random", args.concurrency, args.concurrency, storage)
        if not args.atune_only:
            ray_tune_run("random", args.concurrency, args.concurrency, storage)
        for searcher in args.searchers:
            ours = atune_run(searcher, args.trials, args.concurrency, storage)
            theirs = (
                None
                if args.atune_only
                else ray_tune_run(searcher, args.trials, args.concurrency, storage)
            )
            rows.append((searcher, ours, theirs))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        ray.shutdown()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Ray {ray.__version__}"
    )
    print(
        f"{args.trials} trials of one result each, {args.concurrency} at once, "
        "reuse_actors=True, default loggers"
    )
    print(f"{'searcher':<9} {'framework':<9} {'fit() s':>9} {'trials/s':>9} {'ms/trial':>9}")
    for searcher, ours, theirs in rows:
        for name, seconds in (("atune", ours), ("Ray Tune", theirs)):
            if seconds is None:
                continue
            per_s = args.trials / seconds
            print(
                f"{searcher:<9} {name:<9} {seconds:9.2f} {per_s:9.1f} "
                f"{1000 * seconds / args.trials:9.1f}"
            )
        if theirs is not None:
            print(f"{searcher:<9} {'ratio':<9} {theirs / ours:9.1f}x faster (atune)")


if __name__ == "__main__":
    main()
