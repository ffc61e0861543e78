"""Bad inputs caught up front, each with a message naming the problem and the fix."""

from __future__ import annotations

import math
import pathlib
import threading
import warnings

import numpy as np
import pytest

import atune as tune
from atune._engine.pipeline import check_metric_value as _check_metric_value
from atune._executor._base import WorkerSpec
from atune._executor._worker import TrialWorker
from atune._trial import Trial
from atune.errors import ConfigError, ConfigTypeError, SerializationError
from atune.trainable.util import inspect_trainable

FORBIDDEN = "/proc/forbidden"  # cannot be created, even by root


def train(config):
    pass


# ------------------------------------------------------------- unpicklable param_space


@pytest.mark.parametrize(
    ("space", "where"),
    [
        ({"opt": {"lock": threading.Lock()}}, "param_space['opt']['lock']"),
        ({"layers": [1, {"lock": threading.Lock()}]}, "param_space['layers'][1]['lock']"),
        (
            {"opt": tune.grid_search([1, {"lock": threading.Lock()}])},
            "param_space['opt']['grid_search'][1]['lock']",
        ),
        ({"opt": tune.choice(["a", threading.Lock()])}, "param_space['opt'].categories[1]"),
    ],
)
def test_unpicklable_param_space_value_names_its_path_and_the_fix(space, where):
    with pytest.raises(SerializationError) as info:
        tune.Tuner(train, param_space=space)
    message = str(info.value)
    assert message.startswith(f"{where} (a lock) cannot be sent to a Ray worker")
    assert "cannot pickle" in message
    assert "Create such objects inside the trainable" in message


def test_search_space_domains_and_functions_are_accepted():
    lock = threading.Lock()
    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "layers": tune.grid_search([2, 4]),
        "act": tune.choice(["relu", "tanh"]),
        "nested": {"width": tune.randint(1, 9), "name": "mlp"},
        # Runs on the driver: only the value it returns is sent.
        "guarded": tune.sample_from(lambda spec: lock is not None),
        "double": tune.sample_from(lambda spec: spec.config.layers * 2),
    }
    tune.Tuner(train, param_space=space)


# ---------------------------------------------------------------------- storage path


def test_storage_path_that_cannot_be_created_is_a_config_error_at_construction():
    with pytest.raises(ConfigError) as info:
        tune.Tuner(train, run_config=tune.RunConfig(storage_path=FORBIDDEN))
    message = str(info.value)
    assert f"`storage_path` {FORBIDDEN!r} cannot be created or written" in message
    assert "RunConfig(storage_path=...)" in message and "$ATUNE_RESULTS_DIR" in message


def test_storage_path_that_is_a_file_says_so(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("")
    with pytest.raises(ConfigError, match="it is a file, not a directory"):
        tune.Tuner(train, run_config=tune.RunConfig(storage_path=path))


def test_storage_root_is_created_and_left_clean(tmp_path):
    root = tmp_path / "new" / "results"
    tune.Tuner(train, run_config=tune.RunConfig(storage_path=str(root), name="exp"))
    assert root.is_dir() and list(root.iterdir()) == []  # no probe, no experiment dir yet


# ------------------------------------------------------------ checkpoint= in report()


@pytest.mark.parametrize(
    ("checkpoint", "fix"),
    [
        ({"step": 3}, "write the dict to files in a directory"),
        ("/tmp/ckpt", "checkpoint=atune.Checkpoint.from_directory('/tmp/ckpt')"),
        (pathlib.Path("/tmp/ckpt"), "checkpoint=atune.Checkpoint.from_directory('/tmp/ckpt')"),
        (3, "atune.Checkpoint.from_directory(path)"),
    ],
)
def test_report_rejects_a_checkpoint_that_is_not_a_checkpoint(checkpoint, fix):
    with pytest.raises(ConfigTypeError) as info:
        tune.report({"loss": 1.0}, checkpoint=checkpoint)
    message = str(info.value)
    assert "atune.report(checkpoint=...) must be an atune.Checkpoint" in message
    assert type(checkpoint).__name__ in message
    assert fix in message


async def test_wrong_checkpoint_fails_the_trial_with_that_message(tmp_path):
    def reports_a_dict(config):
        tune.report({"loss": 1.0}, checkpoint={"step": 1})

    worker = TrialWorker()
    spec = WorkerSpec(
        trial_id="abcde_00000",
        trial_name="t_abcde_00000",
        experiment_id="exp",
        experiment_name="exp",
        trainable=inspect_trainable(reports_a_dict),
        config={},
        trial_dir=str(tmp_path / "trial"),
        chdir=False,
    )
    await worker.start(spec, {})
    batch = await worker.next_results(10, 0, False)
    while not batch.finished:
        batch = await worker.next_results(10, len(batch.results), False)
    assert isinstance(batch.error, ConfigTypeError)
    assert "must be an atune.Checkpoint" in str(batch.error)
    assert "Checkpoint.from_directory" in str(batch.error)


# ----------------------------------------------------------- non-numeric metric values


def _trial() -> Trial:
    return Trial(trial_id="3a1f2_00000", trainable_name="train", config={})


@pytest.mark.parametrize(
    "value", [0.5, 3, np.float32(0.5), np.int64(2), math.nan, math.inf, np.float64("nan")]
)
def test_numeric_metric_values_are_accepted(value):
    assert _check_metric_value(_trial(), "loss", value) is None


@pytest.mark.parametrize("value", ["low", True, np.bool_(False), [0.5], {"v": 1}])
def test_non_numeric_metric_value_names_trial_metric_value_and_fix(value):
    error = _check_metric_value(_trial(), "loss", value)
    assert isinstance(error, ConfigError)
    message = str(error)
    assert f"trial train_3a1f2_00000 reported the metric 'loss' as {value!r}" in message
    assert "must name a number" in message
    assert "Report a number" in message and "TuneConfig(metric=...)" in message


# ------------------------------------------------------------------ endless num_samples


def _warnings(**kwargs) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune.Tuner(train, **kwargs)
    return [str(w.message) for w in caught if "num_samples=-1" in str(w.message)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"param_space": {"x": tune.grid_search([1, 2])}},
        {"run_config": tune.RunConfig(stop={"training_iteration": 3})},
        {"run_config": tune.RunConfig(stop=tune.stopper.MaximumIterationStopper(3))},
    ],
)
def test_endless_num_samples_warns_once_with_the_fix(kwargs):
    kwargs["tune_config"] = tune.TuneConfig(num_samples=-1)
    messages = _warnings(**kwargs)
    assert len(messages) == 1
    assert "runs until fit() is cancelled" in messages[0]
    assert "TuneConfig(time_budget_s=...)" in messages[0] and "RunConfig(stop=" in messages[0]


