"""Per-trial result files: JSON lines, CSV and TensorBoard event files.

The three default logger callbacks write, in each trial directory:

* ``params.json``: the trial config (rewritten whenever the trial (re)starts);
* ``result.json``: one JSON object per line, one line per result;
* ``progress.csv``: one row per result, header from the first result;
* ``events.out.tfevents.<time>.<host>``: one TensorBoard event per result.

Hooks run on the controller's event loop, at tens of thousands of results per
second, so :meth:`~atune.callbacks.LoggerCallback.log_trial_result` only appends the
result to an in-memory buffer. :meth:`flush` takes the whole buffer (swapping in an
empty one before it awaits anything, so results arriving meanwhile go to the next
flush) and hands it to ONE worker-thread job, which encodes every result and appends
each trial's lines to each file with one ``write`` call. One thread job per flush,
rather than one ``aiofiles`` call per file, keeps the per-flush cost on the loop
constant however many trials reported (measured: ~380 us of loop time per file with
aiofiles open/write/close, against ~12 us per file inside one thread job).

Files are opened, appended to and closed at every flush, so no file descriptor is
held per running trial (1,000 concurrent trials would otherwise need 3,000).

Legacy (Ray Tune 0.7) per-trial :class:`Logger` classes run through
:class:`LegacyLoggerCallback`, which calls them from the same kind of thread job.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from atune.callbacks._base import Callback, LoggerCallback
from atune.errors import ConfigTypeError
from atune.result import (
    CONFIG,
    PARAMS_FILE,
    PID,
    PROGRESS_FILE,
    RESULT_FILE,
    TIME_TOTAL_S,
    TIMESTAMP,
    TRAINING_ITERATION,
)

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = [
    "DEFAULT_LOGGERS",
    "CSVLoggerCallback",
    "JsonLoggerCallback",
    "LegacyLoggerCallback",
    "Logger",
    "TBXLoggerCallback",
    "loggers_to_callbacks",
]

_log = logging.getLogger(__name__)

#: Separator used to flatten nested result dicts into column names and tags.
FLATTEN_SEPARATOR = "/"
#: Deeper (or self-referencing) dicts are kept as one value instead of recursing,
#: so a pathological result cannot exhaust the stack of the writer thread.
MAX_NESTING_DEPTH = 32
#: Prefix of every TensorBoard scalar tag, as in Ray Tune, so dashboards port as is.
TBX_TAG_PREFIX = "ray/tune/"
#: Result fields not written as TensorBoard scalars (as in Ray Tune): the config is
#: not a metric, pid/timestamp are bookkeeping, the iteration is the event's step and
#: the time is the event's wall time.
TBX_EXCLUDED_KEYS = frozenset({CONFIG, PID, TIMESTAMP, TIME_TOTAL_S, TRAINING_ITERATION})


# --------------------------------------------------------------------------- encoding


#: Leaf types checked by identity before the slower ``isinstance(value, Mapping)``.
_LEAF_TYPES = frozenset({int, float, str, bool, type(None)})


def _flatten(
    data: Mapping[Any, Any],
    prefix: str = "",
    out: dict[str, Any] | None = None,
    depth: int = 0,
) -> dict[str, Any]:
    """Flattens nested mappings into ``{"a/b": value}``; empty mappings stay values."""
    if out is None:
        out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if (
            type(value) not in _LEAF_TYPES
            and isinstance(value, Mapping)
            and value
            and depth < MAX_NESTING_DEPTH
        ):
            _flatten(value, name + FLATTEN_SEPARATOR, out, depth + 1)
        else:
            out[name] = value
    return out


def _json_default(value: Any) -> Any:
    """``json.dumps`` hook for values json cannot encode itself.

    numpy scalars and arrays (and anything else with ``tolist``, e.g. torch tensors)
    become Python numbers and lists, sets become lists, anything else its ``repr``.
    """
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        try:
            return tolist()
        except Exception:  # a foreign tolist() that fails: fall through to repr
            pass
    if isinstance(value, (set, frozenset)):
        return list(value)
    return repr(value)


def _sanitize(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: the slow path, used only when json.dumps failed.

    Handles what the fast path cannot: non-string dict keys, self-references and
    containers mutated while they were being encoded.
    """
    if depth >= MAX_NESTING_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in list(value.items()):
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = repr(key)
            out[str(key)] = _sanitize(item, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_sanitize(item, depth + 1) for item in list(value)]
    return value


