"""Validation of the configuration objects and of trainables, and the public surface."""

from __future__ import annotations

import datetime
import functools
import threading

import pytest

import atune
from atune._executor._serialization import check_serializable
from atune.errors import ConfigError, ConfigTypeError, SerializationError
from atune.trainable.util import inspect_trainable, normalize_resources, resolve_resources


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "maximize"}, "`mode` must be 'min' or 'max', got 'maximize'"),
        ({"num_samples": 0}, "`num_samples` must be >= 1"),
        ({"num_samples": -2}, "`num_samples` must be >= -1, got -2"),
        ({"max_concurrent_trials": -1}, "`max_concurrent_trials` must be >= 0, got -1"),
        ({"time_budget_s": 0}, "`time_budget_s` must be > 0"),
        ({"executor": "cluster"}, "`executor` must be one of 'ray', 'local'"),
    ],
)
def test_tune_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError) as info:
        atune.TuneConfig(**kwargs)
    assert message in str(info.value)


def test_tune_config_accepts_timedelta_budget():
    cfg = atune.TuneConfig(time_budget_s=datetime.timedelta(minutes=2))
    assert cfg.time_budget_seconds == 120.0


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: atune.CheckpointConfig(num_to_keep=0), "`num_to_keep` must be >= 1, got 0"),
        (lambda: atune.CheckpointConfig(checkpoint_score_order="up"), "'max' or 'min'"),
        (lambda: atune.FailureConfig(max_failures=-2), "`max_failures` must be >= -1"),
        (lambda: atune.RunConfig(verbose=7), "`verbose` must be 0, 1 or 2"),
        (lambda: atune.RunConfig(log_to_file=("a",)), "`log_to_file`"),
        (lambda: atune.RunConfig(name="a/b"), "`name`"),
    ],
)
def test_other_configs_reject_bad_values(factory, message):
    with pytest.raises(ConfigError) as info:
        factory()
    assert message in str(info.value)


#: (config class, field, wrongly typed value, words of the expected type in the message)
WRONG_TYPES = [
    (atune.TuneConfig, "metric", 3, "a str"),
    (atune.TuneConfig, "mode", 1, "'min' or 'max'"),
    (atune.TuneConfig, "search_alg", 5, "atune.search.Searcher or its name"),
    (atune.TuneConfig, "scheduler", object(), "TrialScheduler or its name"),
    (atune.TuneConfig, "num_samples", "10", "an int"),
    (atune.TuneConfig, "max_concurrent_trials", 2.0, "an int"),
    (atune.TuneConfig, "time_budget_s", "5", "a number of seconds or a datetime.timedelta"),
    (atune.TuneConfig, "reuse_actors", "yes", "a bool (or None)"),
    (atune.TuneConfig, "trial_name_creator", "name", "a function of the trial"),
    (atune.TuneConfig, "trial_dirname_creator", 1, "a function of the trial"),
    (atune.TuneConfig, "executor", 3, "'ray', 'local' or an executor object"),
    (atune.RunConfig, "name", 5, "a str"),
    (atune.RunConfig, "storage_path", 5, "a str or os.PathLike"),
    (atune.RunConfig, "stop", 5, "a dict of result key -> threshold, an atune.Stopper"),
    (atune.RunConfig, "callbacks", atune.CSVLoggerCallback(), "a list of atune.Callback"),
    (atune.RunConfig, "callbacks", [3], "atune.Callback instances"),
    (atune.RunConfig, "verbose", "1", "an int"),
    (atune.RunConfig, "checkpoint_config", {"num_to_keep": 1}, "a CheckpointConfig"),
    (atune.RunConfig, "failure_config", 3, "a FailureConfig"),
    (atune.RunConfig, "log_to_file", 5, "a bool, a file name"),
    (atune.RunConfig, "progress_reporter", "cli", "an atune.ProgressReporter"),
    (atune.RunConfig, "storage_filesystem", "s3", "a pyarrow.fs.FileSystem"),
    (atune.RunConfig, "with_server", 1, "a bool"),
    (atune.RunConfig, "server_port", "4321", "an int"),
    (atune.RunConfig, "server_host", 127, "a str"),
    (atune.RunConfig, "server_token", 1234, "a str"),
    (atune.CheckpointConfig, "num_to_keep", "2", "an int"),
    (atune.CheckpointConfig, "checkpoint_score_attribute", 3, "a str"),
    (atune.CheckpointConfig, "checkpoint_score_order", 1, "'max' or 'min'"),
    (atune.CheckpointConfig, "checkpoint_frequency", 1.5, "an int"),
    (atune.CheckpointConfig, "checkpoint_at_end", "yes", "a bool"),
    (atune.FailureConfig, "max_failures", None, "an int"),
    (atune.FailureConfig, "fail_fast", 1, "True, False or 'raise'"),
]


@pytest.mark.parametrize(
    ("cls", "field", "value", "expected"),
    WRONG_TYPES,
    ids=[f"{c.__name__}.{f}={v!r}" for c, f, v, _ in WRONG_TYPES],
)
def test_wrongly_typed_config_values_name_the_field_and_the_type(cls, field, value, expected):
    with pytest.raises(ConfigTypeError) as info:
        cls(**{field: value})
    assert f"`{field}` must" in str(info.value)
    assert expected in str(info.value)


