"""The JSON, CSV and TensorBoard logger callbacks and the legacy Logger adapter.

The callbacks are driven directly, as the controller would: hooks on the event loop,
then ``await flush()``; the files they write in ``tmp_path`` are read back.
"""

from __future__ import annotations

import csv
import json
import math
import struct
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

import atune.callbacks
from atune._trial import Trial
from atune._util import encode_json as _encode_json
from atune.callbacks import (
    DEFAULT_LOGGERS,
    CSVLoggerCallback,
    JsonLoggerCallback,
    LegacyLoggerCallback,
    Logger,
    LoggerCallback,
    TBXLoggerCallback,
)
from atune.callbacks._tfrecord import frame_records, masked_crc32c
from atune.callbacks.loggers import loggers_to_callbacks
from atune.errors import ConfigTypeError

# ---------------------------------------------------------------------------- helpers


def make_trial(tmp_path: Path, index: int = 0, config: dict[str, Any] | None = None) -> Trial:
    trial_dir = tmp_path / f"train_abcde_{index:05d}"
    trial_dir.mkdir(exist_ok=True)
    config = {"lr": 0.1, "model": {"depth": 3, "act": "relu"}} if config is None else config
    return Trial(
        trial_id=f"abcde_{index:05d}",
        trainable_name="train",
        config=config,
        evaluated_params={"lr": config.get("lr")},
        local_path=str(trial_dir),
    )


def make_result(trial: Trial, iteration: int, **metrics: Any) -> dict[str, Any]:
    """A result with the auto-filled fields the controller adds."""
    result: dict[str, Any] = {"mean_loss": 1.0 / iteration}
    result.update(metrics)
    result.update(
        training_iteration=iteration,
        time_this_iter_s=0.5,
        time_total_s=0.5 * iteration,
        timestamp=1_700_000_000 + iteration,
        date="2026-11-22_10-19-34",
        done=False,
        trial_id=trial.trial_id,
        experiment_id="e" * 32,
        pid=4242,
        hostname="host",
        node_ip="127.0.0.1",
        iterations_since_restore=iteration,
        time_since_restore=0.5 * iteration,
        config=trial.config,
    )
    return result


def feed(callback: LoggerCallback, trial: Trial, first: int, last: int, **metrics: Any) -> None:
    for i in range(first, last + 1):
        callback.on_trial_result(i, [trial], trial, make_result(trial, i, **metrics))


def json_lines(trial: Trial) -> list[dict[str, Any]]:
    text = (Path(trial.local_path) / "result.json").read_text()
    return [json.loads(line) for line in text.splitlines()]


def csv_rows(trial: Trial) -> list[list[str]]:
    with open(Path(trial.local_path) / "progress.csv", newline="") as f:
        return list(csv.reader(f))


def event_files(trial: Trial) -> list[Path]:
    return sorted(Path(trial.local_path).glob("events.out.tfevents.*"))


def accumulator(trial: Trial) -> EventAccumulator:
    acc = EventAccumulator(trial.local_path)
    acc.Reload()
    return acc


class Gate:
    """Holds the writer thread inside a flush until the test opens the gate."""

    def __init__(self, callback: Any, method: str) -> None:
        self.entered = anyio.Event()
        self._open = threading.Event()
        original = getattr(callback, method)

        def gated(*args: Any) -> Any:
            anyio.from_thread.run_sync(self.entered.set)
            self._open.wait()
            return original(*args)

        setattr(callback, method, gated)

    def open(self) -> None:
        self._open.set()


ALL_CALLBACKS = [JsonLoggerCallback, CSVLoggerCallback, TBXLoggerCallback]

# -------------------------------------------------------------------------- contract


def test_default_loggers_are_json_csv_tbx() -> None:
    assert (JsonLoggerCallback, CSVLoggerCallback, TBXLoggerCallback) == DEFAULT_LOGGERS