def _encode_json(value: Any, **kwargs: Any) -> str:
    """Encodes ``value`` as JSON, never failing on odd values.

    NaN and infinities are written as ``NaN``/``Infinity`` (Python's json default).

    Args:
        value: Any object, typically a result dict or a config.
        **kwargs: Passed to :func:`json.dumps` (e.g. ``indent``, ``sort_keys``).

    Returns:
        The JSON text.
    """
    try:
        return json.dumps(value, default=_json_default, **kwargs)
    except (TypeError, ValueError, RecursionError, RuntimeError):
        return json.dumps(_sanitize(value), default=_json_default, **kwargs)


# ------------------------------------------------------------------------ base class


@dataclass
class _Batch:
    """What one flush hands to the writer thread (all taken from the loop at once)."""

    #: Trials that (re)started since the last flush, with their config at that moment.
    started: dict[Trial, dict[str, Any]]
    #: Buffered results per trial: ``(step, wall time, shallow copy of the result)``.
    results: dict[Trial, list[tuple[int, float, dict[str, Any]]]]
    #: Trials that ended since the last flush, with ``failed``.
    ended: dict[Trial, bool]
    #: The experiment ended: forget every trial after this batch.
    end_all: bool = False

    @property
    def empty(self) -> bool:
        return not (self.started or self.results or self.ended or self.end_all)


class _BufferedLoggerCallback(LoggerCallback):
    """Buffers on the loop; writes in one worker-thread job per :meth:`flush`.

    Subclasses implement :meth:`_write_batch`, which runs in the worker thread and is
    the only code touching their per-trial writer state (flushes are serialised by a
    lock, so two jobs never overlap and lines keep their order).
    """

    def __init__(self) -> None:
        self._started: dict[Trial, dict[str, Any]] = {}
        self._results: dict[Trial, list[tuple[int, float, dict[str, Any]]]] = {}
        self._ended: dict[Trial, bool] = {}
        self._end_all = False
        self._lock: anyio.Lock | None = None
        # Trials whose files could not be written; warned about once each.
        self._warned: set[str] = set()

    # Hooks: on the event loop, O(1) each.

    def log_trial_start(self, trial: Trial) -> None:
        self._started[trial] = trial.config

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        step = result.get(TRAINING_ITERATION, iteration)
        # The shallow copy keeps the writer thread from seeing top-level keys the
        # controller might add later (which would also break iteration mid-encode).
        entry = (step, time.time(), dict(result))
        buffer = self._results.get(trial)
        if buffer is None:
            self._results[trial] = [entry]
        else:
            buffer.append(entry)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._ended[trial] = failed

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self._end_all = True

    async def flush(self) -> None:
        """Writes everything buffered so far, in one worker-thread job.

        Safe to call while results keep arriving and concurrently with itself: the
        buffer is swapped before the first await, and flushes run one at a time. Once
        a flush has taken the buffer it finishes writing even if cancelled, so a
        cancelled flush loses no result.
        """
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            batch = _Batch(self._started, self._results, self._ended, self._end_all)
            if batch.empty:
                return
            self._started, self._results, self._ended, self._end_all = {}, {}, {}, False
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._write_batch, batch)

    def _write_batch(self, batch: _Batch) -> None:
        raise NotImplementedError

    # Helpers for the writer thread.

    def _warn_once(self, trial: Trial, what: str, exc: BaseException) -> None:
        if trial.trial_id in self._warned:
            return
        self._warned.add(trial.trial_id)
        _log.warning(
            "%s could not write %s for trial %s (further errors for it are not logged): %s",
            type(self).__name__,
            what,
            trial.name,
            exc,
        )

    def _append(self, trial: Trial, filename: str, data: str | bytes) -> bool:
        """Appends ``data`` to ``<trial dir>/filename`` with one write; False on error."""
        if not trial.local_path:
            self._warn_once(trial, filename, ValueError("the trial has no directory"))
            return False
        path = os.path.join(trial.local_path, filename)
        mode = "ab" if isinstance(data, bytes) else "a"
        encoding = None if isinstance(data, bytes) else "utf-8"
        try:
            try:
                with open(path, mode, encoding=encoding, newline="" if encoding else None) as f:
                    f.write(data)
            except FileNotFoundError:
                os.makedirs(trial.local_path, exist_ok=True)
                with open(path, mode, encoding=encoding, newline="" if encoding else None) as f:
                    f.write(data)
        except OSError as exc:
            self._warn_once(trial, filename, exc)
            return False
        return True


