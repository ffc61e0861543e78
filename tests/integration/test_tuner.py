"""End-to-end behaviour of Tuner.fit() on a real local Ray (what every executor does is in
tests/contract/)."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

import atune as tune
from atune.errors import ConfigError, ConfigTypeError, SerializationError, TrialWorkerDiedError


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
    message = str(info.value)
    assert re.search(
        r"trial \w+_[0-9a-f]{5}_00000 reported the metric 'loss' as 'low' \(a str\)", message
    )
    assert "Report a number" in message and "TuneConfig(metric=...)" in message
    # The trial ends at that result; nothing after it is recorded.
    assert [r["step"] for r in _lines(tuner.get_results()[0].path)] == [0]


async def test_metric_type_is_checked_on_each_trials_first_value_only(storage):
    grid = await run(
        reports_text, storage, tune_config=tune.TuneConfig(metric="loss", mode="min")
    ).fit()
    assert grid[0].metrics["loss"] == 0.5


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
