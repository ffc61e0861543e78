"""What only the local executor does: no Ray, one shared process, and its stated limits."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

import atune as tune
from atune._executor import _local
from atune.executors import LocalExecutor
from atune.schedulers.async_hyperband import ASHAScheduler

SCRIPT = textwrap.dedent(
    """
    import sys

    import atune as tune


    def train(config):
        for i in range(1, 11):
            tune.report({"score": config["q"] * i})


    async def train_async(config):
        for i in range(1, 11):
            await tune.report({"score": config["q"] * i})


    class Steps(tune.Trainable):
        def setup(self, config):
            self.i = 0

        def step(self):
            self.i += 1
            return {"score": self.config["q"] * self.i, "done": self.i >= 10}

        def save_checkpoint(self, checkpoint_dir):
            return {"i": self.i}

        def load_checkpoint(self, state):
            self.i = state["i"]


    for trainable in (train, train_async, Steps):
        grid = tune.Tuner(
            trainable,
            param_space={"q": tune.grid_search([1, 2, 3, 4])},
            tune_config=tune.TuneConfig(
                executor="local",
                metric="score",
                mode="max",
                scheduler=tune.schedulers.ASHAScheduler(max_t=10, grace_period=2),
            ),
            run_config=tune.RunConfig(
                verbose=0, checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=3)
            ),
        ).fit_sync()
        assert grid.num_errors == 0, grid.errors
        assert grid.get_best_result().config["q"] == 4
    print("ray imported:", "ray" in sys.modules)
    """
)


def test_a_local_experiment_never_imports_ray(tmp_path):
    env = dict(os.environ, ATUNE_RESULTS_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "ray imported: False" in out.stdout


def test_default_resources_are_the_cpus_of_this_machine_and_no_gpu():
    assert LocalExecutor().total_resources() == {"CPU": float(os.cpu_count() or 1), "GPU": 0.0}
    assert LocalExecutor({"gpu": 2, "special": 1}).total_resources() == {
        "CPU": float(os.cpu_count() or 1),
        "GPU": 2.0,
        "special": 1.0,
    }


def run(trainable, storage, **run_kwargs):
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(executor="local"),
        run_config=tune.RunConfig(storage_path=storage, verbose=0, **run_kwargs),
    )


def prints_where_it_is(config):
    print("hello from the trial")
    tune.report({"cwd": os.getcwd()})


async def test_process_wide_settings_are_ignored_with_one_warning(
    tmp_path, monkeypatch, caplog, capfd
):
    monkeypatch.setattr(_local, "_warned", set())
    monkeypatch.setenv("ATUNE_CHDIR_TO_TRIAL_DIR", "1")
    storage = str(tmp_path / "results")
    with caplog.at_level(logging.WARNING, logger="atune"):
        grid = await run(prints_where_it_is, storage, log_to_file=True).fit()
        await run(prints_where_it_is, storage, log_to_file=True).fit()
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("does not change the working directory" in w for w in warnings) == 1
    assert sum("log_to_file=...) is ignored" in w for w in warnings) == 1
    # The trial ran in this process's directory, and printed to this process's stdout.
    assert grid[0].metrics["cwd"] == os.getcwd()
    assert "hello from the trial" in capfd.readouterr().out
    assert not os.path.exists(os.path.join(grid[0].path, "stdout"))


async def test_nothing_needs_to_be_picklable(tmp_path):
    lock = threading.Lock()

    def train(config):
        with lock:  # a Ray worker could not receive this function
            tune.report({"x": 1})

    grid = await run(train, str(tmp_path)).fit()
    assert grid[0].metrics["x"] == 1


class Unpicklable(Exception):
    def __init__(self, a):
        super().__init__(a)
        self.lock = threading.Lock()


async def test_the_trainables_exception_arrives_as_itself(tmp_path):
    def train(config):
        raise Unpicklable("in-process")

    grid = await run(train, str(tmp_path)).fit()
    assert isinstance(grid[0].error, Unpicklable)  # on Ray: a TrialError stand-in


async def test_a_trainable_that_never_reports_again_is_left_running_with_a_warning(
    tmp_path, caplog
):
    release = threading.Event()
    threads = []

    def train(config):
        threads.append(threading.current_thread())
        tune.report({"x": 1})
        release.wait()  # never reports again until the test lets it go

    tuner = tune.Tuner(
        train,
        tune_config=tune.TuneConfig(executor="local", time_budget_s=0.5),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    with caplog.at_level(logging.WARNING, logger="atune"):
        grid = await tuner.fit()
    assert grid[0].metrics["x"] == 1
    assert any("did not stop within" in r.getMessage() for r in caplog.records)
    (thread,) = threads
    assert thread.is_alive()  # a thread cannot be killed
    release.set()
    thread.join(5)
    assert not thread.is_alive()


async def test_asha_on_the_default_local_executor(tmp_path):
    # The local executor's own default resources (this machine's CPUs).
    def train(config):
        for i in range(1, 9):
            tune.report({"score": config["q"] * i})

    sched = ASHAScheduler(max_t=8, grace_period=1, reduction_factor=2, metric="score", mode="max")
    grid = await tune.Tuner(
        train,
        param_space={"q": tune.grid_search([4, 3, 2, 1])},
        tune_config=tune.TuneConfig(executor="local", scheduler=sched, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    iters = {r.config["q"]: r.metrics["training_iteration"] for r in grid}
    # One trial at a time, best first: q=4 runs to the end, q=1 is below every cutoff.
    assert iters[4] == 8 and iters[1] == 1