# ------------------------------------------------------------------------------ JSON


class JsonLoggerCallback(_BufferedLoggerCallback):
    """Writes ``params.json`` and ``result.json`` (one JSON object per line).

    ``params.json`` holds the trial config, indented and with sorted keys; it is
    (re)written when the trial starts or restarts. Each result, ``config`` included,
    becomes one line of ``result.json``. numpy values become Python numbers and lists,
    sets become lists, other objects their ``repr``; NaN and infinities are written as
    ``NaN``/``Infinity``, as Python's json does.

    Example:
        >>> from atune.callbacks import JsonLoggerCallback
        >>> callbacks = [JsonLoggerCallback()]  # RunConfig(callbacks=callbacks)
    """

    def _write_batch(self, batch: _Batch) -> None:
        for trial, config in batch.started.items():
            self._write_params(trial, config)
            self._append(trial, RESULT_FILE, "")  # result.json exists from the start
        for trial, entries in batch.results.items():
            lines = []
            for _step, _walltime, result in entries:
                lines.append(_encode_json(result))
                lines.append("\n")
            self._append(trial, RESULT_FILE, "".join(lines))

    def _write_params(self, trial: Trial, config: dict[str, Any]) -> None:
        if not trial.local_path:
            return
        text = _encode_json(config, indent=2, sort_keys=True)
        path = os.path.join(trial.local_path, PARAMS_FILE)
        tmp = f"{path}.tmp"
        try:
            os.makedirs(trial.local_path, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)  # readers never see a half-written params.json
        except OSError as exc:
            self._warn_once(trial, PARAMS_FILE, exc)


# ------------------------------------------------------------------------------- CSV


class CSVLoggerCallback(_BufferedLoggerCallback):
    """Writes ``progress.csv``: one row per result.

    Nested dicts are flattened with ``/`` (``config`` too, into ``config/<key>``
    columns). The header comes from the trial's first result and never changes, so
    the file stays a valid CSV: a later result's missing keys become empty cells and
    its extra keys are dropped (``result.json`` keeps everything). A trial resumed
    into a directory that already has a ``progress.csv`` keeps appending under that
    file's header.
    """

    def __init__(self) -> None:
        super().__init__()
        # Header per trial; touched only by the writer thread.
        self._headers: dict[Trial, list[str]] = {}

    def _write_batch(self, batch: _Batch) -> None:
        for trial in batch.started:
            self._append(trial, PROGRESS_FILE, "")
        for trial, entries in batch.results.items():
            header = self._headers.get(trial)
            if header is None:
                header = self._existing_header(trial)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            if header is None:
                header = list(_flatten(entries[0][2]))
                writer.writerow(header)
            for _step, _walltime, result in entries:
                flat = _flatten(result)
                writer.writerow([flat.get(key) for key in header])
            if self._append(trial, PROGRESS_FILE, out.getvalue()):
                self._headers[trial] = header
        for trial in batch.ended:
            self._headers.pop(trial, None)
        if batch.end_all:
            self._headers.clear()

    def _existing_header(self, trial: Trial) -> list[str] | None:
        """The header of a ``progress.csv`` written before (a resumed trial), if any."""
        path = os.path.join(trial.local_path, PROGRESS_FILE)
        try:
            with open(path, encoding="utf-8", newline="") as f:
                first = f.readline()
        except OSError:
            return None
        if not first.strip():
            return None
        return next(csv.reader([first]))


# ------------------------------------------------------------------------ TensorBoard


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
                _scalar_tags(value, f"{prefix}{key}{FLATTEN_SEPARATOR}", out, depth + 1)
        elif depth or key not in TBX_EXCLUDED_KEYS:
            number = _scalar(value)
            if number is not None:
                out[f"{prefix}{key}"] = number


