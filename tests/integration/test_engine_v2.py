"""The engine's seams, driven as the live handle and the REST server will drive them.

The commands, the event bus as a subscriber sees it, the failure policy for plugins,
and what must stay off the event loop. Trials run on the in-process executor: these
are properties of the controller, the same on any executor (see tests/contract).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import time

import anyio
import pytest

import atune as tune
from atune._engine import commands as C
from atune._engine.bus import Policy
from atune._engine.controller import Controller
from atune.callbacks import Callback, LoggerCallback
from atune.errors import PluginError
from atune.executors import LocalExecutor
from atune.schedulers import FIFOScheduler
from atune.search import Searcher


def forever(config):
    i = 0
    while True:
        i += 1
        tune.report({"score": config["x"] * i})
        time.sleep(0.005)


def _lines(path: str) -> list[dict]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def make_controller(trainable, storage, *, param_space=None, cpus=2, **tune_config) -> Controller:
    tuner = tune.Tuner(
        trainable,
        param_space=param_space if param_space is not None else {"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(executor=LocalExecutor({"CPU": cpus}), **tune_config),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    )
    return Controller(tuner._experiment_spec("exp"), tuner._executor)


async def wait_for(predicate, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


@pytest.fixture
def storage(tmp_path) -> str:
    return str(tmp_path / "results")


# ----------------------------------------------------------------- commands
async def test_stop_trial_ends_it_at_a_result_and_records_nothing_after(storage):
    ctl = make_controller(forever, storage, cpus=2)
    ctl.spec.stopper = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctl.run)
        await wait_for(lambda: len(ctl.trials) == 2 and ctl.trials[0].num_results >= 5)
        first, second = ctl.trials
        await ctl.commands.send(C.StopTrial(first.trial_id))
        await wait_for(lambda: first.status == "TERMINATED")
        stopped_at = first.num_results
        await anyio.sleep(0.2)
        assert first.num_results == stopped_at  # nothing recorded after the stop
        assert second.status == "RUNNING"
        await ctl.commands.send(C.StopExperiment())
    assert second.status == "TERMINATED"
    assert len(_lines(first.local_path)) == stopped_at
    assert [r["score"] for r in _lines(first.local_path)] == list(range(1, stopped_at + 1))


async def test_a_paused_trial_stays_paused_until_resumed(storage):
    ctl = make_controller(forever, storage, cpus=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctl.run)
        await wait_for(lambda: len(ctl.trials) == 2 and ctl.trials[0].num_results >= 3)
        first, second = ctl.trials
        await ctl.commands.send(C.PauseTrial(first.trial_id))
        await wait_for(lambda: first.status == "PAUSED")
        # A free CPU, FIFO picks PAUSED trials: yet the command's pause holds.
        held_at = first.num_results
        await anyio.sleep(0.3)
        assert first.status == "PAUSED" and first.num_results == held_at
        assert not ctl.has_resources_for_trial(first)
        await ctl.commands.send(C.ResumeTrial(first.trial_id))
        await wait_for(lambda: first.status == "RUNNING" and first.num_results > held_at)
        await ctl.commands.send(C.StopExperiment())
    assert first.status == second.status == "TERMINATED"


async def test_add_trial_runs_a_config_the_searcher_did_not_suggest(storage):
    told: list[str] = []

    class Recording(Searcher):
        def __init__(self):
            super().__init__(metric="score", mode="max")
            self.n = 0

        def suggest(self, trial_id):
            if self.n >= 1:
                return None if self.n < 2 else Searcher.FINISHED
            self.n += 1
            return {"x": 1}

        def on_trial_complete(self, trial_id, result=None, error=False):
            told.append(trial_id)

    ctl = make_controller(
        forever,
        storage,
        param_space={},
        search_alg=Recording(),
        metric="score",
        mode="max",
    )
    ctl.spec.stopper = tune.stopper.MaximumIterationStopper(20)
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctl.run)
        await wait_for(lambda: len(ctl.trials) == 1 and ctl.trials[0].num_results >= 1)
        await ctl.commands.send(C.AddTrial({"x": 99}))
        await wait_for(lambda: len(ctl.trials) == 2)
        added = ctl.trials[1]
        await wait_for(lambda: added.is_finished)
        ctl.spec.searcher.searcher.n = 2  # now the searcher is done
        ctl.changed.set()
    assert added.config == {"x": 99}
    assert added.trial_id.endswith("_00001")
    assert added.last_result["score"] == 99 * 20
    assert told == [ctl.trials[0].trial_id]  # the searcher hears of its own trials only


async def test_commands_for_unknown_trials_are_ignored_with_a_warning(storage, caplog):
    ctl = make_controller(forever, storage)
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctl.run)
        await wait_for(lambda: len(ctl.trials) == 2)
        with caplog.at_level(logging.WARNING, logger="atune"):
            await ctl.commands.send(C.StopTrial("nope_00009"))
            await ctl.commands.send(C.StopExperiment())
    expected = "Ignored StopTrial(trial_id='nope_00009'): no trial 'nope_00009' in this experiment"
    assert expected in caplog.text
    with pytest.raises(anyio.ClosedResourceError):
        await ctl.commands.send(C.StopExperiment())
    with pytest.raises(TypeError, match="expected an atune command"):
        ctl.commands.send_nowait("stop")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the bus
def five(config):
    for i in range(5):
        tune.report({"score": i})


async def test_a_subscriber_sees_each_trials_life_in_order(storage):
    ctl = make_controller(five, storage)
    sub = ctl.bus.subscribe("test", maxsize=10_000, policy=Policy.BACKPRESSURE)
    await ctl.run()
    kinds: dict[str, list[str]] = {}
    events = []
    while True:
        try:
            events.append(sub.receive_nowait())
        except anyio.EndOfStream:
            break
    assert events[-1].kind == "experiment_ended"
    for event in events[:-1]:
        kinds.setdefault(event.trial_id, []).append(event.kind)
    assert len(kinds) == 2
    for seen in kinds.values():
        assert seen == [
            "trial_added",
            "trial_started",
            "trial_worker_started",
            *["result"] * 5,
            "trial_completed",
            "resources_released",
        ]


async def test_a_subscriber_that_never_reads_does_not_stall_the_experiment(storage):
    ctl = make_controller(five, storage, param_space={"x": tune.grid_search(list(range(6)))})
    sub = ctl.bus.subscribe("idle view", maxsize=4, policy=Policy.DROP_RESULTS)
    with anyio.fail_after(30):
        await ctl.run()
    assert all(t.num_results == 5 for t in ctl.trials)
    assert sub.dropped >= 30 - 4


# --------------------------------------------------------- plugin failures
class BadScheduler(FIFOScheduler):
    async def on_trial_result(self, tune_controller, trial, result):
        if result["training_iteration"] == 3:
            raise ValueError("boom in the scheduler")
        return FIFOScheduler.CONTINUE


class BadCallback(Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result["training_iteration"] == 3:
            raise KeyError("boom in the callback")


class BadLogger(LoggerCallback):
    def log_trial_result(self, iteration, trial, result):
        if result["training_iteration"] == 3:
            raise RuntimeError("boom in the logger")


class BadStopper(tune.stopper.Stopper):
    def __call__(self, trial_id, result):
        if result["training_iteration"] == 3:
            raise ZeroDivisionError("boom in the stopper")
        return False

    def stop_all(self):
        return False


@pytest.mark.parametrize(
    ("where", "kind", "hook", "cause"),
    [
        ("scheduler", "scheduler", "on_trial_result", ValueError),
        ("callback", "callback", "on_trial_result", KeyError),
        ("logger", "logger", "on_trial_result", RuntimeError),
        ("stopper", "stopper", "__call__", ZeroDivisionError),
    ],
)
async def test_a_plugin_that_raises_ends_the_experiment_with_its_name_and_hook(
    storage, where, kind, hook, cause
):
    tune_config: dict = {}
    run_config: dict = {}
    if where == "scheduler":
        tune_config["scheduler"] = BadScheduler()
    elif where == "callback":
        run_config["callbacks"] = [BadCallback()]
    elif where == "logger":
        run_config["callbacks"] = [BadLogger()]
    else:
        run_config["stop"] = BadStopper()
    tuner = tune.Tuner(
        forever,
        param_space={"x": 1},
        tune_config=tune.TuneConfig(executor=LocalExecutor({"CPU": 1}), **tune_config),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, **run_config),
    )
    with anyio.fail_after(30), pytest.raises(PluginError) as info:
        await tuner.fit()
    err = info.value
    assert f"The {kind} Bad" in str(err) and f".{hook}()" in str(err)
    assert "The experiment stopped" in str(err)
    assert isinstance(err.__cause__, cause) and err.hook == hook
    (trial,) = tuner.get_results()
    # What was recorded before the failure stays recorded.
    assert [r["training_iteration"] for r in _lines(trial.path)][:2] == [1, 2]


# ------------------------------------------------------ off the event loop
class SlowToPickle:
    def __reduce__(self):
        time.sleep(0.6)
        return (SlowToPickle, ())


class HeavySearcher(Searcher):
    def __init__(self):
        super().__init__(metric="score", mode="max")
        self.model = SlowToPickle()
        self.n = 0

    def suggest(self, trial_id):
        if self.n == 2:
            return Searcher.FINISHED
        self.n += 1
        return {"x": self.n}

    def on_trial_complete(self, trial_id, result=None, error=False):
        pass

    def get_state(self):
        return {"model": self.model, "n": self.n}


class SlowTerminal:
    """A file whose writes block, like a terminal nobody reads."""

    def __init__(self):
        self.text = ""

    def write(self, text):
        time.sleep(0.4)
        self.text += text

    def flush(self):
        pass


async def test_searcher_saves_and_progress_output_never_block_the_loop(storage):
    from atune.callbacks.progress import CLIReporter

    reporter = CLIReporter(max_report_frequency=0, file=SlowTerminal())  # type: ignore[arg-type]
    tuner = tune.Tuner(
        five,
        tune_config=tune.TuneConfig(
            executor=LocalExecutor({"CPU": 2}),
            search_alg=HeavySearcher(),
            metric="score",
            mode="max",
            num_samples=2,
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=1, progress_reporter=reporter),
    )
    gaps: list[float] = []

    async def ticker():
        last = time.monotonic()
        while True:
            await anyio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        grid = await tuner.fit()
        tg.cancel_scope.cancel()
    assert len(grid) == 2
    assert "== Status ==" in reporter._file.text
    state = os.path.join(grid.experiment_path, "searcher-state.pkl")
    with open(state, "rb") as f:
        assert pickle.load(f)["searcher"]["n"] == 2
    assert max(gaps) < 0.3, f"the event loop was blocked for {max(gaps):.2f} s"


# ------------------------------------------------------- the loggers' bound
def quick_300(config):
    start = time.monotonic()
    for i in range(300):
        tune.report({"i": i, "elapsed": time.monotonic() - start})


class SlowDisk(LoggerCallback):
    """A logger whose every flush takes ``delay`` s, or waits for ``gate`` when given."""

    def __init__(self, delay: float = 0.0, gate: anyio.Event | None = None):
        self.delay, self.gate = delay, gate
        self.logged = 0
        self.flushes = 0

    def log_trial_result(self, iteration, trial, result):
        self.logged += 1

    async def flush(self):
        self.flushes += 1
        if self.gate is not None:
            await self.gate.wait()
        await anyio.sleep(self.delay)


async def test_a_slow_logger_costs_the_trials_nothing_within_its_bound(storage):
    slow = SlowDisk(delay=1.0)
    tuner = tune.Tuner(
        quick_300,
        tune_config=tune.TuneConfig(executor=LocalExecutor({"CPU": 1})),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[slow]),
    )
    (result,) = await tuner.fit()
    # The trainable ran at its own pace, though each flush took a second...
    assert result.metrics["elapsed"] < 0.9
    assert slow.flushes >= 1
    # ...and the logger still got every result before fit() returned.
    assert slow.logged == 300


async def test_loggers_that_fall_a_bound_behind_hold_back_recording(storage, monkeypatch):
    import atune._engine.sinks as sinks

    monkeypatch.setattr(sinks, "LOGGER_QUEUE_SIZE", 16)
    gate = anyio.Event()
    blocked = SlowDisk(gate=gate)
    ctl = make_controller(quick_300, storage, param_space={}, cpus=1)
    ctl = Controller(dataclasses.replace(ctl.spec, callbacks=[blocked]), LocalExecutor({"CPU": 1}))
    async with anyio.create_task_group() as tg:
        tg.start_soon(ctl.run)
        await wait_for(lambda: blocked.flushes >= 1)  # the logger is stuck in a flush
        await anyio.sleep(0.5)
        (trial,) = ctl.trials
        held = trial.num_results
        assert held <= 2 * 16 + 2, held  # its queue, and what it took before it stuck
        await anyio.sleep(0.3)
        assert trial.num_results == held  # recording waits for the logger
        gate.set()
    assert trial.num_results == 300 and blocked.logged == 300
