"""The workloads, each written once for both libraries (see :mod:`benchmarks._libs`).

A workload is ``fn(lib, storage, **params) -> dict`` of plain numbers and lists; it runs
in a process of its own (:mod:`benchmarks._child`), after ``ray.init``, and sets
nothing its experiment does not need: every other setting is the library's default.
Trainables are module-level functions, so Ray's workers import them from this module.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks._libs import Clock, Lib, open_files, rss_mb


# ----------------------------------------------------------------- trainables
def _report_of(lib: str) -> Any:
    """The ``report`` of the library named in the trial's config."""
    if lib == "atune":
        import atune

        return atune.report
    from ray import tune

    return tune.report


def tight_loop(config: dict[str, Any]) -> None:
    """Reports as fast as it can: the framework's own cost per result."""
    report = _report_of(config["lib"])
    for i in range(config["reports"]):
        report({"loss": 1.0 / (i + 1), "step": i})


def paced_loop(config: dict[str, Any]) -> None:
    """Reports at a fixed rate, as a training loop with real steps does."""
    report = _report_of(config["lib"])
    period = 1.0 / config["hz"]
    next_at = time.perf_counter()
    for i in range(config["reports"]):
        next_at += period
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        report({"loss": 1.0 / (i + 1), "step": i})


def one_result(config: dict[str, Any]) -> None:
    _report_of(config["lib"])({"loss": (config["x"] - 0.3) ** 2})


# ------------------------------------------------------------------ workloads
def _tight_tuner(lib: Lib, storage: str, trials: int, reports: int) -> Any:
    """An experiment of ``trials`` :func:`tight_loop` trials of ``reports`` results."""
    space = {"trial": lib.tune.grid_search(list(range(trials))), "reports": reports}
    return lib.tuner(tight_loop, {**space, "lib": lib.name}, storage)


def throughput(lib: Lib, storage: str, trials: int, reports: int) -> dict[str, Any]:
    """``trials`` trials each reporting ``reports`` results in a tight loop."""
    tuner = _tight_tuner(lib, storage, trials, reports)
    with Clock() as clock:
        grid = lib.fit(tuner)
    assert not grid.errors, grid.errors
    results = trials * reports
    return {
        "seconds": clock.seconds,
        "results": results,
        "results_per_s": results / clock.seconds,
    }


def paced(lib: Lib, storage: str, trials: int, reports: int, hz: float) -> dict[str, Any]:
    """``trials`` trials each reporting ``reports`` results at ``hz`` per second."""
    tuner = lib.tuner(
        paced_loop,
        {
            "trial": lib.tune.grid_search(list(range(trials))),
            "reports": reports,
            "hz": hz,
            "lib": lib.name,
        },
        storage,
    )
    with Clock() as clock:
        grid = lib.fit(tuner)
    assert not grid.errors, grid.errors
    return {"seconds": clock.seconds, "ideal_seconds": reports / hz}


def trials(lib: Lib, storage: str, count: int, samples: int = 50) -> dict[str, Any]:
    """``count`` trials of one result each; the driver's memory, open files and the
    time per trial sampled ``samples`` times along the way."""
    curve: list[dict[str, float]] = []
    every = max(1, count // samples)
    start = time.perf_counter()
    done = 0
    last = (0, start)

    class Sampler(lib.callback_base()):  # type: ignore[misc]
        def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            nonlocal done, last
            done += 1
            if done % every == 0 or done == count:
                now = time.perf_counter()
                n0, t0 = last
                curve.append(
                    {
                        "trials": done,
                        "seconds": now - start,
                        "ms_per_trial": 1000 * (now - t0) / (done - n0),
                        "rss_mb": rss_mb(),
                        "open_files": open_files(),
                    }
                )
                last = (done, now)

    rss_before = rss_mb()
    tuner = lib.tuner(
        one_result,
        {"x": lib.tune.uniform(0, 1), "lib": lib.name},
        storage,
        tune_config={"num_samples": count, "metric": "loss", "mode": "min"},
        run_config={"callbacks": [Sampler()]},
    )
    with Clock() as clock:
        grid = lib.fit(tuner)
    assert len(grid) == count and not grid.errors, grid.errors
    return {
        "seconds": clock.seconds,
        "trials_per_s": count / clock.seconds,
        "rss_before_mb": rss_before,
        "rss_growth_mb": max(p["rss_mb"] for p in curve) - rss_before,
        "max_open_files": max(p["open_files"] for p in curve),
        "curve": curve,
    }


def loop_lag(lib: Lib, storage: str, trials: int, reports: int) -> dict[str, Any]:
    """A host coroutine's lateness while an experiment of ``trials`` tight loops runs.

    atune's ``fit()`` is awaited on the host's loop; Ray Tune's ``fit()`` blocks, so a
    host runs it in a worker thread (``anyio.to_thread.run_sync``) beside the loop.
    """
    import anyio

    tick = 0.010
    lags: list[float] = []
    tuner = _tight_tuner(lib, storage, trials, reports)

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await anyio.sleep(tick)
            lags.append(max(0.0, time.perf_counter() - before - tick))

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            with Clock() as clock:
                if lib.name == "atune":
                    grid = await tuner.fit()
                else:
                    grid = await anyio.to_thread.run_sync(tuner.fit)
            tg.cancel_scope.cancel()
        assert not grid.errors, grid.errors
        return clock.seconds

    seconds = anyio.run(main)
    ordered = sorted(lags)
    return {
        "seconds": seconds,
        "results_per_s": trials * reports / seconds,
        "lag_p50_ms": 1000 * statistics.median(ordered),
        "lag_p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "lag_max_ms": 1000 * ordered[-1],
        "ticks": len(ordered),
    }


def optuna_tpe(lib: Lib, storage: str, count: int, concurrency: int) -> dict[str, Any]:
    """``count`` one-result trials suggested by Optuna's TPE, ``concurrency`` at once."""
    if lib.name == "atune":
        from atune.search.optuna import OptunaSearch
    else:
        from ray.tune.search.optuna import OptunaSearch
    tuner = lib.tuner(
        one_result,
        {"x": lib.tune.uniform(0, 1), "lib": lib.name},
        storage,
        tune_config={
            "num_samples": count,
            "metric": "loss",
            "mode": "min",
            "search_alg": OptunaSearch(seed=0),
            "max_concurrent_trials": concurrency,
        },
    )
    with Clock() as clock:
        grid = lib.fit(tuner)
    assert len(grid) == count and not grid.errors, grid.errors
    best = grid.get_best_result(metric="loss", mode="min").metrics["loss"]
    return {"seconds": clock.seconds, "trials_per_s": count / clock.seconds, "best_loss": best}