#: Batches with fewer TFRecord CRCs than this use tensorboardX's per-record CRC: below
#: it, numpy's fixed cost per byte position exceeds the pure-Python loop (~37 us/record).
CRC_VECTOR_MIN_BATCH = 64
#: Records longer than this get the per-record CRC, so that one huge result cannot
#: inflate the padded ``records x bytes`` matrix of the vectorised CRC.
CRC_VECTOR_MAX_BYTES = 4096
#: Rows of one vectorised CRC block: bounds that matrix to 16 MiB.
CRC_VECTOR_MAX_ROWS = 4096
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_CRC_TABLE: Any = None


def _crc_table() -> Any:
    """The CRC-32C (Castagnoli, reflected) byte table as a numpy array."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        import numpy as np

        table = np.zeros(256, dtype=np.uint32)
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            table[i] = crc
        _CRC_TABLE = table
    return _CRC_TABLE


def _crc32c_block(chunks: list[bytes]) -> list[int]:
    """CRC-32C of many byte strings at once: one numpy step per byte position.

    CPython has no native CRC-32C and tensorboardX falls back to a pure-Python loop
    unless the optional ``crc32c`` package is installed; stepping all records of a
    flush together is ~10x faster than that loop at a few hundred records.
    """
    import numpy as np

    table = _crc_table()
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    order = np.argsort(-lengths, kind="stable")  # longest first: active rows are a prefix
    longest = int(lengths[order[0]])
    data = np.zeros((len(chunks), longest), dtype=np.uint8)
    for row, index in enumerate(order.tolist()):
        chunk = chunks[index]
        data[row, : len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
    # active[i]: how many chunks are longer than i.
    active = np.searchsorted(-lengths[order], -np.arange(longest), side="left")
    crc = np.full(len(chunks), 0xFFFFFFFF, dtype=np.uint32)
    for i, rows in enumerate(active.tolist()):
        head = crc[:rows]
        crc[:rows] = table[(head ^ data[:rows, i]) & 0xFF] ^ (head >> 8)
    out = np.empty_like(crc)
    out[order] = crc ^ np.uint32(0xFFFFFFFF)
    return [int(c) for c in out.tolist()]


def _masked_crc32c_many(chunks: list[bytes]) -> list[int]:
    """The TFRecord (masked) CRC-32C of each chunk."""
    from tensorboardX.crc32c import crc32c

    crcs: list[int] = [0] * len(chunks)
    vector = [i for i, c in enumerate(chunks) if 0 < len(c) <= CRC_VECTOR_MAX_BYTES]
    if len(vector) < CRC_VECTOR_MIN_BATCH:
        vector = []
    for start in range(0, len(vector), CRC_VECTOR_MAX_ROWS):
        block = vector[start : start + CRC_VECTOR_MAX_ROWS]
        for i, crc in zip(block, _crc32c_block([chunks[i] for i in block])):
            crcs[i] = crc
    done = set(vector)
    for i, chunk in enumerate(chunks):
        if i not in done:
            crcs[i] = crc32c(chunk)
    return [(((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF for c in crcs]


def _frame_records(payloads: list[bytes]) -> list[bytes]:
    """Frames each payload as a TFRecord: length, its CRC, the payload, its CRC."""
    headers = [_U64.pack(len(p)) for p in payloads]
    crcs = _masked_crc32c_many(headers + payloads)
    n = len(payloads)
    return [
        b"".join((header, _U32.pack(header_crc), payload, _U32.pack(payload_crc)))
        for header, header_crc, payload, payload_crc in zip(headers, crcs[:n], payloads, crcs[n:])
    ]


@dataclass
class _EventFile:
    """Writer-thread state of one trial's TensorBoard event file."""

    path: str
    last_step: int = 0
    last_tags: dict[str, float] = field(default_factory=dict)