def test_endless_num_samples_warning_points_at_the_caller():
    with pytest.warns(UserWarning, match="num_samples=-1") as caught:
        tune.Tuner(train, tune_config=tune.TuneConfig(num_samples=-1))
    assert caught[0].filename == __file__


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tune_config": tune.TuneConfig(num_samples=-1, time_budget_s=60)},
        {
            "tune_config": tune.TuneConfig(num_samples=-1),
            "run_config": tune.RunConfig(stop=tune.stopper.TimeoutStopper(60)),
        },
        {"tune_config": tune.TuneConfig(num_samples=5)},
    ],
)
def test_no_endless_warning_when_something_ends_the_experiment(kwargs):
    assert _warnings(**kwargs) == []


# ------------------------------------------------------------------- storage URIs


def test_a_file_uri_storage_path_is_its_local_directory(tmp_path):
    config = tune.RunConfig(storage_path=f"file://{tmp_path}/my%20results")
    assert config.storage_path == f"{tmp_path}/my results"


def test_a_remote_storage_uri_runs_in_a_local_staging_copy(tmp_path):
    from atune._storage import resolve_storage

    uri = "s3://bucket/experiments?region=us-east-1&endpoint_override=127.0.0.1:9&scheme=http"
    storage = resolve_storage(uri, None, str(tmp_path))
    assert storage.remote and storage.remote_root == "bucket/experiments"
    assert storage.local_root.startswith(str(tmp_path / "_staging"))
    assert storage.describe("exp") == "s3://bucket/experiments/exp"
    # The same storage gets the same staging directory (a restore finds it again).
    assert resolve_storage(uri, None, str(tmp_path)).local_root == storage.local_root


def test_storage_filesystem_needs_a_path_in_it(tmp_path):
    import pyarrow.fs

    from atune._storage import resolve_storage

    fs = pyarrow.fs.SubTreeFileSystem(str(tmp_path), pyarrow.fs.LocalFileSystem())
    with pytest.raises(ConfigError, match="needs `storage_path`"):
        resolve_storage(None, fs, str(tmp_path))
    storage = resolve_storage("runs", fs, str(tmp_path))
    assert storage.remote and storage.remote_root == "runs"


def test_a_storage_uri_pyarrow_cannot_open_is_a_config_error(tmp_path):
    from atune._storage import resolve_storage

    with pytest.raises(ConfigError, match="cannot be opened as a filesystem") as info:
        resolve_storage("nosuch://bucket/x", None, str(tmp_path))
    assert "storage_filesystem=" in str(info.value)


def test_a_file_uri_of_another_host_is_refused():
    with pytest.raises(ConfigError, match="must be local"):
        tune.RunConfig(storage_path="file://fileserver/exports/results")