def test_every_config_field_has_a_wrong_type_case():
    import dataclasses

    classes = {cls for cls, *_ in WRONG_TYPES}
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields == {f for c, f, *_ in WRONG_TYPES if c is cls}, cls.__name__


def test_run_config_rejects_non_callback_objects():
    with pytest.raises(ConfigTypeError, match=r"atune\.Callback"):
        atune.RunConfig(callbacks=[object()])


def f_plain(config): ...


async def f_async(config): ...


def f_gen(config):
    yield {}


def f_legacy(config, reporter): ...


class T(atune.Trainable):
    def step(self):
        return {}


@pytest.mark.parametrize(
    ("trainable", "kind"),
    [
        (f_plain, "function"),
        (f_async, "async"),
        (f_gen, "generator"),
        (f_legacy, "reporter"),
        (T, "class"),
        (functools.partial(f_legacy, reporter=None), "function"),
        (lambda config: None, "function"),
    ],
)
def test_trainable_kinds(trainable, kind):
    assert inspect_trainable(trainable).kind == kind


def test_trainable_with_too_many_arguments_is_rejected():
    def bad(a, b, c): ...

    with pytest.raises(ConfigTypeError, match="must take one argument `config`"):
        inspect_trainable(bad)


def test_class_that_is_not_a_trainable_is_rejected():
    class NotTrainable: ...

    with pytest.raises(ConfigTypeError, match=r"must subclass atune\.Trainable"):
        inspect_trainable(NotTrainable)


def test_with_parameters_and_with_resources_compose():
    def train(config, data=None):
        return {"n": len(data)}

    wrapped = atune.with_resources(atune.with_parameters(train, data=[1, 2]), {"cpu": 2})
    info = inspect_trainable(wrapped)
    assert info.trainable is train
    assert info.parameters == {"data": [1, 2]}
    assert resolve_resources(info, {}, None) == {"CPU": 2.0}
    assert wrapped({}) == {"n": 2}


def test_resources_are_normalised_to_ray_names():
    assert normalize_resources({"cpu": 1, "gpu": 0.5, "extra_cpu": 2, "tpu": 1}) == {
        "CPU": 3.0,
        "GPU": 0.5,
        "tpu": 1.0,
    }
    assert normalize_resources({"gpu": 1}) == {"CPU": 0.0, "GPU": 1.0}
    with pytest.raises(ConfigError, match="resource 'cpu' must be a number >= 0, got -1"):
        normalize_resources({"cpu": -1})


def test_class_default_resource_request_is_used():
    class Big(atune.Trainable):
        @classmethod
        def default_resource_request(cls, config):
            return {"cpu": config["cpus"]}

    assert resolve_resources(inspect_trainable(Big), {"cpus": 3}, None) == {"CPU": 3.0}


def test_unserialisable_closure_names_the_culprit():
    import pickle

    lock = threading.Lock()

    def train(config):
        with lock:
            pass

    with pytest.raises(SerializationError, match="`lock`"):
        check_serializable(train, "trainable", pickle.dumps)


def test_class_trainable_runs_outside_a_tuner(tmp_path):
    class Halves(atune.Trainable):
        def setup(self, config):
            self.x = config["x"]

        def step(self):
            self.x /= 2
            return {"x": self.x}

        def save_checkpoint(self, checkpoint_dir):
            return {"x": self.x}

        def load_checkpoint(self, checkpoint):
            self.x = checkpoint["x"]

    t = Halves({"x": 8.0})
    assert t.train()["x"] == 4.0
    path = t.save(str(tmp_path / "ck"))
    t.train()
    t2 = Halves({"x": 0.0})
    t2.restore(path)
    assert t2.x == 4.0 and t2.iteration == 1


def test_public_surface_is_pinned():
    assert set(atune.__all__) == {
        "AsyncTuneClient", "AtuneError", "CLIReporter", "CSVLoggerCallback", "Callback",
        "Checkpoint", "CheckpointConfig", "ConfigError", "FailureConfig", "JsonLoggerCallback",
        "LiveEvent", "LiveRun", "LoggerCallback", "PlacementGroupFactory",
        "ProgressReporter", "Result", "ResultGrid", "RunConfig", "Stopper",
        "TBXLoggerCallback", "Trainable", "Trial", "TrialSnapshot", "TuneClient", "TuneConfig",
        "TuneContext", "TuneError", "Tuner", "__version__", "choice", "create_scheduler",
        "create_searcher", "get_checkpoint", "get_context", "get_trial_resources",
        "grid_search", "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint",
        "qrandn", "quniform", "randint", "randn", "report", "sample_from", "schedulers",
        "search", "stopper", "uniform", "with_parameters", "with_resources",
    }  # fmt: skip
    for name in atune.__all__:
        assert hasattr(atune, name), name


def test_ray_is_imported_by_the_ray_executor_only():
    import pathlib

    root = pathlib.Path(atune.__file__).parent
    importers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if any(
            line.strip().startswith(("import ray", "from ray"))
            for line in p.read_text().splitlines()
        )
    )
    # The executor's trial actors, and the cluster's lifetime and health.
    assert importers == ["_executor/_ray.py", "_executor/_ray_cluster.py"]
