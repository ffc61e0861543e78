"""Persisting the experiment state: time per result at 100, 1,000 and 10,000 trials.

atune: the real journal (``atune._engine.journal.JournalSink``) on a real event bus is
fed what an experiment of N running trials publishes (N trials added and started, then
results round-robin over them, then the end); the time measured is what the journal
spends on them (recording, encoding, appending to its segment in a worker thread,
snapshots), divided by the number of results. Its state on disk is at most 0.2 s behind.
Consecutive results of a trial within one 0.2 s flush share one record, so the cost per
result is highest when every result is a record of its own: the ``one record each``
column measures that worst case, and the ratio is taken against it.

Ray Tune: its experiment state is ``experiment_state-<date>.json``, rewritten whole by
``TuneController.save_to_dir``: every trial's JSON state (``Trial.get_json_state()``,
cached per trial and redone for the trials that changed), dumped with
``TuneFunctionEncoder``. The time measured is one such save after one result (one trial
changed), with N of Ray Tune's own ``Trial`` objects: what Ray Tune would spend per
result to keep its state as current as atune's. By default it saves at most every 10 s
(``checkpoint_period="auto"``, which stretches the period when saves are slow), so its
state on disk lags by that much instead.

    python benchmarks/state_overhead.py                 # 100, 1,000 and 10,000 trials
    python benchmarks/state_overhead.py --trials 100    # one size
    python benchmarks/state_overhead.py --quick         # seconds (CI)

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
from typing import Any

import anyio


def _config(i: int) -> dict[str, Any]:
    return {"lr": 10 ** (-1 - (i % 5)), "layers": i % 4 + 1, "activation": "relu", "seed": i}


def _result(i: int, it: int) -> dict[str, Any]:
    return {
        "loss": 1.0 / (it + 1),
        "accuracy": 0.5 + it / 1000,
        "training_iteration": it,
        "time_this_iter_s": 0.01,
        "time_total_s": it * 0.01,
        "timestamp": 1_700_000_000 + it,
        "trial_id": f"abcde_{i:05d}",
        "done": False,
        "config": _config(i),
    }


async def _atune(
    trials: int, results: int, directory: str, coalesce: bool = True
) -> tuple[float, int]:
    """Seconds the journal spends per result for ``trials`` running trials, and how many
    result records it wrote (consecutive results of a trial share one; with
    ``coalesce=False`` each result is a record of its own: the worst case)."""
    from atune._engine import events as E
    from atune._engine import journal as J
    from atune._engine.bus import EventBus
    from atune._engine.journal import JournalSink, JournalState
    from atune._engine.state import TrialTable
    from atune._trial import Trial
    from atune.config import CheckpointConfig

    table = TrialTable("abcde")
    bus = EventBus()
    state = JournalState(directory, CheckpointConfig(), prefix="abcde")
    sink = JournalSink(bus, state, table, lambda: (None, [], []), set(), print)
    spent = 0.0
    on_event, periodic = sink._on_event, sink._periodic

    async def timed_event(event: Any) -> None:
        nonlocal spent
        t = time.perf_counter()
        if not coalesce and type(event) is E.ResultRecorded:
            sink._received += 1
            sink._put([J._RES, event.trial_id, 1, event.result])
        else:
            await on_event(event)
        spent += time.perf_counter() - t

    async def timed_periodic() -> None:
        nonlocal spent
        t = time.perf_counter()
        await periodic()
        spent += time.perf_counter() - t

    records = 0
    put = sink._put

    def counted_put(rec: list[Any]) -> None:
        nonlocal records
        records += rec[0] == J._RES
        put(rec)

    sink._put = counted_put  # type: ignore[method-assign]
    sink._on_event = timed_event  # type: ignore[method-assign]
    sink._periodic = timed_periodic  # type: ignore[method-assign]
    await sink.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        for i in range(trials):
            index, trial_id = table.new_id()
            trial = Trial(trial_id, "train", _config(i), experiment_tag=str(index))
            trial.local_path = os.path.join(directory, trial_id)
            table.add(trial)
            await bus.publish(E.TrialAdded(trial_id=trial_id, config=trial.config))
            await bus.publish(E.TrialStarted(trial_id=trial_id, resources={"CPU": 1.0}))
        await sink.recorded.wait_for(2 * trials)  # the trials are journaled
        spent = 0.0  # the results only
        for r in range(results):
            i = r % trials
            await bus.publish(
                E.ResultRecorded(trial_id=f"abcde_{i:05d}", result=_result(i, r // trials + 1))
            )
            if r % 256 == 0:
                await anyio.sleep(0)  # a driver yields between batches
        await bus.publish(E.ExperimentEnded())
        bus.close()
    return spent / results, records


def _ray_tune(trials: int, saves: int, directory: str) -> float:
    """Seconds of one Ray Tune experiment-state save after one result, ``trials`` trials."""
    from ray.tune.experiment import Trial
    from ray.tune.utils.serialization import TuneFunctionEncoder

    population = [
        Trial("train", config=_config(i), trial_id=f"abcde_{i:05d}", stub=True)
        for i in range(trials)
    ]
    metadata = {t.trial_id: t.get_json_state() for t in population}
    path = os.path.join(directory, "experiment_state-2026-01-01_00-00-00.json")
    start = time.perf_counter()
    for s in range(saves):
        trial = population[s % trials]
        trial.run_metadata.last_result = _result(s % trials, s // trials + 1)
        trial.invalidate_json_state()
        metadata[trial.trial_id] = trial.get_json_state()  # _get_trial_checkpoints
        state = {
            "trial_data": list(metadata.values()),
            "runner_data": {"_start_time": 0.0, "_session_str": "2026-01-01_00-00-00"},
            "stats": {"start_time": 0.0},
        }
        with open(path, "w") as f:
            json.dump(state, f, cls=TuneFunctionEncoder)
    return (time.perf_counter() - start) / saves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, nargs="*", default=[100, 1_000, 10_000])
    parser.add_argument("--results", type=int, default=200_000, help="results fed to atune")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else args.trials
    results = 2_000 if args.quick else args.results
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{'trials':>8} | {'atune per result':>17} | {'records/result':>14} | "
        f"{'one record each':>15} | {'Ray Tune per save':>18} | ratio"
    )
    for n in sizes:
        d = tempfile.mkdtemp(prefix="atune_state_")
        try:
            count = max(results, 2 * n)
            a, records = anyio.run(_atune, n, count, d)
            shutil.rmtree(d, ignore_errors=True)
            worst, _ = anyio.run(_atune, n, count, d, False)
            saves = 20 if args.quick else max(20, min(500, 2_000_000 // n))
            r = _ray_tune(n, saves, d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        print(
            f"{n:>8,} | {a * 1e6:>14.2f} us | {records / count:>14.2f} | "
            f"{worst * 1e6:>12.2f} us | {r * 1e3:>15.3f} ms | {r / worst:,.0f}x"
        )


if __name__ == "__main__":
    main()
