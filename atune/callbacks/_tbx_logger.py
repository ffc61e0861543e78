"""TensorBoard event files: one event per result, an HParams summary per trial.

Events are encoded by :mod:`atune.callbacks._tbevents` and framed as TFRecords
(:mod:`atune.callbacks._tfrecord`) by the writer thread.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atune._util import KEY_SEPARATOR, MAX_NESTING_DEPTH, flatten_dict
from atune.callbacks._buffered import Batch, BufferedLoggerCallback
from atune.callbacks._tbevents import (
    ScalarEncoder,
    hparams_events,
    session_start_event,
    version_event,
)
from atune.callbacks._tfrecord import frame_records
from atune.result import CONFIG, PID, TIME_TOTAL_S, TIMESTAMP, TRAINING_ITERATION

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["TBX_EXCLUDED_KEYS", "TBX_TAG_PREFIX", "TBXLoggerCallback"]

#: Prefix of every TensorBoard scalar tag, as in Ray Tune, so dashboards port as is.
TBX_TAG_PREFIX = "ray/tune/"
#: Result fields not written as TensorBoard scalars (as in Ray Tune): the config is
#: not a metric, pid/timestamp are bookkeeping, the iteration is the event's step and
#: the time is the event's wall time.
TBX_EXCLUDED_KEYS = frozenset({CONFIG, PID, TIMESTAMP, TIME_TOTAL_S, TRAINING_ITERATION})


def _scalar(value: Any) -> float | None:
    """``value`` as a TensorBoard scalar, or None if it is not a number."""
    try:
        if isinstance(value, (bool, int, float)):
            return float(value)
        # numpy (and similar) scalars: a 0-d value with a bool or real numeric dtype.
        kind = getattr(getattr(value, "dtype", None), "kind", None)
        if kind in ("b", "i", "u", "f") and getattr(value, "ndim", None) == 0:
            return float(value)
    except (OverflowError, TypeError, ValueError):  # e.g. an int beyond float range
        return None
    return None


def _scalar_tags(data: Mapping[Any, Any], prefix: str, out: dict[str, float], depth: int) -> None:
    """Collects the numeric values of a result as ``{prefix + "a/b": float}``.

    Skips :data:`TBX_EXCLUDED_KEYS` at the top level without flattening them (the
    config can be large), strings, and anything else that is not a number.
    """
    for key, value in data.items():
        kind = type(value)
        if kind is float or kind is int or kind is bool:
            if depth or key not in TBX_EXCLUDED_KEYS:
                try:
                    out[f"{prefix}{key}"] = float(value)
                except OverflowError:  # an int beyond float range
                    pass
        elif kind is str or value is None:
            continue
        elif isinstance(value, Mapping):
            if depth < MAX_NESTING_DEPTH and (depth or key not in TBX_EXCLUDED_KEYS):
                _scalar_tags(value, f"{prefix}{key}{KEY_SEPARATOR}", out, depth + 1)
        elif depth or key not in TBX_EXCLUDED_KEYS:
            number = _scalar(value)
            if number is not None:
                out[f"{prefix}{key}"] = number


@dataclass
class _EventFile:
    """Writer-thread state of one trial's TensorBoard event file."""

    path: str
    last_step: int = 0
    last_tags: dict[str, float] = field(default_factory=dict)


class TBXLoggerCallback(BufferedLoggerCallback):
    """Writes a TensorBoard event file (``events.out.tfevents.*``) per trial.

    Each result becomes ONE event, at ``step = training_iteration``, holding every
    numeric value of the result (nested dicts flattened with ``/``; bools as 0/1;
    strings and other values skipped) under the tag ``ray/tune/<key>``, as in Ray
    Tune. ``config``, ``pid``, ``timestamp``, ``time_total_s`` and
    ``training_iteration`` are not written (the step and the event's wall time carry
    the last two). When the trial ends, an HParams summary is added: the trial config
    flattened, keeping numeric, string and bool values, with the last result's tags as
    metrics.

    Events are encoded directly in protobuf wire format (the same bytes tensorboardX's
    classes would produce, without importing tensorboardX, which imports ``torch``
    when it is installed) and appended as TFRecords by the writer thread, with no
    per-trial ``SummaryWriter`` (which would start a thread and a queue per trial) and
    no open file between flushes.
    """

    def __init__(self) -> None:
        super().__init__()
        # Event file per trial; touched only by the writer thread.
        self._files: dict[Trial, _EventFile] = {}
        self._encoder = ScalarEncoder()

    def _write_batch(self, batch: Batch) -> None:
        # Serialized events per trial, in file order; framed together at the end so
        # that the CRCs of the whole flush are computed in one vectorised pass.
        out: dict[Trial, tuple[_EventFile, list[bytes]]] = {}
        encode = self._encoder.event
        for trial in batch.started:
            self._event_file(trial, out)
        for trial, entries in batch.results.items():
            state, payloads = self._event_file(trial, out)
            tags: dict[str, float] = {}
            for step, walltime, result in entries:
                tags = {}
                _scalar_tags(result, TBX_TAG_PREFIX, tags, 0)
                payloads.append(encode(walltime, int(step), tags))
            if entries:
                state.last_step, state.last_tags = int(entries[-1][0]), tags
        for trial in batch.ended:
            ended = self._files.pop(trial, None)
            if ended is not None and ended.last_tags:
                hparams = self._hparams_payloads(trial, ended)
                out.setdefault(trial, (ended, []))[1].extend(hparams)
        if batch.end_all:
            self._files.clear()

        framed = iter(frame_records([p for _, payloads in out.values() for p in payloads]))
        for trial, (state, payloads) in out.items():
            if payloads:
                data = b"".join(next(framed) for _ in payloads)
                self._append(trial, os.path.basename(state.path), data)

    def _rewind_files(
        self, trial: Trial, step: int, discarded: list[tuple[int, float, dict[str, Any]]]
    ) -> None:
        """A ``SessionLog.START`` at ``step + 1``: TensorBoard then drops the failed
        attempt's events past ``step`` (tensorboardX's ``purge_step``)."""
        state = self._files.get(trial)
        if state is None:
            return  # nothing written for it in this process
        (record,) = frame_records([session_start_event(time.time(), step + 1)])
        self._append(trial, os.path.basename(state.path), record)

    def _event_file(
        self, trial: Trial, out: dict[Trial, tuple[_EventFile, list[bytes]]]
    ) -> tuple[_EventFile, list[bytes]]:
        """The trial's event file and the list its new events go to."""
        state = self._files.get(trial)
        if state is None:
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            state = _EventFile(os.path.join(trial.local_path, name))
            self._files[trial] = state
            # Every event file starts with its version record.
            out[trial] = (state, [version_event(time.time())])
        elif trial not in out or out[trial][0] is not state:
            out[trial] = (state, [])
        return out[trial]

    def _hparams_payloads(self, trial: Trial, state: _EventFile) -> list[bytes]:
        params: dict[str, str | bool | float] = {}
        for key, value in flatten_dict(trial.config).items():
            if isinstance(value, (str, bool)):
                params[key] = value
            else:
                number = _scalar(value)
                if number is not None:
                    params[key] = number
        if not params:
            return []
        return hparams_events(time.time(), state.last_step, params, state.last_tags)