class TBXLoggerCallback(_BufferedLoggerCallback):
    """Writes a TensorBoard event file (``events.out.tfevents.*``) per trial.

    Each result becomes ONE event, at ``step = training_iteration``, holding every
    numeric value of the result (nested dicts flattened with ``/``; bools as 0/1;
    strings and other values skipped) under the tag ``ray/tune/<key>``, as in Ray
    Tune. ``config``, ``pid``, ``timestamp``, ``time_total_s`` and
    ``training_iteration`` are not written (the step and the event's wall time carry
    the last two). When the trial ends, an HParams summary is added: the trial config
    flattened, keeping numeric, string and bool values, with the last result's tags as
    metrics.

    Events are built with tensorboardX's protobuf classes and appended as TFRecords by
    the writer thread, with no per-trial ``SummaryWriter`` (which would start a thread
    and a queue per trial) and no open file between flushes.
    """

    def __init__(self) -> None:
        super().__init__()
        # Event file per trial; touched only by the writer thread.
        self._files: dict[Trial, _EventFile] = {}

    def _write_batch(self, batch: _Batch) -> None:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        # Serialized events per trial, in file order; framed together at the end so
        # that the CRCs of the whole flush are computed in one vectorised pass.
        out: dict[Trial, tuple[_EventFile, list[bytes]]] = {}
        for trial in batch.started:
            self._event_file(trial, Event, out)
        for trial, entries in batch.results.items():
            state, payloads = self._event_file(trial, Event, out)
            for step, walltime, result in entries:
                tags: dict[str, float] = {}
                _scalar_tags(result, TBX_TAG_PREFIX, tags, 0)
                event = Event(
                    wall_time=walltime,
                    step=int(step),
                    summary=Summary(
                        value=[Summary.Value(tag=t, simple_value=v) for t, v in tags.items()]
                    ),
                )
                payloads.append(event.SerializeToString())
                state.last_step, state.last_tags = int(step), tags
        for trial in batch.ended:
            ended = self._files.pop(trial, None)
            if ended is not None and ended.last_tags:
                hparams = self._hparams_payloads(trial, ended, Event)
                out.setdefault(trial, (ended, []))[1].extend(hparams)
        if batch.end_all:
            self._files.clear()

        framed = iter(_frame_records([p for _, payloads in out.values() for p in payloads]))
        for trial, (state, payloads) in out.items():
            if payloads:
                data = b"".join(next(framed) for _ in payloads)
                self._append(trial, os.path.basename(state.path), data)

    def _event_file(
        self, trial: Trial, event_cls: Any, out: dict[Trial, tuple[_EventFile, list[bytes]]]
    ) -> tuple[_EventFile, list[bytes]]:
        """The trial's event file and the list its new events go to."""
        state = self._files.get(trial)
        if state is None:
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            state = _EventFile(os.path.join(trial.local_path, name))
            self._files[trial] = state
            # Every event file starts with its version record.
            version = event_cls(wall_time=time.time(), file_version="brain.Event:2")
            out[trial] = (state, [version.SerializeToString()])
        elif trial not in out or out[trial][0] is not state:
            out[trial] = (state, [])
        return out[trial]

    def _hparams_payloads(self, trial: Trial, state: _EventFile, event_cls: Any) -> list[bytes]:
        try:
            from tensorboardX.summary import hparams
        except ImportError:  # a tensorboardX without HParams support
            return []
        params: dict[str, str | bool | float] = {}
        for key, value in _flatten(trial.config).items():
            if isinstance(value, (str, bool)):
                params[key] = value
            else:
                number = _scalar(value)
                if number is not None:
                    params[key] = number
        if not params:
            return []
        now = time.time()
        return [
            event_cls(wall_time=now, step=state.last_step, summary=s).SerializeToString()
            for s in hparams(hparam_dict=params, metric_dict=state.last_tags)
        ]


# --------------------------------------------------------------------- legacy loggers


class Logger:
    """Per-trial logger of the Ray Tune 0.7 API (deprecated there, kept for porting).

    One instance is created per trial by :class:`LegacyLoggerCallback`. Its methods
    are called from a worker thread, so they may do blocking I/O. Subclasses override
    :meth:`on_result` and, when they hold resources, :meth:`flush` and :meth:`close`;
    :meth:`_init` is the 0.7 hook for setup code.

    Args:
        config: The trial config.
        logdir: The trial directory.
        trial: The trial itself.

    Example:
        >>> class PrintLogger(Logger):
        ...     def on_result(self, result):
        ...         print("PrintLogger", result["training_iteration"])
    """

    def __init__(self, config: dict[str, Any], logdir: str, trial: Trial | None = None) -> None:
        self.config = config
        self.logdir = logdir
        self.trial = trial
        self._init()

    def _init(self) -> None:
        """Setup hook for subclasses (0.7 API)."""

    def on_result(self, result: dict[str, Any]) -> None:
        """Records one result."""
        raise NotImplementedError

    def update_config(self, config: dict[str, Any]) -> None:
        """The trial restarted with ``config`` (e.g. after a PBT exploit)."""
        self.config = config

    def flush(self) -> None:
        """Writes what was recorded to disk."""

    def close(self) -> None:
        """Releases resources; the logger is not used afterwards."""


