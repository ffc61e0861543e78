"""Event-loop lag of a host application while an experiment runs on its loop.

A host coroutine sleeps 10 ms in a loop and records how late it wakes up, while 8 trials
report in a tight loop (default loggers on) and a REST client (``atune.TuneClient``, in a
thread of its own, as another process would) polls ``GET /trials`` 20 times a second; the
experiment's REST server runs on the same loop (``RunConfig(with_server=True)``). Prints
the lag's p50, p99 and maximum, and the results/s reached meanwhile.

Ray Tune has no counterpart to measure: its ``fit()`` blocks the calling thread, so no
host coroutine can run beside it on that thread at all.

    python benchmarks/loop_lag.py                  # 8 trials x 20,000 results
    python benchmarks/loop_lag.py --quick          # seconds (CI)

Figures and the command that produced them are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import tempfile
import threading
import time
from typing import Any

import anyio

TICK_S = 0.010
#: Ticks later than this are counted, split at STARTUP_S after the experiment began.
SLOW_S = 0.020
STARTUP_S = 3.0


def tight_loop(config: dict[str, Any]) -> None:
    import atune

    for i in range(config["reports"]):
        atune.report({"i": i})


async def measure(
    trials: int, reports: int, poll_hz: float, storage: str, gc_freeze: bool
) -> dict[str, float]:
    import atune

    tuner = atune.Tuner(
        tight_loop,
        param_space={"trial": atune.grid_search(list(range(trials))), "reports": reports},
        run_config=atune.RunConfig(
            storage_path=storage, verbose=0, with_server=True, server_port=0
        ),
    )
    lags: list[float] = []
    slow: list[float] = []  # when (s since the start) a tick was late by > SLOW_S
    polls = 0
    start = 0.0
    async with tuner.start() as run:
        host, port = run.server_address  # type: ignore[misc]
        stop = threading.Event()

        def poll() -> None:
            nonlocal polls
            import httpx

            with atune.TuneClient(host, port) as client:
                while not stop.is_set():
                    try:
                        client.get_all_trials()
                    except httpx.TransportError:
                        if run.done:  # the server closed with the experiment
                            return
                        raise
                    polls += 1
                    stop.wait(1 / poll_hz)

        async def ticker() -> None:
            while not run.done:
                t = time.perf_counter()
                await anyio.sleep(TICK_S)
                lag = time.perf_counter() - t - TICK_S
                lags.append(lag)
                if lag > SLOW_S:
                    slow.append(t - start)

        if gc_freeze:
            # What a host can do once its own start-up is done: move every object that
            # exists now out of the collector's sight, so full collections walk only
            # what the experiment allocates from here on.
            gc.collect()
            gc.freeze()
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            tg.start_soon(anyio.to_thread.run_sync, poll)
            grid = await run.wait()
            stop.set()
    elapsed = time.perf_counter() - start
    results = sum(r.metrics.get("training_iteration", 0) for r in grid)
    lags.sort()
    return {
        "p50": statistics.median(lags),
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "max": lags[-1],
        "ticks": len(lags),
        "results_per_s": results / elapsed,
        "polls": polls,
        "slow_startup": sum(1 for t in slow if t < STARTUP_S),
        "slow_after": sum(1 for t in slow if t >= STARTUP_S),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--reports", type=int, default=20_000, help="results per trial")
    parser.add_argument("--poll-hz", type=float, default=20.0)
    parser.add_argument(
        "--gc-freeze", action="store_true", help="the host calls gc.freeze() once started"
    )
    parser.add_argument("--quick", action="store_true", help="tiny run, for CI")
    args = parser.parse_args()
    reports = 500 if args.quick else args.reports
    import ray

    ray.init(num_cpus=args.trials, include_dashboard=False, log_to_driver=False)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Ray {ray.__version__}"
    )
    with tempfile.TemporaryDirectory() as storage:
        figures = anyio.run(measure, args.trials, reports, args.poll_hz, storage, args.gc_freeze)
    print(
        f"{args.trials} trials x {reports:,} results, REST client polling at "
        f"{args.poll_hz:g} Hz ({figures['polls']:.0f} polls), default loggers"
    )
    print(
        f"loop lag of a 10 ms ticker over {figures['ticks']:.0f} ticks: "
        f"p50 {figures['p50'] * 1e3:.1f} ms, p99 {figures['p99'] * 1e3:.1f} ms, "
        f"max {figures['max'] * 1e3:.1f} ms"
    )
    print(
        f"ticks late by > {SLOW_S * 1e3:.0f} ms: {figures['slow_startup']:.0f} in the first "
        f"{STARTUP_S:g} s (start-up), {figures['slow_after']:.0f} after"
    )
    print(f"results/s meanwhile: {figures['results_per_s']:,.0f}")


if __name__ == "__main__":
    main()
