"""Driving each kind of trainable: functions, generators, 0.7 reporters, classes, async.

Each runner calls the trainable and hands its results to the worker's ``report``
path; the worker owns the thread or task it runs on, and turns a return or an
exception into the end of the trial.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from atune._executor._buffer import TrialStopped
from atune._executor._class_checkpoint import (
    checkpoint_dir_name,
    load_class_checkpoint,
    save_class_checkpoint,
)
from atune._executor._legacy import LegacyReporter

if TYPE_CHECKING:
    from atune._executor._base import WorkerSpec
    from atune._executor._worker import TrialWorker

__all__ = ["run_async", "run_sync"]


def run_sync(worker: TrialWorker, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
    """Run a sync trainable to its end, on the calling (the worker's) thread."""
    if spec.trainable.kind == "class":
        _run_class(worker, spec, parameters)
    else:
        _run_function(worker, spec, parameters)


def _run_function(worker: TrialWorker, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
    fn = spec.trainable.trainable
    config = spec.config
    if spec.trainable.kind == "reporter":
        out = fn(config, LegacyReporter(worker), **parameters)
    elif spec.trainable.kind == "generator":
        out = None
        for item in fn(config, **parameters):
            if item is not None:
                worker._put(dict(item), None)
    else:
        out = fn(config, **parameters)
    _check_final(out, "a trainable function")
    if out is not None:
        worker._put(_final(out), None)


def _final(out: dict[str, Any]) -> dict[str, Any]:
    final = dict(out)
    final.setdefault("done", True)
    return final


def _check_final(out: Any, what: str) -> None:
    if out is not None and not isinstance(out, dict):
        raise TypeError(
            f"{what} may return a dict of final metrics or None, got {type(out).__name__}"
        )


def _run_class(worker: TrialWorker, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
    cls = spec.trainable.trainable
    obj = _reusable_instance(worker, spec) or cls(spec.config, **parameters)
    worker._trainable_obj = obj
    clean_exit = False
    try:
        if spec.restore_path:
            load_class_checkpoint(obj, spec.restore_path)
        freq = spec.checkpoint_frequency
        while not worker.stop_requested:
            result = obj.step()
            if not isinstance(result, dict):
                raise TypeError(
                    f"{cls.__name__}.step() must return a dict of metrics, "
                    f"got {type(result).__name__}"
                )
            result = dict(result)
            wanted = bool(result.pop("should_checkpoint", False))
            next_iter = worker.iteration + 1
            done = bool(result.get("done"))
            path = None
            if wanted or (freq and next_iter % freq == 0) or (done and spec.checkpoint_at_end):
                path = os.path.join(spec.trial_dir, checkpoint_dir_name(next_iter))
                save_class_checkpoint(obj, path, iteration=next_iter)
            worker._put(result, path)
            obj.log_result(result)
            if done:
                break
        clean_exit = True
    except BaseException as exc:
        clean_exit = isinstance(exc, TrialStopped)
        raise
    finally:
        worker._trainable_obj = None
        if clean_exit and spec.keep_for_reuse:
            worker._kept = obj  # reset_config() may give it the next trial
        else:
            obj.cleanup()


def _reusable_instance(worker: TrialWorker, spec: WorkerSpec) -> Any:
    """The previous trial's Trainable, switched to this trial by reset_config()."""
    obj, worker._kept = worker._kept, None
    if obj is None:
        return None
    if type(obj) is spec.trainable.trainable and obj.reset_config(dict(spec.config)):
        obj.config = dict(spec.config)
        obj.trial_id, obj.trial_name, obj.logdir = (
            spec.trial_id,
            spec.trial_name,
            spec.trial_dir,
        )
        if dict(spec.resources) != obj.trial_resources:
            obj.trial_resources = dict(spec.resources)
            obj.update_resources(dict(spec.resources))
        obj._iteration, obj._time_total = 0, 0.0
        return obj
    obj.cleanup()
    return None


async def run_async(worker: TrialWorker, spec: WorkerSpec, parameters: dict[str, Any]) -> None:
    """Run an ``async def`` trainable to its end, as the worker's task."""
    try:
        out = await spec.trainable.trainable(spec.config, **parameters)
        await worker._await_pending()  # a last report left un-awaited still counts
        _check_final(out, "an async trainable")
        if out is not None:
            await worker._report_async(_final(out), None)
    except (TrialStopped, asyncio.CancelledError):
        pass
    except BaseException as exc:
        worker._fail(exc)
    finally:
        worker._end()
