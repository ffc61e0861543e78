"""Remote storage for real: an S3-compatible server (moto) on 127.0.0.1, through the S3 API.

Experiments run with ``storage_path="s3://..."`` (and with ``storage_filesystem=``):
their results, checkpoints and journal are in the bucket, dropped checkpoints are
deleted there too, and ``Tuner.restore("s3://...")`` continues an interrupted
experiment from the bucket alone (its local staging copy deleted, as on another
machine).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import atune as tune
from atune._storage import resolve_storage
from atune.config import DEFAULT_STORAGE_PATH
from atune.errors import ConfigError

pyarrow_fs = pytest.importorskip("pyarrow.fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "atune-bucket"
STEPS = 8


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, object]]:
    """A moto S3 server on 127.0.0.1: (endpoint, a pyarrow S3FileSystem for it)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    fs = pyarrow_fs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir(BUCKET)
    yield endpoint, fs
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _uri(endpoint: str, path: str) -> str:
    return f"s3://{BUCKET}/{path}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def counter(config):
    start = 0
    if (ckpt := tune.get_checkpoint()) is not None:
        with open(os.path.join(ckpt.path, "i.txt")) as f:
            start = int(f.read())
    with open("starts.txt", "a") as f:  # in the trial's directory
        f.write(f"{start}\n")
    for i in range(start + 1, STEPS + 1):
        time.sleep(config.get("sleep", 0.01))
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "i.txt"), "w") as f:
            f.write(str(i))
        tune.report(
            {"i": i, "score": config["x"] * i}, checkpoint=tune.Checkpoint.from_directory(d)
        )


def _tuner(storage_path: str, name: str, space: dict, **rc) -> tune.Tuner:
    return tune.Tuner(
        counter,
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="max", max_concurrent_trials=2),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            **rc,
        ),
    )


def _remote_files(fs, root: str) -> dict[str, int]:
    infos = fs.get_file_info(pyarrow_fs.FileSelector(root, recursive=True))
    return {i.path[len(root) + 1 :]: i.size for i in infos if i.type == pyarrow_fs.FileType.File}


def _read(fs, path: str) -> str:
    with fs.open_input_stream(path) as f:
        return f.read().decode()


def test_an_experiment_is_stored_in_s3(s3) -> None:
    endpoint, fs = s3
    grid = _tuner(_uri(endpoint, "runs"), "first", {"x": tune.grid_search([1, 2, 3])}).fit_sync()
    assert len(grid) == 3 and not grid.errors
    root = f"{BUCKET}/runs/first"
    files = _remote_files(fs, root)
    assert "tuner.pkl" in files
    assert any(f.startswith("journal/snapshot-") for f in files)
    for result in grid:
        trial = os.path.basename(result.path)
        rows = [json.loads(x) for x in _read(fs, f"{root}/{trial}/result.json").splitlines()]
        assert [r["training_iteration"] for r in rows] == list(range(1, STEPS + 1))
        # Only the kept checkpoint is in the bucket: the dropped ones were deleted there.
        ckpts = sorted({f.split("/")[1] for f in files if f.startswith(f"{trial}/checkpoint_")})
        assert ckpts == [f"checkpoint_{STEPS:06d}"], ckpts
        assert _read(fs, f"{root}/{trial}/checkpoint_{STEPS:06d}/i.txt") == str(STEPS)
    assert tune.Tuner.can_restore(_uri(endpoint, "runs/first"))
    assert not tune.Tuner.can_restore(_uri(endpoint, "runs/nothing"))


async def test_restore_from_s3_alone(s3) -> None:
    endpoint, fs = s3
    uri = _uri(endpoint, "cut")
    space = {"x": tune.grid_search([1, 2, 3, 4]), "sleep": 0.15}
    tuner = _tuner(uri, "exp", space)
    local = Path(resolve_storage(uri, None, os.path.abspath(DEFAULT_STORAGE_PATH)).local_root)
    with anyio.move_on_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(tuner.fit)
            while not list((local / "exp").glob("*/checkpoint_000003")):
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    shutil.rmtree(local / "exp")  # another machine: only the bucket has it
    assert tune.Tuner.can_restore(_uri(endpoint, "cut/exp"))
    restored = tune.Tuner.restore(_uri(endpoint, "cut/exp"), counter)
    grid = await restored.fit()
    assert len(grid) == 4 and not grid.errors
    root = f"{BUCKET}/cut/exp"
    resumed = 0
    for result in grid:
        trial = os.path.basename(result.path)
        rows = [json.loads(x) for x in _read(fs, f"{root}/{trial}/result.json").splitlines()]
        its = [r["training_iteration"] for r in rows]
        assert its == list(range(1, STEPS + 1)), its
        assert all(r["i"] == r["training_iteration"] for r in rows)
        starts = [int(x) for x in _read(fs, f"{root}/{trial}/starts.txt").split()]
        resumed += any(x > 0 for x in starts[1:])
    assert resumed >= 1, "no interrupted trial continued from its checkpoint in the bucket"
    assert grid.get_best_result().config["x"] == 4


def test_storage_filesystem_object(s3) -> None:
    _, fs = s3
    grid = _tuner(f"{BUCKET}/objects", "viafs", {"x": 1}, storage_filesystem=fs).fit_sync()
    assert not grid.errors
    assert "tuner.pkl" in _remote_files(fs, f"{BUCKET}/objects/viafs")
    assert tune.Tuner.can_restore(f"{BUCKET}/objects/viafs", storage_filesystem=fs)
    grid = tune.Tuner.restore(f"{BUCKET}/objects/viafs", counter, storage_filesystem=fs).fit_sync()
    assert len(grid) == 1


def test_unreachable_storage_fails_early_with_the_fix() -> None:
    fs = pyarrow_fs.S3FileSystem(
        access_key="x",
        secret_key="x",
        endpoint_override="127.0.0.1:9",  # nothing listens there
        scheme="http",
        region="us-east-1",
        connect_timeout=1,
        request_timeout=1,
        retry_strategy=pyarrow_fs.AwsStandardS3RetryStrategy(max_attempts=1),
    )
    tuner = _tuner("some-bucket/x", "never", {"x": 1}, storage_filesystem=fs)
    start = time.monotonic()
    with pytest.raises(ConfigError, match="cannot be reached") as info:
        tuner.fit_sync()
    assert time.monotonic() - start < 30
    assert "endpoint" in str(info.value)


def test_a_bad_storage_uri_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot be opened as a filesystem"):
        _tuner("nosuchscheme://bucket/x", "bad", {"x": 1})