class LegacyLoggerCallback(LoggerCallback):
    """Runs 0.7-style :class:`Logger` classes, one instance per class and trial.

    The hooks only record what happened, in order; :meth:`flush` replays it in ONE
    worker-thread job: create the loggers of a started trial (or call their
    ``update_config`` on a restart), ``on_result`` for each result, ``flush`` for each
    logger that got results, and ``close`` for the loggers of ended trials. Exceptions
    raised by a logger propagate out of :meth:`flush`.

    Args:
        logger_classes: The :class:`Logger` subclasses to instantiate per trial.
    """

    def __init__(self, logger_classes: Iterable[type[Logger]]) -> None:
        self.logger_classes = tuple(logger_classes)
        # (trial, op, payload) in hook order; swapped out by flush.
        self._ops: list[tuple[Trial, str, Any]] = []
        self._lock: anyio.Lock | None = None
        # Loggers per trial; touched only by the writer thread.
        self._loggers: dict[Trial, list[Logger]] = {}

    def log_trial_start(self, trial: Trial) -> None:
        self._ops.append((trial, "start", trial.config))

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        self._ops.append((trial, "result", dict(result)))

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._ops.append((trial, "end", failed))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for trial in trials:
            self._ops.append((trial, "end", False))

    async def flush(self) -> None:
        """Replays the recorded hooks on the loggers, in one worker-thread job."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            ops, self._ops = self._ops, []
            if ops:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._replay, ops)

    def _trial_loggers(self, trial: Trial) -> list[Logger]:
        loggers = self._loggers.get(trial)
        if loggers is None:
            loggers = [
                cls(config=trial.config, logdir=trial.local_path, trial=trial)
                for cls in self.logger_classes
            ]
            self._loggers[trial] = loggers
        return loggers

    def _replay(self, ops: list[tuple[Trial, str, Any]]) -> None:
        to_flush: dict[Trial, list[Logger]] = {}
        for trial, op, payload in ops:
            if op == "start":
                if trial in self._loggers:
                    for logger in self._loggers[trial]:
                        logger.update_config(payload)
                else:
                    self._trial_loggers(trial)
            elif op == "result":
                loggers = self._trial_loggers(trial)
                for logger in loggers:
                    logger.on_result(payload)
                to_flush[trial] = loggers
            else:  # "end"
                to_flush.pop(trial, None)
                for logger in self._loggers.pop(trial, []):
                    logger.flush()
                    logger.close()
        for loggers in to_flush.values():
            for logger in loggers:
                logger.flush()


#: The logger callbacks created when none are given: JSON, CSV and TensorBoard.
DEFAULT_LOGGERS: tuple[type[LoggerCallback], ...] = (
    JsonLoggerCallback,
    CSVLoggerCallback,
    TBXLoggerCallback,
)


def loggers_to_callbacks(loggers: Iterable[type]) -> list[Callback]:
    """Turns a 0.7-style ``loggers=`` sequence into callbacks.

    Callback classes (such as those of :data:`DEFAULT_LOGGERS`) are instantiated;
    :class:`Logger` subclasses are gathered into one :class:`LegacyLoggerCallback`.
    So ``loggers=DEFAULT_LOGGERS + (MyLogger,)`` keeps the default files and adds
    ``MyLogger``.

    Args:
        loggers: Classes, each a :class:`Callback` or a :class:`Logger` subclass.

    Returns:
        The callbacks, in the order given, the legacy adapter last.

    Raises:
        ConfigTypeError: An entry is neither.
    """
    callbacks: list[Callback] = []
    legacy: list[type[Logger]] = []
    for cls in loggers:
        if isinstance(cls, type) and issubclass(cls, Callback):
            callbacks.append(cls())
        elif isinstance(cls, type) and issubclass(cls, Logger):
            legacy.append(cls)
        else:
            raise ConfigTypeError(
                f"`loggers` entries must be Logger or LoggerCallback classes, got {cls!r}"
            )
    if legacy:
        callbacks.append(LegacyLoggerCallback(legacy))
    return callbacks