def test_callbacks_package_pins_its_public_surface() -> None:
    assert sorted(atune.callbacks.__all__) == sorted(
        [
            "CLIReporter",
            "CSVLoggerCallback",
            "Callback",
            "DEFAULT_LOGGERS",
            "ExperimentStatus",
            "JsonLoggerCallback",
            "LegacyLoggerCallback",
            "Logger",
            "LoggerCallback",
            "ProgressReporter",
            "TBXLoggerCallback",
        ]
    )
    for name in atune.callbacks.__all__:
        assert getattr(atune.callbacks, name) is not None


@pytest.mark.parametrize("cls", ALL_CALLBACKS)
async def test_flush_with_nothing_buffered_writes_nothing(cls: type, tmp_path: Path) -> None:
    callback = cls()
    await callback.flush()
    await callback.flush()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cls", ALL_CALLBACKS)
async def test_log_trial_result_does_no_io(cls: type, tmp_path: Path) -> None:
    callback = cls()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 3)
    assert list(Path(trial.local_path).iterdir()) == []
    await callback.flush()
    assert list(Path(trial.local_path).iterdir()) != []


@pytest.mark.parametrize("cls", ALL_CALLBACKS)
async def test_flush_writes_off_the_event_loop_thread(cls: type, tmp_path: Path) -> None:
    callback = cls()
    trial = make_trial(tmp_path)
    threads = set()
    original = callback._append

    def spy(*args: Any) -> bool:
        threads.add(threading.get_ident())
        return original(*args)

    callback._append = spy
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 2)
    await callback.flush()
    assert threads
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("cls", ALL_CALLBACKS)
async def test_each_file_gets_one_write_per_flush(cls: type, tmp_path: Path) -> None:
    callback = cls()
    trials = [make_trial(tmp_path, i) for i in range(3)]
    for trial in trials:
        callback.on_trial_start(0, trials, trial)
    await callback.flush()  # files created at start
    writes: list[tuple[str, str]] = []
    original = callback._append

    def spy(trial: Trial, filename: str, data: Any) -> bool:
        writes.append((trial.trial_id, filename))
        return original(trial, filename, data)

    callback._append = spy
    for trial in trials:
        feed(callback, trial, 1, 50)
    await callback.flush()
    assert sorted(writes) == sorted(set(writes))
    assert {trial_id for trial_id, _ in writes} == {t.trial_id for t in trials}


# ------------------------------------------------------------------------------ JSON


