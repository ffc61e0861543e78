"""End-to-end behaviour of Tuner.fit() on a real local Ray."""

from __future__ import annotations

import json
import os
import signal

import anyio
import numpy as np
import pytest

import atune as tune
from atune.errors import ConfigError, ConfigTypeError, SerializationError, TrialWorkerDiedError
from atune.stopper import MaximumIterationStopper


def _lines(path: str) -> list[dict]:
    with open(os.path.join(path, "result.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def run(trainable, storage, *, param_space=None, tune_config=None, **run_kwargs):
    run_kwargs.setdefault("verbose", 0)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(storage_path=storage, **run_kwargs),
    )


def count_to_five(config):
    for i in range(5):
        tune.report({"score": config["x"] * i})


async def test_function_trainable_records_every_result_with_auto_fields(storage):
    grid = await run(count_to_five, storage, param_space={"x": tune.grid_search([1, 2])}).fit()
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
        assert last["pid"] != os.getpid()  # ran in a Ray worker process
        assert lines[-1]["time_total_s"] >= lines[0]["time_total_s"]


def report_forever(config):
    i = 0
    while True:
        i += 1
        tune.report({"i": i})


async def test_stop_dict_gives_exactly_that_many_results(storage):
    grid = await run(
        report_forever,
        storage,
        tune_config=tune.TuneConfig(num_samples=3),
        stop={"training_iteration": 4},
    ).fit()
    for result in grid:
        lines = _lines(result.path)
        assert [r["training_iteration"] for r in lines] == [1, 2, 3, 4]
        assert lines[-1]["done"] is True
        assert result.metrics["training_iteration"] == 4


async def test_stop_function_and_stopper_objects(storage):
    grid = await run(report_forever, storage, stop=lambda tid, r: r["i"] >= 3).fit()
    assert grid[0].metrics["i"] == 3
    grid = await run(report_forever, storage, stop=MaximumIterationStopper(2)).fit()
    assert len(_lines(grid[0].path)) == 2


async def test_unknown_stop_key_is_a_clear_error(storage):
    with pytest.raises(ConfigError, match="accuracy"):
        await run(count_to_five, storage, param_space={"x": 1}, stop={"accuracy": 0.9}).fit()


async def test_metric_missing_from_every_result_is_a_clear_error(storage):
    tuner = run(
        count_to_five,
        storage,
        param_space={"x": 1},
        tune_config=tune.TuneConfig(metric="acc", mode="max"),
    )
    with pytest.raises(ConfigError, match="'acc' was never reported") as info:
        await tuner.fit()
    # Only what the trainable reported; not experiment_tag, config or other auto fields.
    assert "(it reported ['score'])" in str(info.value)
    assert "fix TuneConfig(metric=...)" in str(info.value)


def reports_text(config):
    tune.report({"loss": 1.0, "step": 0})
    tune.report({"loss": "low", "step": 1})  # a bad value later is not checked again
    tune.report({"loss": 0.5, "step": 2})


def reports_text_first(config):
    tune.report({"step": 0})  # no metric yet: fine
    tune.report({"loss": "low", "step": 1})
    tune.report({"loss": 0.5, "step": 2})


async def test_non_numeric_metric_fails_the_experiment_naming_trial_metric_and_value(storage):
    tuner = run(
        reports_text_first,
        storage,
        param_space={"x": 1},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
    )
    with pytest.raises(ConfigError) as info:
        await tuner.fit()
    name = tuner._controller.trials[0].name
    message = str(info.value)
    assert f"trial {name} reported the metric 'loss' as 'low' (a str)" in message
    assert "Report a number" in message and "TuneConfig(metric=...)" in message
    # The trial ends at that result; nothing after it is recorded.
    assert [r["step"] for r in _lines(tuner.get_results()[0].path)] == [0]


async def test_metric_type_is_checked_on_each_trials_first_value_only(storage):
    grid = await run(
        reports_text, storage, tune_config=tune.TuneConfig(metric="loss", mode="min")
    ).fit()
    assert grid[0].metrics["loss"] == 0.5


def returns_final(config):
    tune.report({"step": 1})
    return {"step": 2, "final": True}


async def test_returned_dict_is_the_final_result(storage):
    grid = await run(returns_final, storage).fit()
    lines = _lines(grid[0].path)
    assert [r["step"] for r in lines] == [1, 2]
    assert lines[-1]["done"] is True and lines[0]["done"] is False
    assert grid[0].metrics["final"] is True


async def async_trainable(config):
    for i in range(4):
        await anyio.sleep(0)
        await tune.report({"v": i + config["offset"]})


async def test_async_trainable_is_first_class(storage):
    grid = await run(async_trainable, storage, param_space={"offset": 10}).fit()
    assert [r["v"] for r in _lines(grid[0].path)] == [10, 11, 12, 13]


def legacy(config, reporter):
    for i in range(3):
        reporter(mean_loss=1.0 / (i + 1), timesteps_this_iter=10)


async def test_legacy_reporter_function(storage):
    grid = await run(legacy, storage).fit()
    lines = _lines(grid[0].path)
    assert [r["mean_loss"] for r in lines] == [1.0, 0.5, 1.0 / 3]
    assert lines[-1]["timesteps_total"] == 30


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


async def test_class_trainable_steps_and_checkpoints(storage):
    grid = await run(
        Counter,
        storage,
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


async def test_class_trainable_checkpoint_at_end_when_stopped(storage):
    grid = await run(
        Counter,
        storage,
        param_space={"start": 0},
        stop={"training_iteration": 3},
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
    ).fit()
    ckpt = grid[0].checkpoint
    assert ckpt is not None
    with open(os.path.join(ckpt.path, "value.txt")) as f:
        assert f.read() == "3"


def raises_after_two(config):
    tune.report({"a": 1})
    tune.report({"a": 2})
    raise ValueError(f"bad value {config['x']}")


async def test_trial_that_raises_is_an_error_result_with_the_users_exception(storage):
    grid = await run(
        raises_after_two,
        storage,
        param_space={"x": tune.grid_search([1, 2])},
    ).fit()
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


async def test_max_failures_retries_from_the_last_checkpoint(storage, tmp_path):
    grid = await run(
        fails_once_then_resumes,
        storage,
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


def dies_first_time(config):
    marker = os.path.join(config["marker_dir"], "died")
    tune.report({"n": 1})
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    tune.report({"n": 2})


async def test_killed_worker_is_reported_and_retried(storage, tmp_path):
    grid = await run(dies_first_time, storage, param_space={"marker_dir": str(tmp_path)}).fit()
    assert isinstance(grid[0].error, TrialWorkerDiedError)
    os.remove(tmp_path / "died")
    grid = await run(
        dies_first_time,
        storage,
        param_space={"marker_dir": str(tmp_path)},
        failure_config=tune.FailureConfig(max_failures=2),
    ).fit()
    assert grid[0].error is None
    assert grid[0].metrics["n"] == 2


def fails_three_times(config):
    log = os.path.join(config["marker_dir"], "starts.txt")
    with open(log, "a") as f:
        f.write(f"{config['x']}\n")
    if config["x"] == 0:
        with open(log) as f:
            if sum(line.strip() == "0" for line in f) <= 3:
                raise RuntimeError("failing again")
    tune.report({"x": config["x"]})


async def test_a_retried_trial_queues_behind_the_trials_waiting_to_start(storage, tmp_path):
    # One trial at a time (each takes the whole cluster): with max_failures=-1, trial 0
    # fails three times, and each retry waits until the trials queued before it started.
    grid = await run(
        tune.with_resources(fails_three_times, {"cpu": 4}),
        storage,
        param_space={"x": tune.grid_search([0, 1, 2]), "marker_dir": str(tmp_path)},
        failure_config=tune.FailureConfig(max_failures=-1),
    ).fit()
    starts = (tmp_path / "starts.txt").read_text().split()
    assert starts[:3] == ["0", "1", "2"], starts
    assert starts[3:] == ["0", "0", "0"], starts
    assert [r.config["x"] for r in grid] == [0, 1, 2]  # creation order
    assert all(r.error is None for r in grid)
    assert [r.metrics["x"] for r in grid] == [0, 1, 2]


async def test_grid_times_num_samples_and_sample_from(storage):
    space = {
        "a": tune.grid_search([1, 2, 3]),
        "b": tune.sample_from(lambda spec: spec.config.a * 10),
        "nested": {"c": tune.choice(["x", "y"])},
    }
    grid = await run(
        lambda config: tune.report({"b": config["b"]}),
        storage,
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=2),
    ).fit()
    assert len(grid) == 6
    assert sorted(r.config["a"] for r in grid) == [1, 1, 2, 2, 3, 3]
    assert all(r.metrics["b"] == r.config["a"] * 10 for r in grid)
    assert all(r.config["nested"]["c"] in ("x", "y") for r in grid)
    df = grid.get_dataframe()
    assert {"config/a", "config/b", "config/nested/c"} <= set(df.columns)


def uses_data(config, data=None):
    tune.report({"total": float(data.sum())})


async def test_with_parameters_ships_large_objects(storage):
    data = np.ones(1_000_000)
    grid = await run(
        tune.with_parameters(uses_data, data=data),
        storage,
        tune_config=tune.TuneConfig(num_samples=2),
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


async def test_resources_per_trial_bound_concurrency(storage):
    grid = await run(
        tune.with_resources(overlap_probe, {"cpu": 2}),
        storage,
        tune_config=tune.TuneConfig(num_samples=4),
    ).fit()
    assert grid[0].metrics["res"]["CPU"] == 2.0
    assert _max_overlap(grid) <= 2


async def test_max_concurrent_trials(storage):
    grid = await run(
        overlap_probe, storage, tune_config=tune.TuneConfig(num_samples=3, max_concurrent_trials=1)
    ).fit()
    assert _max_overlap(grid) == 1


async def test_with_resources_callable_of_config(storage):
    grid = await run(
        tune.with_resources(overlap_probe, lambda spec: {"cpu": spec.config.cpus}),
        storage,
        param_space={"cpus": 0.5},
    ).fit()
    assert grid[0].metrics["res"] == {"CPU": 0.5}


async def test_trial_that_can_never_fit_is_a_clear_error(storage):
    with pytest.raises(ConfigError, match="can never start"):
        await run(tune.with_resources(overlap_probe, {"cpu": 64}), storage).fit()


async def test_time_budget_ends_an_endless_experiment(storage):
    grid = await run(
        report_forever, storage, tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=2)
    ).fit()
    assert len(grid) >= 1
    assert all(r.metrics.get("i", 0) >= 1 for r in grid if r.metrics)


def context_probe(config):
    ctx = tune.get_context()
    tune.report({"trial_id": ctx.get_trial_id(), "dir": ctx.get_trial_dir(), "cwd": os.getcwd()})


async def test_context_names_the_trial_and_its_directory(storage):
    grid = await run(
        context_probe,
        storage,
        tune_config=tune.TuneConfig(
            trial_name_creator=lambda t: f"probe_{t.trial_id}",
            trial_dirname_creator=lambda t: f"dir_{t.trial_id}",
        ),
    ).fit()
    result = grid[0]
    assert result.metrics["dir"] == result.path
    assert os.path.basename(result.path) == f"dir_{result.metrics['trial_id']}"
    assert os.path.realpath(result.metrics["cwd"]) == os.path.realpath(result.path)


def noisy(config):
    print("hello from the trial")
    tune.report({"x": 1})


async def test_log_to_file_captures_stdout(storage):
    grid = await run(noisy, storage, log_to_file=True).fit()
    with open(os.path.join(grid[0].path, "stdout")) as f:
        assert "hello from the trial" in f.read()


async def test_default_loggers_write_json_csv_params_and_tensorboard(storage):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    grid = await run(count_to_five, storage, param_space={"x": 3}).fit()
    path = grid[0].path
    files = os.listdir(path)
    assert {"result.json", "progress.csv", "params.json"} <= set(files)
    with open(os.path.join(path, "params.json")) as f:
        assert json.load(f) == {"x": 3}
    with open(os.path.join(path, "progress.csv")) as f:
        assert len(f.read().strip().splitlines()) == 6  # header + 5 rows
    acc = EventAccumulator(path)
    acc.Reload()
    scores = [e.value for e in acc.Scalars("ray/tune/score")]
    assert scores == [0.0, 3.0, 6.0, 9.0, 12.0]


async def test_not_callable_trainable_is_rejected_at_construction():
    with pytest.raises(ConfigTypeError, match="trainable"):
        tune.Tuner(42)


async def test_unserialisable_trainable_names_the_culprit():
    import threading

    lock = threading.Lock()

    def train(config):
        with lock:
            tune.report({"x": 1})

    with pytest.raises(SerializationError, match="lock"):
        tune.Tuner(train)


async def test_bad_search_space_and_mode_are_rejected_at_construction():
    with pytest.raises(ConfigError, match="choice"):
        tune.Tuner(count_to_five, param_space={"x": tune.choice([])})
    with pytest.raises(ConfigError, match="mode"):
        tune.TuneConfig(metric="x", mode="maximize")


async def test_cancelling_fit_kills_the_trial_workers(storage, tmp_path):
    pid_file = tmp_path / "pids"

    def slow(config):
        import time

        with open(pid_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        while True:
            time.sleep(0.05)
            tune.report({"alive": 1})

    started = anyio.Event()

    class Watch(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if sum(1 for t in trials if t.last_result) == 2:
                started.set()

    tuner = run(slow, storage, tune_config=tune.TuneConfig(num_samples=2), callbacks=[Watch()])
    async with anyio.create_task_group() as tg:
        tg.start_soon(tuner.fit)
        await started.wait()
        tg.cancel_scope.cancel()
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 2
    with anyio.fail_after(30):
        while any(_alive(p) for p in pids):
            await anyio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_fit_sync_works_inside_a_running_event_loop(storage):
    grid = run(count_to_five, storage, param_space={"x": 1}).fit_sync()
    assert grid[0].metrics["training_iteration"] == 5


async def test_controller_never_calls_ray_get_on_the_event_loop(storage, monkeypatch):
    import threading

    import ray

    loop_thread = threading.get_ident()
    real_get = ray.get
    offenders = []

    def guarded_get(*args, **kwargs):
        if threading.get_ident() == loop_thread:
            offenders.append(args)
        return real_get(*args, **kwargs)

    monkeypatch.setattr(ray, "get", guarded_get)
    await run(count_to_five, storage, param_space={"x": tune.grid_search([1, 2])}).fit()
    assert offenders == []


async def test_get_best_result_uses_tune_config_metric(storage):
    grid = await run(
        count_to_five,
        storage,
        param_space={"x": tune.grid_search([1, 5, 3])},
        tune_config=tune.TuneConfig(metric="score", mode="max"),
    ).fit()
    assert grid.get_best_result().config["x"] == 5
    assert grid.get_best_result(mode="min").config["x"] == 1


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


async def test_reuse_actors_resets_the_same_trainable(storage):
    grid = await run(
        Reusable,
        storage,
        param_space={"x": tune.grid_search([1, 2, 3])},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=1),
    ).fit()
    metrics = sorted((r.metrics for r in grid), key=lambda m: m["x"])
    assert [m["x"] for m in metrics] == [1, 2, 3]
    assert len({m["pid"] for m in metrics}) == 1
    assert len({m["obj"] for m in metrics}) == 1
    assert [m["resets"] for m in metrics] == [0, 1, 2]
    assert {m["setups"] for m in metrics} == {1}


async def test_seeded_searcher_reproduces_the_configs(storage):
    space = {"a": tune.uniform(0, 1), "b": tune.randint(0, 100)}

    async def configs():
        grid = await run(
            lambda config: tune.report({"ok": 1}),
            storage,
            param_space=space,
            tune_config=tune.TuneConfig(
                num_samples=4, search_alg=tune.search.BasicVariantGenerator(random_state=7)
            ),
        ).fit()
        return sorted((r.config["a"], r.config["b"]) for r in grid)

    assert await configs() == await configs()


async def test_points_to_evaluate_run_first(storage):
    searcher = tune.search.BasicVariantGenerator(points_to_evaluate=[{"a": 0.5}])
    grid = await run(
        lambda config: tune.report({"a": config["a"]}),
        storage,
        param_space={"a": tune.uniform(10, 20)},
        tune_config=tune.TuneConfig(num_samples=3, search_alg=searcher, max_concurrent_trials=1),
    ).fit()
    assert grid[0].config["a"] == 0.5
    assert all(10 <= r.config["a"] <= 20 for r in list(grid)[1:])


async def test_custom_resources_bound_concurrency(storage):
    grid = await run(
        tune.with_resources(overlap_probe, {"cpu": 0, "special": 1}),
        storage,
        tune_config=tune.TuneConfig(num_samples=3),
    ).fit()
    assert grid[0].metrics["res"]["special"] == 1.0
    assert _max_overlap(grid) == 1


async def test_verbose_2_prints_the_table_and_every_result(storage, capsys):
    await run(count_to_five, storage, param_space={"x": 2}, verbose=2).fit()
    out = capsys.readouterr().out
    assert "== Status ==" in out
    assert "Number of trials: 1/1 (1 TERMINATED)" in out
    assert out.count("Result for count_to_five_") == 5


async def test_verbose_0_prints_nothing(storage, capsys):
    await run(count_to_five, storage, param_space={"x": 2}, verbose=0).fit()
    assert capsys.readouterr().out == ""


async def test_get_results_before_and_after_fit(storage):
    tuner = run(count_to_five, storage, param_space={"x": 2})
    with pytest.raises(tune.AtuneError, match="no results yet"):
        tuner.get_results()
    grid = await tuner.fit()
    assert tuner.get_results() is grid
    with pytest.raises(tune.AtuneError, match="already run"):
        await tuner.fit()


async def test_trainable_from_a_module_workers_cannot_import(storage, tmp_path, monkeypatch):
    (tmp_path / "only_on_driver.py").write_text(
        "import atune\n\ndef train(config):\n    atune.report({'x': 1})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_on_driver

    with pytest.raises(SerializationError, match="cannot import module 'only_on_driver'"):
        await run(only_on_driver.train, storage).fit()
