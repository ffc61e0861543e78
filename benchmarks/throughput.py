"""Result throughput: atune vs Ray Tune, side by side, in one run.

8 trials each report in a tight loop (no work between reports) with the default
loggers on (JSON, CSV, TensorBoard). Each framework runs the same trainable body on
the same local Ray; we time ``fit()`` end to end and report results per second.

    python benchmarks/throughput.py                 # full run
    python benchmarks/throughput.py --smoke-test    # seconds, for CI
    PYTHONPATH=<checkout> python benchmarks/throughput.py --atune-only
                                                    # one atune version, to compare two

Figures and the command that produced them are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time

import ray


def atune_run(num_trials: int, results_per_trial: int, storage: str) -> tuple[float, float]:
    """Results/s of atune, and the worst event-loop lag a 10 ms ticker saw meanwhile."""
    import anyio

    import atune

    def train(config):
        for i in range(config["n"]):
            atune.report({"loss": 1.0 / (i + 1), "step": i})

    tuner = atune.Tuner(
        train,
        param_space={"n": results_per_trial, "trial": atune.grid_search(list(range(num_trials)))},
        run_config=atune.RunConfig(name="atune_throughput", storage_path=storage, verbose=0),
    )
    lag = 0.0

    async def ticker() -> None:
        nonlocal lag
        while True:
            before = time.perf_counter()
            await anyio.sleep(0.01)
            lag = max(lag, time.perf_counter() - before - 0.01)

    async def fit_with_ticker():
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            grid = await tuner.fit()
            tg.cancel_scope.cancel()
        return grid

    start = time.perf_counter()
    grid = anyio.run(fit_with_ticker)
    elapsed = time.perf_counter() - start
    total = sum(r.metrics["training_iteration"] for r in grid)
    assert total == num_trials * results_per_trial, total
    return total / elapsed, lag


def ray_tune_run(num_trials: int, results_per_trial: int, storage: str) -> float:
    from ray import tune

    report = getattr(tune, "report", None)
    if report is None:  # older Ray 2.x
        from ray import train as _train

        report = _train.report

    def train(config):
        for i in range(config["n"]):
            report({"loss": 1.0 / (i + 1), "step": i})

    run_config_cls = getattr(tune, "RunConfig", None)
    if run_config_cls is None:
        from ray.train import RunConfig as run_config_cls  # type: ignore[no-redef]

    tuner = tune.Tuner(
        train,
        param_space={"n": results_per_trial, "trial": tune.grid_search(list(range(num_trials)))},
        run_config=run_config_cls(name="ray_throughput", storage_path=storage, verbose=0),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    elapsed = time.perf_counter() - start
    total = sum(r.metrics["training_iteration"] for r in grid)
    assert total == num_trials * results_per_trial, total
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--atune-results", type=int, default=50_000, help="results per trial")
    parser.add_argument("--ray-results", type=int, default=2_000, help="results per trial")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--atune-only",
        action="store_true",
        help="time atune only (to compare versions: run once per checkout on PYTHONPATH)",
    )
    args = parser.parse_args()
    if args.smoke_test:
        args.atune_results, args.ray_results = 500, 50

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # One logical CPU per trial so all trials run at once, whatever the core count.
    ray.init(
        num_cpus=args.trials, include_dashboard=False, configure_logging=False, log_to_driver=False
    )
    storage = tempfile.mkdtemp(prefix="atune_bench_")
    try:
        ours, lag = atune_run(args.trials, args.atune_results, storage)
        theirs = None if args.atune_only else ray_tune_run(args.trials, args.ray_results, storage)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        ray.shutdown()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Ray {ray.__version__}"
    )
    print(f"{args.trials} trials, tight report loop, default loggers (JSON, CSV, TensorBoard)")
    import atune

    where = os.path.dirname(os.path.dirname(os.path.abspath(atune.__file__)))
    print(f"atune    : {ours:12,.0f} results/s  ({args.trials} x {args.atune_results:,} results)")
    print(f"           from {where}")
    if theirs is not None:
        print(
            f"Ray Tune : {theirs:12,.0f} results/s  ({args.trials} x {args.ray_results:,} results)"
        )
        print(f"ratio    : {ours / theirs:12.1f} x")
    print(f"event loop during atune's fit(): worst lag of a 10 ms ticker {lag * 1000:.1f} ms")
    if args.json:
        with open(args.json, "w") as f:
            figures = {
                "atune": ours,
                "ray_tune": theirs,
                "ratio": None if theirs is None else ours / theirs,
                "lag_s": lag,
            }
            json.dump(figures, f)


if __name__ == "__main__":
    main()