async def test_json_writes_params_at_trial_start(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    await callback.flush()
    params = json.loads((Path(trial.local_path) / "params.json").read_text())
    assert params == {"lr": 0.1, "model": {"depth": 3, "act": "relu"}}
    assert (Path(trial.local_path) / "result.json").read_text() == ""


async def test_json_rewrites_params_when_the_trial_restarts_with_a_new_config(
    tmp_path: Path,
) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    await callback.flush()
    trial.config = {"lr": 0.5}
    callback.on_trial_start(1, [trial], trial)
    await callback.flush()
    assert json.loads((Path(trial.local_path) / "params.json").read_text()) == {"lr": 0.5}


async def test_json_appends_one_object_per_line_across_flushes(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 3)
    await callback.flush()
    feed(callback, trial, 4, 5)
    await callback.flush()
    lines = json_lines(trial)
    assert [line["training_iteration"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[0] == make_result(trial, 1)
    assert lines[0]["config"] == {"lr": 0.1, "model": {"depth": 3, "act": "relu"}}


async def test_json_keeps_nested_dicts_nested(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 1, info={"grad": {"norm": 2.5}, "lr": 0.1})
    await callback.flush()
    assert json_lines(trial)[0]["info"] == {"grad": {"norm": 2.5}, "lr": 0.1}


async def test_json_encodes_numpy_values_as_python_numbers(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    feed(
        callback,
        trial,
        1,
        1,
        f32=np.float32(0.5),
        f64=np.float64(0.25),
        i64=np.int64(7),
        flag=np.bool_(True),
        arr=np.arange(3),
        matrix=np.eye(2),
    )
    await callback.flush()
    line = json_lines(trial)[0]
    assert line["f32"] == 0.5
    assert line["f64"] == 0.25
    assert line["i64"] == 7
    assert line["flag"] is True
    assert line["arr"] == [0, 1, 2]
    assert line["matrix"] == [[1.0, 0.0], [0.0, 1.0]]


async def test_json_writes_nan_and_infinity_like_python_json(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 1, bad=float("nan"), big=float("inf"), small=np.float32("-inf"))
    await callback.flush()
    raw = (Path(trial.local_path) / "result.json").read_text()
    assert '"bad": NaN' in raw
    assert '"big": Infinity' in raw
    assert '"small": -Infinity' in raw
    line = json_lines(trial)[0]
    assert math.isnan(line["bad"])


async def test_json_encodes_sets_and_objects_safely(tmp_path: Path) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 1, tags={"a"}, obj=Opaque(), path=Path("/x"))
    await callback.flush()
    line = json_lines(trial)[0]
    assert line["tags"] == ["a"]
    assert line["obj"] == "<Opaque>"
    assert line["path"] == repr(Path("/x"))


def test_encode_json_survives_non_string_keys_and_cycles() -> None:
    cyclic: dict[str, Any] = {"a": 1}
    cyclic["self"] = cyclic
    assert json.loads(_encode_json({(1, 2): "tuple key"})) == {"(1, 2)": "tuple key"}
    decoded = json.loads(_encode_json(cyclic))
    assert decoded["a"] == 1
    assert "self" in decoded


async def test_json_results_arriving_during_a_flush_go_to_the_next_one(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    gate = Gate(callback, "_write_batch")
    feed(callback, trial, 1, 3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(callback.flush)
        await gate.entered.wait()
        feed(callback, trial, 4, 6)  # the writer thread holds the first batch
        gate.open()
    assert [r["training_iteration"] for r in json_lines(trial)] == [1, 2, 3]
    await callback.flush()
    assert [r["training_iteration"] for r in json_lines(trial)] == [1, 2, 3, 4, 5, 6]


async def test_json_concurrent_flushes_keep_line_order(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    gate = Gate(callback, "_write_batch")
    feed(callback, trial, 1, 2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(callback.flush)
        await gate.entered.wait()
        feed(callback, trial, 3, 4)
        tg.start_soon(callback.flush)  # waits for the first flush, then writes 3-4
        await anyio.sleep(0)
        gate.open()
    assert [r["training_iteration"] for r in json_lines(trial)] == [1, 2, 3, 4]


async def test_cancelled_flush_still_writes_the_batch_it_took(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    gate = Gate(callback, "_write_batch")
    feed(callback, trial, 1, 3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(callback.flush)
        await gate.entered.wait()
        tg.cancel_scope.cancel()
        gate.open()
    assert [r["training_iteration"] for r in json_lines(trial)] == [1, 2, 3]


async def test_json_keeps_a_copy_of_each_result(tmp_path: Path) -> None:
    callback = JsonLoggerCallback()
    trial = make_trial(tmp_path)
    result = make_result(trial, 1)
    callback.on_trial_result(1, [trial], trial, result)
    result["added_later"] = True
    await callback.flush()
    assert "added_later" not in json_lines(trial)[0]


async def test_unwritable_trial_dir_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    callback = JsonLoggerCallback()
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    trial = make_trial(tmp_path)
    trial.local_path = str(blocker / "trial")  # a path below a file: cannot be created
    feed(callback, trial, 1, 2)
    await callback.flush()
    feed(callback, trial, 3, 4)
    await callback.flush()
    warnings = [r for r in caplog.records if "could not write" in r.getMessage()]
    assert len(warnings) == 1


# ------------------------------------------------------------------------------- CSV


async def test_csv_header_is_the_first_result_flattened_with_config_columns(
    tmp_path: Path,
) -> None:
    callback = CSVLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 2, info={"grad": {"norm": 2.5}})
    await callback.flush()
    header, *rows = csv_rows(trial)
    assert "info/grad/norm" in header
    assert {"config/lr", "config/model/depth", "config/model/act"} <= set(header)
    assert "config" not in header
    assert "info" not in header
    assert len(rows) == 2
    row = dict(zip(header, rows[1]))
    assert row["training_iteration"] == "2"
    assert row["info/grad/norm"] == "2.5"
    assert row["config/model/depth"] == "3"


async def test_csv_keeps_the_first_header_when_keys_change(tmp_path: Path) -> None:
    callback = CSVLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_result(1, [trial], trial, {"a": 1, "b": 2})
    await callback.flush()
    callback.on_trial_result(2, [trial], trial, {"a": 3, "c": 4})  # b missing, c new
    callback.on_trial_result(3, [trial], trial, {"b": 5})
    await callback.flush()
    assert csv_rows(trial) == [["a", "b"], ["1", "2"], ["3", ""], ["", "5"]]


async def test_csv_is_readable_by_pandas(tmp_path: Path) -> None:
    callback = CSVLoggerCallback()
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 4, acc=np.float32(0.75), note='a, "quoted" value')
    await callback.flush()
    frame = pd.read_csv(Path(trial.local_path) / "progress.csv")
    assert list(frame["training_iteration"]) == [1, 2, 3, 4]
    assert list(frame["acc"]) == [0.75] * 4
    assert frame["note"][0] == 'a, "quoted" value'
    assert frame["config/lr"][0] == 0.1


async def test_csv_resumed_trial_appends_under_the_existing_header(tmp_path: Path) -> None:
    trial = make_trial(tmp_path)
    (Path(trial.local_path) / "progress.csv").write_text("a,b\n1,2\n")
    callback = CSVLoggerCallback()  # a new process: knows nothing of the file
    callback.on_trial_start(0, [trial], trial)
    callback.on_trial_result(2, [trial], trial, {"b": 4, "a": 3, "z": 0})
    await callback.flush()
    assert csv_rows(trial) == [["a", "b"], ["1", "2"], ["3", "4"]]


async def test_csv_restarted_trial_after_end_keeps_one_header(tmp_path: Path) -> None:
    callback = CSVLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_result(1, [trial], trial, {"a": 1})
    callback.on_trial_complete(1, [trial], trial)
    await callback.flush()
    callback.on_trial_start(2, [trial], trial)
    callback.on_trial_result(2, [trial], trial, {"a": 2})
    await callback.flush()
    assert csv_rows(trial) == [["a"], ["1"], ["2"]]


# ------------------------------------------------------------------------ TensorBoard


async def test_tbx_writes_one_event_file_in_the_trial_dir(tmp_path: Path) -> None:
    callback = TBXLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 2)
    await callback.flush()
    feed(callback, trial, 3, 4)
    await callback.flush()
    assert len(event_files(trial)) == 1


async def test_tbx_scalars_have_ray_tune_tags_steps_and_values(tmp_path: Path) -> None:
    callback = TBXLoggerCallback()
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 3, info={"grad": {"norm": 2.5}}, flag=True, name="text")
    await callback.flush()
    acc = accumulator(trial)
    tags = set(acc.Tags()["scalars"])
    assert {
        "ray/tune/mean_loss",
        "ray/tune/info/grad/norm",
        "ray/tune/flag",
        "ray/tune/time_this_iter_s",
        "ray/tune/done",
    } <= tags
    excluded = {"config/lr", "pid", "timestamp", "training_iteration", "time_total_s", "name"}
    assert not {f"ray/tune/{key}" for key in excluded} & tags
    assert not any(tag.startswith("ray/tune/config") for tag in tags)
    loss = acc.Scalars("ray/tune/mean_loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [e.value for e in acc.Scalars("ray/tune/flag")] == [1.0, 1.0, 1.0]
    assert [e.value for e in acc.Scalars("ray/tune/info/grad/norm")] == [2.5, 2.5, 2.5]


async def test_tbx_writes_one_event_per_result(tmp_path: Path) -> None:
    callback = TBXLoggerCallback()
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 5)
    await callback.flush()
    (path,) = event_files(trial)
    events = list(EventFileLoader(str(path)).Load())
    scalar_events = [e for e in events if e.HasField("summary")]
    assert len(scalar_events) == 5
    assert len(scalar_events[0].summary.value) > 1  # all of a result in one event


async def test_tbx_accepts_numpy_scalars(tmp_path: Path) -> None:
    callback = TBXLoggerCallback()
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 1, f32=np.float32(0.5), i64=np.int64(3), b=np.bool_(False))
    feed(callback, trial, 2, 2, arr=np.arange(3))  # not a scalar: skipped
    await callback.flush()
    acc = accumulator(trial)
    assert acc.Scalars("ray/tune/f32")[0].value == 0.5
    assert acc.Scalars("ray/tune/i64")[0].value == 3.0
    assert acc.Scalars("ray/tune/b")[0].value == 0.0
    assert "ray/tune/arr" not in acc.Tags()["scalars"]


async def test_tbx_writes_hparams_when_the_trial_ends(tmp_path: Path) -> None:
    callback = TBXLoggerCallback()
    trial = make_trial(tmp_path, config={"lr": 0.01, "opt": {"name": "adam"}, "fn": len})
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 2)
    await callback.flush()
    with pytest.raises(KeyError):  # nothing before the trial ends
        accumulator(trial).PluginTagToContent("hparams")
    callback.on_trial_complete(2, [trial], trial)
    await callback.flush()
    content = accumulator(trial).PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content
    data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = data.session_start_info.hparams
    assert hparams["lr"].number_value == pytest.approx(0.01)
    assert hparams["opt/name"].string_value == "adam"
    assert "fn" not in hparams
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metric_tags = {m.name.tag for m in experiment.experiment.metric_infos}
    assert "ray/tune/mean_loss" in metric_tags


async def test_tbx_large_flushes_write_valid_records(tmp_path: Path) -> None:
    # Many events per trial in one flush; TensorBoard checks every CRC.
    callback = TBXLoggerCallback()
    trials = [make_trial(tmp_path, i) for i in range(4)]
    for trial in trials:
        feed(callback, trial, 1, 300)
    await callback.flush()
    for trial in trials:
        (path,) = event_files(trial)
        events = list(EventFileLoader(str(path)).Load())
        assert len(events) == 301  # plus the file version record
        steps = [e.step for e in accumulator(trial).Scalars("ray/tune/mean_loss")]
        assert steps == list(range(1, 301))


def test_tfrecord_framing_matches_tensorboardx() -> None:
    from tensorboardX.record_writer import masked_crc32c as tbx_masked_crc32c

    rng = np.random.default_rng(0)
    lengths = [0, 1, 8, 4096, 5000, *rng.integers(1, 600, size=50).tolist()]
    chunks = [rng.integers(0, 256, size=n, dtype=np.uint8).tobytes() for n in lengths]
    assert [masked_crc32c(c) for c in chunks] == [tbx_masked_crc32c(c) for c in chunks]
    for chunk, record in zip(chunks, frame_records(chunks)):
        header = struct.pack("<Q", len(chunk))
        expected = header + struct.pack("<I", tbx_masked_crc32c(header)) + chunk
        assert record == expected + struct.pack("<I", tbx_masked_crc32c(chunk))


async def test_tbx_event_files_of_several_trials_stay_separate(tmp_path: Path) -> None:
    callback = TBXLoggerCallback()
    trials = [make_trial(tmp_path, i) for i in range(3)]
    for i, trial in enumerate(trials):
        feed(callback, trial, 1, i + 1)
    await callback.flush()
    for i, trial in enumerate(trials):
        assert len(accumulator(trial).Scalars("ray/tune/mean_loss")) == i + 1


# --------------------------------------------------------------------- legacy loggers


class RecordingLogger(Logger):
    calls: list[tuple[str, Any]] = []

    def _init(self) -> None:
        self.calls.append(("init", (self.config, self.logdir, threading.get_ident())))

    def on_result(self, result: dict[str, Any]) -> None:
        self.calls.append(("result", result["training_iteration"]))

    def update_config(self, config: dict[str, Any]) -> None:
        self.calls.append(("update_config", config))

    def flush(self) -> None:
        self.calls.append(("flush", None))

    def close(self) -> None:
        self.calls.append(("close", None))


async def test_legacy_loggers_replay_the_hooks_in_a_worker_thread(tmp_path: Path) -> None:
    RecordingLogger.calls = []
    callback = LegacyLoggerCallback([RecordingLogger])
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    feed(callback, trial, 1, 3)
    assert RecordingLogger.calls == []  # nothing runs on the loop
    await callback.flush()
    feed(callback, trial, 4, 4)
    callback.on_trial_complete(4, [trial], trial)
    await callback.flush()
    kinds = [(kind, arg) for kind, arg in RecordingLogger.calls if kind != "init"]
    assert kinds == [
        ("result", 1),
        ("result", 2),
        ("result", 3),
        ("flush", None),
        ("result", 4),
        ("flush", None),
        ("close", None),
    ]
    ((config, logdir, thread_id),) = [arg for kind, arg in RecordingLogger.calls if kind == "init"]
    assert config == trial.config
    assert logdir == trial.local_path
    assert thread_id != threading.get_ident()


async def test_legacy_logger_gets_update_config_on_restart(tmp_path: Path) -> None:
    RecordingLogger.calls = []
    callback = LegacyLoggerCallback([RecordingLogger])
    trial = make_trial(tmp_path)
    callback.on_trial_start(0, [trial], trial)
    trial.config = {"lr": 0.2}
    callback.on_trial_start(1, [trial], trial)
    await callback.flush()
    assert ("update_config", {"lr": 0.2}) in RecordingLogger.calls


async def test_legacy_loggers_are_closed_at_experiment_end(tmp_path: Path) -> None:
    RecordingLogger.calls = []
    callback = LegacyLoggerCallback([RecordingLogger])
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 1)
    callback.on_experiment_end([trial])
    await callback.flush()
    assert RecordingLogger.calls[-1] == ("close", None)


async def test_legacy_logger_errors_propagate_from_flush(tmp_path: Path) -> None:
    class Broken(Logger):
        def on_result(self, result: dict[str, Any]) -> None:
            raise RuntimeError("logger bug")

    callback = LegacyLoggerCallback([Broken])
    trial = make_trial(tmp_path)
    feed(callback, trial, 1, 1)
    with pytest.raises(RuntimeError, match="logger bug"):
        await callback.flush()


def test_loggers_to_callbacks_wraps_legacy_loggers_after_the_defaults() -> None:
    callbacks = loggers_to_callbacks((*DEFAULT_LOGGERS, RecordingLogger))
    assert [type(c) for c in callbacks] == [*DEFAULT_LOGGERS, LegacyLoggerCallback]
    assert callbacks[-1].logger_classes == (RecordingLogger,)


def test_loggers_to_callbacks_rejects_other_objects() -> None:
    with pytest.raises(ConfigTypeError, match="`loggers`"):
        loggers_to_callbacks([JsonLoggerCallback()])


async def test_buffered_loggers_share_one_copy_of_each_result(tmp_path: Path) -> None:
    trial = make_trial(tmp_path)
    loggers = [JsonLoggerCallback(), CSVLoggerCallback(), TBXLoggerCallback()]
    first, second = make_result(trial, 1), make_result(trial, 2)
    for result in (first, second):
        for callback in loggers:
            callback.on_trial_result(result["training_iteration"], [trial], trial, result)
    buffers = [callback._results[trial] for callback in loggers]
    for i, result in enumerate((first, second)):
        entry = buffers[0][i]
        assert all(buffer[i] is entry for buffer in buffers)  # one entry, three loggers
        assert entry[0] == i + 1 and entry[2] == result and entry[2] is not result
    first["added_later"] = 1  # a key the controller adds later stays out of the files
    for callback in loggers:
        await callback.flush()
    assert [sorted(row) for row in json_lines(trial)] == [
        sorted(k for k in r if k != "added_later") for r in (first, second)
    ]
    assert len(accumulator(trial).Scalars("ray/tune/mean_loss")) == 2
