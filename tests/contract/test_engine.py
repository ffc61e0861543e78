"""What Tuner.fit() does, whichever executor runs the trials."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import anyio
import numpy as np
import pytest

import atune as tune
from atune.errors import ConfigError
from atune.stopper import MaximumIterationStopper


def _lines(path: str) -> list[dict]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def count_to_five(config):
    for i in range(5):
        tune.report({"score": config["x"] * i})


async def test_function_trainable_records_every_result_with_auto_fields(tuner, backend):
    grid = await tuner(count_to_five, param_space={"x": tune.grid_search([1, 2])}).fit()
    assert len(grid) == 2
    assert grid.num_terminated == 2
    for result in grid:
        lines = _lines(result.path)
        assert [r["training_iteration"] for r in lines] == [1, 2, 3, 4, 5]
        assert [r["score"] for r in lines] == [result.config["x"] * i for i in range(5)]
        last = result.metrics
        for key in (
            "training_iteration",
            "time_this_iter_s",
            "time_total_s",
            "timestamp",
            "date",
            "done",
            "trial_id",
            "experiment_id",
            "pid",
            "hostname",
            "node_ip",
            "iterations_since_restore",
            "time_since_restore",
            "config",
        ):
            assert key in last, key
        assert last["done"] is True
        # A Ray worker process, or this very process.
        assert backend.in_driver_process(last["pid"]) is backend.local
        assert lines[-1]["time_total_s"] >= lines[0]["time_total_s"]


async def test_grid_times_num_samples_and_sample_from(tuner):
    space = {
        "a": tune.grid_search([1, 2, 3]),
        "b": tune.sample_from(lambda spec: spec.config.a * 10),
        "nested": {"c": tune.choice(["x", "y"])},
    }
    grid = await tuner(
        lambda config: tune.report({"b": config["b"]}),
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=2),
    ).fit()
    assert len(grid) == 6
    assert sorted(r.config["a"] for r in grid) == [1, 1, 2, 2, 3, 3]
    assert all(r.metrics["b"] == r.config["a"] * 10 for r in grid)
    assert all(r.config["nested"]["c"] in ("x", "y") for r in grid)
    df = grid.get_dataframe()
    assert {"config/a", "config/b", "config/nested/c"} <= set(df.columns)


def report_forever(config):
    i = 0
    while True:
        i += 1
        tune.report({"i": i})


async def test_stop_dict_gives_exactly_that_many_results(tuner):
    grid = await tuner(
        report_forever,
        tune_config=tune.TuneConfig(num_samples=3),
        stop={"training_iteration": 4},
    ).fit()
    for result in grid:
        lines = _lines(result.path)
        assert [r["training_iteration"] for r in lines] == [1, 2, 3, 4]
        assert lines[-1]["done"] is True
        assert result.metrics["training_iteration"] == 4


async def test_stop_function_and_stopper_objects(tuner):
    grid = await tuner(report_forever, stop=lambda tid, r: r["i"] >= 3).fit()
    assert grid[0].metrics["i"] == 3
    grid = await tuner(report_forever, stop=MaximumIterationStopper(2)).fit()
    assert len(_lines(grid[0].path)) == 2


def returns_final(config):
    tune.report({"step": 1})
    return {"step": 2, "final": True}


async def test_returned_dict_is_the_final_result(tuner):
    grid = await tuner(returns_final).fit()
    lines = _lines(grid[0].path)
    assert [r["step"] for r in lines] == [1, 2]
    assert lines[-1]["done"] is True and lines[0]["done"] is False
    assert grid[0].metrics["final"] is True


async def async_trainable(config):
    for i in range(4):
        await anyio.sleep(0)
        await tune.report({"v": i + config["offset"]})


async def test_async_trainable_is_first_class(tuner):
    grid = await tuner(async_trainable, param_space={"offset": 10}).fit()
    assert [r["v"] for r in _lines(grid[0].path)] == [10, 11, 12, 13]


async def async_forever(config):
    i = 0
    while True:
        i += 1
        await tune.report({"i": i})


async def test_async_trainable_is_stopped_at_the_stop_criterion(tuner):
    grid = await tuner(
        async_forever, tune_config=tune.TuneConfig(num_samples=2), stop={"training_iteration": 7}
    ).fit()
    assert [r.metrics["i"] for r in grid] == [7, 7]
    assert all(r.error is None for r in grid)


def legacy(config, reporter):
    for i in range(3):
        reporter(mean_loss=1.0 / (i + 1), timesteps_this_iter=10)


async def test_legacy_reporter_function(tuner):
    grid = await tuner(legacy).fit()
    lines = _lines(grid[0].path)
    assert [r["mean_loss"] for r in lines] == [1.0, 0.5, 1.0 / 3]
    assert lines[-1]["timesteps_total"] == 30


def reports_its_context(config):
    for _ in range(20):
        tune.report({"seen": tune.get_context().get_trial_id()})


async def async_reports_its_context(config):
    for _ in range(20):
        await anyio.sleep(0)
        await tune.report({"seen": tune.get_context().get_trial_id()})


@pytest.mark.parametrize("trainable", [reports_its_context, async_reports_its_context])
async def test_concurrent_trials_each_see_their_own_session(tuner, trainable):
    grid = await tuner(trainable, tune_config=tune.TuneConfig(num_samples=4)).fit()
    assert len({r.metrics["trial_id"] for r in grid}) == 4
    for result in grid:
        assert {r["seen"] for r in _lines(result.path)} == {result.metrics["trial_id"]}


# ---------------------------------------------------------------- class trainables
class Counter(tune.Trainable):
    def setup(self, config, offset=0):
        self.value = config["start"] + offset

    def step(self):
        self.value += 1
        return {"value": self.value, "done": self.value >= self.config["start"] + 6}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "value.txt"), "w") as f:
            f.write(str(self.value))

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "value.txt")) as f:
            self.value = int(f.read())


async def test_class_trainable_steps_and_checkpoints(tuner):
    grid = await tuner(
        Counter,
        param_space={"start": 100},
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2, num_to_keep=2),
    ).fit()
    result = grid[0]
    assert [r["value"] for r in _lines(result.path)] == list(range(101, 107))
    assert result.checkpoint is not None
    assert os.path.basename(result.checkpoint.path) == "checkpoint_000006"
    with open(os.path.join(result.checkpoint.path, "value.txt")) as f:
        assert f.read() == "106"
    kept = sorted(d for d in os.listdir(result.path) if d.startswith("checkpoint_"))
    assert kept == ["checkpoint_000004", "checkpoint_000006"]
    assert [os.path.basename(c.path) for c, _ in result.best_checkpoints] == kept


async def test_class_trainable_checkpoint_at_end_when_stopped(tuner):
    grid = await tuner(
        Counter,
        param_space={"start": 0},
        stop={"training_iteration": 3},
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
    ).fit()
    ckpt = grid[0].checkpoint
    assert ckpt is not None
    with open(os.path.join(ckpt.path, "value.txt")) as f:
        assert f.read() == "3"


class Reusable(tune.Trainable):
    setups = 0

    def setup(self, config):
        Reusable.setups += 1
        self.setups_here = Reusable.setups
        self.resets = 0

    def step(self):
        return {
            "pid": os.getpid(),
            "obj": id(self),
            "setups": self.setups_here,
            "resets": self.resets,
            "x": self.config["x"],
            "done": True,
        }

    def reset_config(self, new_config):
        self.resets += 1
        return True


async def test_reuse_actors_resets_the_same_trainable(tuner):
    grid = await tuner(
        Reusable,
        param_space={"x": tune.grid_search([1, 2, 3])},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=1),
    ).fit()
    metrics = sorted((r.metrics for r in grid), key=lambda m: m["x"])
    assert [m["x"] for m in metrics] == [1, 2, 3]
    assert len({m["pid"] for m in metrics}) == 1
    assert len({m["obj"] for m in metrics}) == 1
    assert [m["resets"] for m in metrics] == [0, 1, 2]
    # One setup() in all; the counter is per process, and the local executor's
    # process (this one) may have run Reusable before.
    assert len({m["setups"] for m in metrics}) == 1


# ------------------------------------------------------------------------ failures
def raises_after_two(config):
    tune.report({"a": 1})
    tune.report({"a": 2})
    raise ValueError(f"bad value {config['x']}")


async def test_trial_that_raises_is_an_error_result_with_the_users_exception(tuner):
    grid = await tuner(raises_after_two, param_space={"x": tune.grid_search([1, 2])}).fit()
    assert grid.num_errors == 2
    assert all(isinstance(e, ValueError) for e in grid.errors)
    result = grid[0]
    assert isinstance(result.error, ValueError)
    assert str(result.error) == "bad value 1"
    assert [r["a"] for r in _lines(result.path)] == [1, 2]  # recorded results stay
    with open(os.path.join(result.path, "error.txt")) as f:
        assert "ValueError: bad value 1" in f.read()


def fails_once_then_resumes(config):
    import tempfile

    marker = os.path.join(config["marker_dir"], "failed_once")
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with open(os.path.join(ckpt.path, "i.txt")) as f:
            start = int(f.read())
    for i in range(start + 1, 6):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "i.txt"), "w") as f:
            f.write(str(i))
        tune.report(
            {"i": i, "restored": ckpt is not None}, checkpoint=tune.Checkpoint.from_directory(d)
        )
        if i == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("transient failure")


async def test_max_failures_retries_from_the_last_checkpoint(tuner, tmp_path):
    grid = await tuner(
        fails_once_then_resumes,
        param_space={"marker_dir": str(tmp_path)},
        failure_config=tune.FailureConfig(max_failures=1),
    ).fit()
    result = grid[0]
    assert result.error is None
    lines = _lines(result.path)
    assert [r["i"] for r in lines] == [1, 2, 3, 4, 5]
    assert [r["restored"] for r in lines] == [False, False, False, True, True]
    assert lines[3]["training_iteration"] == 4
    assert lines[3]["iterations_since_restore"] == 1


async def async_fails_once_then_resumes(config):
    import tempfile

    marker = os.path.join(config["marker_dir"], "failed_once")
    ckpt = tune.get_checkpoint()
    start = 0
    if ckpt is not None:
        with open(os.path.join(ckpt.path, "i.txt")) as f:
            start = int(f.read())
    for i in range(start + 1, 6):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "i.txt"), "w") as f:
                f.write(str(i))
            # Copied when awaited, so the directory may go away right after.
            await tune.report({"i": i}, checkpoint=tune.Checkpoint.from_directory(d))
        if i == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("transient failure")


async def test_async_trainable_retries_from_its_reported_checkpoint(tuner, tmp_path):
    grid = await tuner(
        async_fails_once_then_resumes,
        param_space={"marker_dir": str(tmp_path)},
        failure_config=tune.FailureConfig(max_failures=1),
    ).fit()
    assert grid[0].error is None
    assert [r["i"] for r in _lines(grid[0].path)] == [1, 2, 3, 4, 5]
    assert os.path.basename(grid[0].checkpoint.path) == "checkpoint_000005"


def fails_three_times(config):
    log = os.path.join(config["marker_dir"], "starts.txt")
    with open(log, "a") as f:
        f.write(f"{config['x']}\n")
    if config["x"] == 0:
        with open(log) as f:
            if sum(line.strip() == "0" for line in f) <= 3:
                raise RuntimeError("failing again")
    tune.report({"x": config["x"]})


async def test_a_retried_trial_queues_behind_the_trials_waiting_to_start(tuner, tmp_path):
    # One trial at a time (each takes all 4 CPUs): with max_failures=-1, trial 0 fails
    # three times, and each retry waits until the trials queued before it started.
    grid = await tuner(
        tune.with_resources(fails_three_times, {"cpu": 4}),
        param_space={"x": tune.grid_search([0, 1, 2]), "marker_dir": str(tmp_path)},
        failure_config=tune.FailureConfig(max_failures=-1),
    ).fit()
    starts = (tmp_path / "starts.txt").read_text().split()
    assert starts[:3] == ["0", "1", "2"], starts
    assert starts[3:] == ["0", "0", "0"], starts
    assert [r.config["x"] for r in grid] == [0, 1, 2]  # creation order
    assert all(r.error is None for r in grid)
    assert [r.metrics["x"] for r in grid] == [0, 1, 2]


# ---------------------------------------------------------- parameters, resources
def uses_data(config, data=None):
    tune.report({"total": float(data.sum())})


async def test_with_parameters_ships_large_objects(tuner):
    data = np.ones(1_000_000)
    grid = await tuner(
        tune.with_parameters(uses_data, data=data), tune_config=tune.TuneConfig(num_samples=2)
    ).fit()
    assert [r.metrics["total"] for r in grid] == [1e6, 1e6]


def overlap_probe(config):
    import time

    start = time.time()
    time.sleep(0.3)
    tune.report({"start": start, "end": time.time(), "res": tune.get_trial_resources()})


def _max_overlap(grid) -> int:
    events = []
    for r in grid:
        events += [(r.metrics["start"], 1), (r.metrics["end"], -1)]
    live = peak = 0
    for _, delta in sorted(events):
        live += delta
        peak = max(peak, live)
    return peak


async def test_resources_per_trial_bound_concurrency(tuner):
    grid = await tuner(
        tune.with_resources(overlap_probe, {"cpu": 2}), tune_config=tune.TuneConfig(num_samples=4)
    ).fit()
    assert grid[0].metrics["res"]["CPU"] == 2.0
    assert _max_overlap(grid) <= 2


async def test_max_concurrent_trials(tuner):
    grid = await tuner(
        overlap_probe, tune_config=tune.TuneConfig(num_samples=3, max_concurrent_trials=1)
    ).fit()
    assert _max_overlap(grid) == 1


async def test_with_resources_callable_of_config(tuner):
    grid = await tuner(
        tune.with_resources(overlap_probe, lambda spec: {"cpu": spec.config.cpus}),
        param_space={"cpus": 0.5},
    ).fit()
    assert grid[0].metrics["res"] == {"CPU": 0.5}


async def test_custom_resources_bound_concurrency(tuner):
    grid = await tuner(
        tune.with_resources(overlap_probe, {"cpu": 0, "special": 1}),
        tune_config=tune.TuneConfig(num_samples=3),
    ).fit()
    assert grid[0].metrics["res"]["special"] == 1.0
    assert _max_overlap(grid) == 1


async def test_trial_that_can_never_fit_is_a_clear_error(tuner, backend):
    with pytest.raises(ConfigError, match="can never start") as info:
        await tuner(tune.with_resources(overlap_probe, {"cpu": 64})).fit()
    # The fix is said in the executor's own terms.
    if backend.local:
        assert "LocalExecutor({" in str(info.value) and "ray.init" not in str(info.value)
    else:
        assert "ray.init(num_cpus=" in str(info.value)


def context_probe(config):
    ctx = tune.get_context()
    tune.report({"trial_id": ctx.get_trial_id(), "dir": ctx.get_trial_dir(), "cwd": os.getcwd()})


async def test_context_names_the_trial_and_its_directory(tuner, backend):
    grid = await tuner(
        context_probe,
        tune_config=tune.TuneConfig(
            trial_name_creator=lambda t: f"probe_{t.trial_id}",
            trial_dirname_creator=lambda t: f"dir_{t.trial_id}",
        ),
    ).fit()
    result = grid[0]
    assert result.metrics["dir"] == result.path
    assert os.path.basename(result.path) == f"dir_{result.metrics['trial_id']}"
    # A Ray worker runs in the trial directory; trials in this process share its cwd.
    expected_cwd = os.getcwd() if backend.local else result.path
    assert os.path.realpath(result.metrics["cwd"]) == os.path.realpath(expected_cwd)


# --------------------------------------------------------- ending the experiment
async def test_time_budget_ends_an_endless_experiment(tuner):
    grid = await tuner(
        report_forever, tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=2)
    ).fit()
    assert len(grid) >= 1
    assert all(r.metrics.get("i", 0) >= 1 for r in grid if r.metrics)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


#: The threads and tasks that ran trainables of the local executor (in this process).
RUNNERS: list[threading.Thread | asyncio.Task] = []


def slow(config):
    import time

    RUNNERS.append(threading.current_thread())
    with open(os.path.join(config["dir"], "runners"), "a") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        time.sleep(0.05)
        tune.report({"alive": 1})


async def slow_async(config):
    task = asyncio.current_task()
    assert task is not None
    RUNNERS.append(task)
    with open(os.path.join(config["dir"], "runners"), "a") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        await asyncio.sleep(0.05)
        await tune.report({"alive": 1})


@pytest.mark.parametrize("trainable", [slow, slow_async])
async def test_cancelling_fit_stops_every_trial(tuner, backend, tmp_path, trainable):
    RUNNERS.clear()
    started = anyio.Event()

    class Watch(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if sum(1 for t in trials if t.last_result) == 2:
                started.set()

    fit = tuner(
        trainable,
        param_space={"dir": str(tmp_path)},
        tune_config=tune.TuneConfig(num_samples=2),
        callbacks=[Watch()],
    ).fit
    async with anyio.create_task_group() as tg:
        tg.start_soon(fit)
        await started.wait()
        tg.cancel_scope.cancel()
    pids = [int(pid) for pid in (tmp_path / "runners").read_text().split()]
    assert len(pids) == 2
    if backend.local:
        # fit() returned after their ends: no thread or task of theirs is left.
        assert len(RUNNERS) == 2
        assert not any(
            r.is_alive() if isinstance(r, threading.Thread) else not r.done() for r in RUNNERS
        )
    else:
        assert os.getpid() not in pids
        with anyio.fail_after(30):  # Ray kills the actors' processes asynchronously
            while any(_alive(p) for p in pids):
                await anyio.sleep(0.1)


def scored_checkpoints(config):
    import tempfile

    for score in (3, 9, 1, 7, 5, 2):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "score.txt"), "w") as f:
            f.write(str(score))
        tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(d))


async def test_checkpoints_are_kept_and_ordered_by_score_as_in_ray_tune(tuner):
    (result,) = await tuner(
        scored_checkpoints,
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute="score", checkpoint_score_order="max"
        ),
    ).fit()
    # The two best (7, 9), plus the latest (2), as Ray Tune keeps them; best last.
    assert [m["score"] for _, m in result.best_checkpoints] == [2, 7, 9]
    assert result.checkpoint is not None
    with open(os.path.join(result.checkpoint.path, "score.txt")) as f:
        assert f.read() == "2"  # Result.checkpoint is the latest
    best = result.get_best_checkpoint("score", "max")
    with open(os.path.join(best.path, "score.txt")) as f:
        assert f.read() == "9"
    on_disk = sorted(d for d in os.listdir(result.path) if d.startswith("checkpoint_"))
    assert len(on_disk) == 3  # the dropped ones were deleted


def checkpoints_every_other_step_and_fails_once(config):
    import tempfile

    marker = os.path.join(config["marker_dir"], "failed")
    start = 0
    if (ckpt := tune.get_checkpoint()) is not None:
        with open(os.path.join(ckpt.path, "i.txt")) as f:
            start = int(f.read())
    for i in range(start + 1, 9):
        checkpoint = None
        if config["checkpoints"] and i % 2 == 0:
            d = tempfile.mkdtemp()
            with open(os.path.join(d, "i.txt"), "w") as f:
                f.write(str(i))
            checkpoint = tune.Checkpoint.from_directory(d)
        tune.report({"i": i, "attempt": 2 if os.path.exists(marker) else 1}, checkpoint=checkpoint)
        if i == 5 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("killed mid-run")


def _csv_iterations(path: str, name: str = "progress.csv") -> list[int]:
    import csv

    with open(os.path.join(path, name), newline="") as f:
        return [int(float(row["training_iteration"])) for row in csv.DictReader(f)]


@pytest.mark.parametrize(("checkpoints", "resumed_at"), [(True, 4), (False, 0)])
async def test_a_retried_trials_history_is_the_one_it_continues(
    tuner, tmp_path, checkpoints, resumed_at
):
    (result,) = await tuner(
        checkpoints_every_other_step_and_fails_once,
        param_space={"marker_dir": str(tmp_path), "checkpoints": checkpoints},
        failure_config=tune.FailureConfig(max_failures=1),
    ).fit()
    assert result.error is None and result.metrics["training_iteration"] == 8
    rows = _lines(result.path)
    # No gap, no iteration twice; the failed attempt's rows past the restart point are
    # kept apart, marked by the file they are in.
    assert [r["training_iteration"] for r in rows] == list(range(1, 9))
    assert [r["attempt"] for r in rows] == [1] * resumed_at + [2] * (8 - resumed_at)
    with open(os.path.join(result.path, "result.discarded.json")) as f:
        discarded = [json.loads(line) for line in f]
    assert [r["training_iteration"] for r in discarded] == list(range(resumed_at + 1, 6))
    assert all(r["attempt"] == 1 for r in discarded)
    assert _csv_iterations(result.path) == list(range(1, 9))
    assert _csv_iterations(result.path, "progress.discarded.csv") == list(range(resumed_at + 1, 6))
    assert list(result.metrics_dataframe["training_iteration"]) == list(range(1, 9))
    # TensorBoard's own reader drops the failed attempt's events past the restart.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(result.path)
    events.Reload()
    scalars = events.Scalars("ray/tune/attempt")
    assert [s.step for s in scalars] == list(range(1, 9))
    assert [s.value for s in scalars] == [1] * resumed_at + [2] * (8 - resumed_at)


def one_fails_the_others_run_long(config):
    import time

    for i in range(1, 501):
        tune.report({"i": i})
        if config["x"] == 0 and i == 2:
            raise ValueError("x=0 cannot be trained")
        time.sleep(0.01)


async def test_fail_fast_stops_the_experiment_at_the_first_error(tuner):
    grid = await tuner(
        one_fails_the_others_run_long,
        param_space={"x": tune.grid_search([0, 1, 2])},
        failure_config=tune.FailureConfig(fail_fast=True),
    ).fit()
    (failed,) = grid.errors
    assert isinstance(failed, ValueError) and "x=0 cannot be trained" in str(failed)
    # The others were stopped (or never started): none ran to its end.
    others = [r for r in grid if r.config["x"] != 0]
    assert all(r.error is None and r.metrics.get("training_iteration", 0) < 500 for r in others)


async def test_fail_fast_raise_re_raises_the_trainables_own_exception(tuner):
    t = tuner(
        one_fails_the_others_run_long,
        param_space={"x": tune.grid_search([0, 1])},
        failure_config=tune.FailureConfig(fail_fast="raise"),
    )
    with pytest.raises(ValueError, match="x=0 cannot be trained"):
        await t.fit()
    # What was recorded until then is kept.
    assert {r.config["x"] for r in t.get_results()} == {0, 1}


async def test_a_file_uri_storage_path_holds_the_experiment(backend, tmp_path):
    grid = await tune.Tuner(
        count_to_five,
        param_space={"x": 1},
        tune_config=tune.TuneConfig(executor=backend.executor()),
        run_config=tune.RunConfig(storage_path=f"file://{tmp_path}/uri", name="exp", verbose=0),
    ).fit()
    assert grid.experiment_path == str(tmp_path / "uri" / "exp")
    assert len(_lines(grid[0].path)) == 5
