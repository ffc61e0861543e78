"""The experiment journal: every change to an experiment, appended to disk as it happens.

Files, in the experiment directory::

    journal/snapshot-000007.msgpack   the whole state when segment 7 began
    journal/segment-000007.log        every change since, one framed record each

A record is ``<u32 length><u32 crc32><msgpack payload>`` (big endian), so a record
torn by a crash is recognised (short, or a CRC mismatch) and replay stops before
it. Snapshots are written atomically (a temp file, fsync, rename, fsync of the
directory) once the current segment has grown to twice the size of the last snapshot
(at least :data:`MIN_SEGMENT_BYTES`), so the cost per result stays constant however
large the experiment grows: appending a record costs the same at 10 trials as at
10,000, and the snapshots' cost, amortised over the records between them, too. The
previous snapshot and its segment are kept until the next one is written: when the
newest snapshot is damaged, restore falls back to the one before.

The journal is a subscriber of the event bus (:class:`JournalSink`, BACKPRESSURE): it
sees every event in order, and keeps a mirror of the state they describe
(:class:`JournalState`); restore rebuilds that same mirror from a snapshot and the
records after it (:func:`load`). Consecutive results of a trial are written as one
record (how many, and the last), as nothing but the last result of a trial is part of
its state: its history is in its ``result.json``.

The searcher's state rides in the record of each trial it suggested (one record: the
new trial and the state that includes it, written together or not at all), and the
completions after it are replayed into the searcher at restore, so it never suggests a
trial twice nor forgets one. The scheduler's and the callbacks' states are part of
each snapshot, pickled with each :class:`~atune._trial.Trial` they hold saved as a
reference (its id), so they point at the restored trials.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import pickle
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgpack

from atune._engine import events as E
from atune._engine.bus import EventBus, Policy
from atune._engine.sinks import Watermark, _Sink
from atune._engine.spec import LOGGER_QUEUE_SIZE, SHUTDOWN_FLUSH_TIMEOUT_S
from atune._engine.state import CheckpointBook
from atune._trial import Trial
from atune._util import pickle_any
from atune.checkpoint import Checkpoint
from atune.config import CheckpointConfig
from atune.errors import AtuneError

__all__ = [
    "JOURNAL_DIR",
    "JournalDamage",
    "JournalSink",
    "JournalState",
    "has_journal",
    "load",
]

log = logging.getLogger("atune")

JOURNAL_DIR = "journal"
FORMAT = "atune.journal/1"
#: Events the journal's queue holds before recording results waits for it (as the
#: loggers', which it follows).
JOURNAL_QUEUE_SIZE = LOGGER_QUEUE_SIZE
#: A snapshot is written once the segment holds this much, and twice the last snapshot.
MIN_SEGMENT_BYTES = 4 * 1024 * 1024
#: And at least this often while anything changes (the scheduler's state is in it).
SNAPSHOT_INTERVAL_S = 60.0
#: How often buffered records reach the file: what a crash of the driver may lose.
JOURNAL_FLUSH_S = 0.2

_HEADER = struct.Struct(">II")
_SNAPSHOT = re.compile(r"^snapshot-(\d{6})\.msgpack$")
_SEGMENT = re.compile(r"^segment-(\d{6})\.log$")
#: msgpack extension type of a pickled Python object.
_EXT_PICKLE = 1

# Record kinds (the first item of each record).
_ADD, _START, _RES, _CKPT, _STATUS, _RETRY, _REWIND, _END = range(8)


# --------------------------------------------------------------------------- codec
def _default(obj: Any) -> Any:
    """msgpack's fallback: numpy scalars as numbers, anything else pickled (or its repr)."""
    item = getattr(obj, "item", None)
    if item is not None and getattr(obj, "shape", None) == ():
        try:
            return item()
        except Exception:
            pass
    try:
        return msgpack.ExtType(_EXT_PICKLE, pickle_any(obj))
    except Exception:
        return repr(obj)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_PICKLE:
        try:
            return pickle.loads(data)
        except Exception as exc:
            return f"<not restorable: {type(exc).__name__}: {exc}>"
    return msgpack.ExtType(code, data)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class JournalDamage:
    """Where a journal file stops being readable, and how much of it is lost."""

    path: str
    offset: int
    lost_bytes: int
    reason: str

    def describe(self) -> str:
        return (
            f"{self.path} is damaged at byte {self.offset} ({self.reason}); the last "
            f"{self.lost_bytes} bytes (the changes of the moments before it was cut off) "
            "are lost"
        )


def read_frames(path: str) -> tuple[list[Any], JournalDamage | None]:
    """The records of a segment, up to the first damaged one."""
    with open(path, "rb") as f:
        data = f.read()
    out: list[Any] = []
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < _HEADER.size:
            return out, JournalDamage(path, pos, n - pos, "a record header is cut off")
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length:
            return out, JournalDamage(path, pos, n - pos, "the last record is cut off")
        if zlib.crc32(payload) != crc:
            return out, JournalDamage(path, pos, n - pos, "a record fails its checksum")
        try:
            out.append(unpack(payload))
        except Exception as exc:
            return out, JournalDamage(path, pos, n - pos, f"a record does not decode: {exc}")
        pos = start + length
    return out, None


# --------------------------------------------------------------------------- pickling
class _TrialPickler(pickle.Pickler):
    """Pickles a scheduler or callback, saving each Trial (and the controller) by reference."""

    def __init__(self, file: io.BytesIO, controller: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._controller = controller

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Trial):
            return ("trial", obj.trial_id)
        if obj is self._controller:
            return ("controller", None)
        return None


class _TrialUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, trials: dict[str, Trial], controller: Any) -> None:
        super().__init__(file)
        self._trials = trials
        self._controller = controller

    def persistent_load(self, pid: Any) -> Any:
        kind, key = pid
        if kind == "trial":
            trial = self._trials.get(key)
            if trial is None:  # lost with a torn journal: a stand-in, finished
                trial = Trial(trial_id=key, trainable_name="", config={}, status=Trial.ERROR)
                self._trials[key] = trial
            return trial
        if kind == "controller":
            return self._controller
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")


def dumps_with_trials(obj: Any, controller: Any) -> bytes:
    buf = io.BytesIO()
    _TrialPickler(buf, controller).dump(obj)
    return buf.getvalue()


def loads_with_trials(data: bytes, trials: dict[str, Trial], controller: Any) -> Any:
    return _TrialUnpickler(io.BytesIO(data), trials, controller).load()


# --------------------------------------------------------------------------- the state
def _new_record(trial: Trial, external: bool) -> dict[str, Any]:
    return {
        "id": trial.trial_id,
        "trainable": trial.trainable_name,
        "config": trial.config,
        "tag": trial.experiment_tag,
        "evaluated": trial.evaluated_params,
        "resources": trial.resources,
        "path": trial.local_path,
        "name": trial.custom_name,
        "status": Trial.PENDING,
        "last_result": {},
        "num_results": 0,
        "num_failures": 0,
        "error": None,
        "external": external,
    }


def _checkpoint_config(snap: dict[str, Any]) -> CheckpointConfig:
    """The CheckpointConfig a snapshot was written with (see ``to_snapshot``)."""
    num, attr, order = snap["checkpoint_config"]
    return CheckpointConfig(
        num_to_keep=num, checkpoint_score_attribute=attr, checkpoint_score_order=order
    )


@dataclass
class JournalState:
    """The experiment as the journal describes it: plain, msgpack-able data."""

    experiment_path: str
    checkpoint_config: CheckpointConfig
    prefix: str = ""
    next_index: int = 0
    trials: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Scheduling order (a requeued trial moves to the end).
    order: list[str] = field(default_factory=list)
    #: The searcher's state (pickled) as of the last trial it suggested.
    searcher: bytes | None = None
    #: Trials that ended after that state: ``on_trial_complete`` again at restore.
    replay: list[list[Any]] = field(default_factory=list)
    scheduler: bytes | None = None
    scheduler_knows: list[str] = field(default_factory=list)
    callbacks: list[bytes | None] = field(default_factory=list)
    ended: bool = False
    book: CheckpointBook = field(init=False)

    def __post_init__(self) -> None:
        self.book = CheckpointBook(self.checkpoint_config)

    # ---------------------------------------------------------------- records
    def apply(self, rec: list[Any]) -> None:
        kind = rec[0]
        if kind == _RES:
            t = self.trials.get(rec[1])
            if t is not None:
                t["num_results"] += rec[2]
                t["last_result"] = rec[3]
            return
        if kind == _ADD:
            _, data, searcher, next_index = rec
            self.trials[data["id"]] = data
            self.order.append(data["id"])
            self.next_index = max(self.next_index, next_index)
            if searcher is not None:
                self.searcher = searcher
                self.replay = []
            return
        if kind == _END:
            for trial_id in rec[1]:
                self.trials.pop(trial_id, None)
                if trial_id in self.order:
                    self.order.remove(trial_id)
            self.ended = True
            return
        t = self.trials.get(rec[1])
        if t is None:
            return
        if kind == _START:
            _, _, config, resources = rec
            t["status"] = Trial.RUNNING
            t["config"] = config
            t["resources"] = resources
        elif kind == _CKPT:
            _, trial_id, path, iteration, total, result = rec
            self.book.record(
                trial_id, Checkpoint(path), result, iteration=iteration, time_total_s=total
            )
        elif kind == _STATUS:
            _, trial_id, status, error = rec
            t["status"] = status
            if status == Trial.PENDING:  # requeued after a failure
                self.order.remove(trial_id)
                self.order.append(trial_id)
            elif status in (Trial.TERMINATED, Trial.ERROR):
                if status == Trial.ERROR:
                    t["error"] = error
                    t["num_failures"] += 1
                if not t["external"]:
                    self.replay.append([trial_id, status == Trial.ERROR])
        elif kind == _RETRY:
            t["num_failures"] += 1
        elif kind == _REWIND:
            _, _, start = rec
            t["num_results"] = start

    def kept(self, trial_id: str) -> list[list[Any]]:
        out = []
        for ckpt, result in self.book.kept(trial_id):
            it, total = self.book.meta(ckpt.path)
            out.append([ckpt.path, it, total, result])
        return out

    # ---------------------------------------------------------------- snapshots
    def to_snapshot(self, seq: int) -> dict[str, Any]:
        cc = self.checkpoint_config
        return {
            "format": FORMAT,
            "seq": seq,
            "time": time.time(),
            "experiment_path": self.experiment_path,
            "checkpoint_config": [
                cc.num_to_keep,
                cc.checkpoint_score_attribute,
                cc.checkpoint_score_order,
            ],
            "prefix": self.prefix,
            "next_index": self.next_index,
            "order": self.order,
            "trials": [dict(self.trials[i], kept=self.kept(i)) for i in self.order],
            "searcher": self.searcher,
            "replay": self.replay,
            "scheduler": self.scheduler,
            "scheduler_knows": self.scheduler_knows,
            "callbacks": self.callbacks,
            "ended": self.ended,
        }

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> JournalState:
        if not isinstance(snap, dict) or snap.get("format") != FORMAT:
            raise ValueError(f"not an atune journal snapshot (format {snap.get('format')!r})")
        state = cls(snap["experiment_path"], _checkpoint_config(snap), prefix=snap["prefix"])
        state.next_index = snap["next_index"]
        for data in snap["trials"]:
            kept = data.pop("kept")
            state.trials[data["id"]] = data
            for path, it, total, result in kept:
                state.book.record(
                    data["id"], Checkpoint(path), result, iteration=it, time_total_s=total
                )
        state.order = [i for i in snap["order"] if i in state.trials]
        state.searcher = snap["searcher"]
        state.replay = snap["replay"]
        state.scheduler = snap["scheduler"]
        state.scheduler_knows = snap["scheduler_knows"]
        state.callbacks = snap["callbacks"]
        state.ended = snap["ended"]
        return state


# --------------------------------------------------------------------------- files
def _journal_dir(experiment_path: str) -> str:
    return os.path.join(experiment_path, JOURNAL_DIR)


def _listing(directory: str) -> tuple[list[int], list[int]]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return [], []
    snaps = sorted(int(m.group(1)) for n in names if (m := _SNAPSHOT.match(n)))
    segs = sorted(int(m.group(1)) for n in names if (m := _SEGMENT.match(n)))
    return snaps, segs


def has_journal(experiment_path: str) -> bool:
    """Does the directory hold an experiment's journal (at least one snapshot)?"""
    snaps, _ = _listing(_journal_dir(experiment_path))
    return bool(snaps)


def _snapshot_path(directory: str, seq: int) -> str:
    return os.path.join(directory, f"snapshot-{seq:06d}.msgpack")


def _segment_path(directory: str, seq: int) -> str:
    return os.path.join(directory, f"segment-{seq:06d}.log")


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=32)
def _checkpoint_config_cached(snapshot: str, size: int, mtime: int) -> CheckpointConfig | None:
    records, damage = read_frames(snapshot)
    if damage is not None or len(records) != 1 or not isinstance(records[0], dict):
        return None
    try:
        return _checkpoint_config(records[0])
    except Exception:
        return None


def checkpoint_config_of(experiment_path: str) -> CheckpointConfig | None:
    """The CheckpointConfig an experiment ran with, from its newest snapshot (or None)."""
    directory = _journal_dir(experiment_path)
    snaps, _ = _listing(directory)
    if not snaps:
        return None
    path = _snapshot_path(directory, snaps[-1])
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _checkpoint_config_cached(path, st.st_size, st.st_mtime_ns)


def load(experiment_path: str) -> tuple[JournalState, list[str]]:
    """The state the journal of ``experiment_path`` describes, and warnings about damage.

    Starts from the newest snapshot that reads back (an older one if the newest is
    damaged) and replays the records after it, up to the first damaged record.
    Raises :class:`AtuneError` naming the file when no snapshot can be read.
    """
    directory = _journal_dir(experiment_path)
    snaps, segs = _listing(directory)
    if not snaps:
        raise AtuneError(
            f"{experiment_path} holds no atune experiment: there is no journal snapshot in "
            f"{directory}. Pass the directory of an experiment (RunConfig.storage_path/name)."
        )
    warnings: list[str] = []
    problems: list[str] = []
    for seq in reversed(snaps):
        path = _snapshot_path(directory, seq)
        try:
            records, damage = read_frames(path)
            if damage is not None or len(records) != 1:
                raise ValueError(damage.reason if damage else "it holds no snapshot record")
            state = JournalState.from_snapshot(records[0])
        except Exception as exc:
            size = os.path.getsize(path) if os.path.exists(path) else 0
            problems.append(f"{path} ({size} bytes) is damaged: {exc}")
            continue
        if problems:
            warnings.append(
                "; ".join(problems) + f". Restoring from the older snapshot {path} instead."
            )
        for s in segs:
            if s < seq:
                continue
            records, damage = read_frames(_segment_path(directory, s))
            for rec in records:
                state.apply(rec)
            if damage is not None:
                later = [x for x in segs if x > s]
                text = damage.describe()
                if later:
                    text += f", and so are the later segments {later}"
                warnings.append(text + ".")
                break
        return state, warnings
    raise AtuneError(
        "cannot restore the experiment: "
        + "; ".join(problems)
        + ". No older snapshot is left. The trials' results are still in their "
        "directories (read them with atune.ResultGrid.from_path / ExperimentAnalysis)."
    )


# --------------------------------------------------------------------------- the sink
class JournalSink(_Sink):
    """Writes the journal from the event bus; the controller's ``capture`` adds the
    scheduler's and the callbacks' states to each snapshot."""

    interval = JOURNAL_FLUSH_S

    def __init__(
        self,
        bus: EventBus,
        state: JournalState,
        table: Any,
        capture: Callable[[], tuple[bytes | None, list[str], list[bytes | None]]],
        external: set[str],
        on_error: Callable[[BaseException], None],
        follows: Watermark | None = None,
    ) -> None:
        sub = bus.subscribe("journal", maxsize=JOURNAL_QUEUE_SIZE, policy=Policy.BACKPRESSURE)
        super().__init__(sub, on_error)
        self.state = state
        self._table = table
        self._capture = capture
        self._external = external
        self._dir = _journal_dir(state.experiment_path)
        #: The loggers' progress: an event is recorded once they have written it.
        self._follows = follows if follows is not None else Watermark(math.inf)
        self._received = 0
        #: Events whose records are written (checkpoints they drop may be deleted).
        self.recorded = Watermark()
        #: Records waiting for the loggers, each with the count of events it covers.
        self._pending: deque[tuple[int, list[Any]]] = deque()
        #: Results not made a record yet: trial id -> [count, last result].
        self._results: dict[str, list[Any]] = {}
        self._seq = 0
        self._file: Any = None
        self._segment_bytes = 0
        self._snapshot_bytes = 0
        self._last_snapshot = 0.0
        self._changed = False
        self._broken = False

    async def open(self) -> None:
        """Write the first snapshot (the experiment as it starts) and open a segment."""
        await anyio.to_thread.run_sync(lambda: os.makedirs(self._dir, exist_ok=True))
        snaps, segs = _listing(self._dir)
        self._seq = max(snaps + segs, default=0)
        await self._snapshot()

    # ---------------------------------------------------------------- events
    async def _on_event(self, event: E.Event) -> None:
        self._received += 1
        if type(event) is E.ResultRecorded:
            pending = self._results.get(event.trial_id)
            if pending is None:
                self._results[event.trial_id] = [1, event.result]
            else:
                pending[0] += 1
                pending[1] = event.result
            return
        rec = self._record(event)
        if rec is None:
            return
        if self._results:
            self._put_results()
        self._put(rec)
        if type(event) is E.ExperimentEnded:
            with anyio.move_on_after(SHUTDOWN_FLUSH_TIMEOUT_S):
                await self._follows.wait_for(self._received)
            await self._periodic()
            await self._snapshot()

    def _record(self, event: E.Event) -> list[Any] | None:
        tid = getattr(event, "trial_id", None)
        if isinstance(event, E.TrialAdded):
            trial = self._table.get(tid)
            if trial is None:
                return None
            external = tid in self._external
            next_index = self._table.next_index
            return [_ADD, _new_record(trial, external), event.searcher_state, next_index]
        if isinstance(event, E.TrialStarted):  # and TrialResumed
            trial = self._table.get(tid)
            config = trial.config if trial is not None else {}
            return [_START, tid, config, dict(event.resources)]
        if isinstance(event, E.CheckpointRecorded):
            return [_CKPT, tid, event.path, event.iteration, event.time_total_s, event.result]
        if isinstance(event, E.TrialPaused):
            return [_STATUS, tid, Trial.PAUSED, None]
        if isinstance(event, E.TrialRequeued):
            return [_STATUS, tid, Trial.PENDING, None]
        if isinstance(event, E.TrialCompleted):
            return [_STATUS, tid, Trial.TERMINATED, None]
        if isinstance(event, E.TrialErrored):
            return [_STATUS, tid, Trial.ERROR, event.error]
        if isinstance(event, E.TrialRetrying):
            return [_RETRY, tid]
        if isinstance(event, E.TrialWorkerStarted):
            if not (event.after_failure or event.restored):
                return None
            return [_REWIND, tid, event.start_iteration]
        if isinstance(event, E.ExperimentEnded):
            live = {t.trial_id for t in self._table}
            return [_END, [i for i in self.state.order if i not in live]]
        return None

    def _put_results(self) -> None:
        for trial_id, (count, last) in self._results.items():
            self._put([_RES, trial_id, count, last])
        self._results = {}

    def _put(self, rec: list[Any]) -> None:
        self._pending.append((self._received, rec))

    def _encode_written(self) -> tuple[bytes, int]:
        """Apply and encode the records whose events the loggers have written; the
        records' bytes and the count of events they cover."""
        buf = bytearray()
        pending, mark = self._pending, self._follows.value
        covered = 0
        while pending and pending[0][0] <= mark:
            covered, rec = pending.popleft()
            self.state.apply(rec)
            self._changed = True
            try:
                buf += frame(pack(rec))
            except Exception as exc:  # msgpack and pickle both refuse an object in it
                log.warning("atune's journal cannot record %r: %s", rec[:2], exc)
        return bytes(buf), covered

    # ---------------------------------------------------------------- writing
    async def _periodic(self) -> None:
        if self._results:
            self._put_results()
        data, covered = self._encode_written()
        if data and not self._broken:
            self._segment_bytes += len(data)
            try:
                await anyio.to_thread.run_sync(self._append, data)
            except OSError as exc:
                self._fail(exc)
        if not self._pending and not self._results and not self._broken:
            covered = self._received  # events that made no record are covered too
        self.recorded.advance(covered)
        if self._changed and not self._broken and self._snapshot_due():
            await self._snapshot()

    def _snapshot_due(self) -> bool:
        if self._segment_bytes >= max(MIN_SEGMENT_BYTES, 2 * self._snapshot_bytes):
            return True
        return time.monotonic() - self._last_snapshot >= SNAPSHOT_INTERVAL_S

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()

    async def _snapshot(self) -> None:
        """Start segment seq+1 with a snapshot of the state as of the end of segment seq."""
        if self._broken:
            return
        try:
            scheduler, knows, callbacks = self._capture()
        except Exception as exc:
            log.warning("atune's journal cannot save the scheduler's state: %s", exc)
            scheduler, knows, callbacks = self.state.scheduler, self.state.scheduler_knows, []
        self.state.scheduler, self.state.scheduler_knows = scheduler, knows
        self.state.callbacks = callbacks
        self._seq += 1
        seq = self._seq
        snap = self.state.to_snapshot(seq)
        try:
            size = await anyio.to_thread.run_sync(self._write_snapshot, seq, snap)
        except OSError as exc:
            self._fail(exc)
            return
        self._snapshot_bytes = size
        self._segment_bytes = 0
        self._last_snapshot = time.monotonic()
        self._changed = False

    def _write_snapshot(self, seq: int, snap: dict[str, Any]) -> int:
        data = frame(pack(snap))
        _write_atomic(_snapshot_path(self._dir, seq), data)
        if self._file is not None:
            self._file.close()
        self._file = open(_segment_path(self._dir, seq), "ab")  # noqa: SIM115
        # Keep the previous snapshot and its segment (a fallback); older ones go.
        snaps, segs = _listing(self._dir)
        for s in snaps:
            if s < seq - 1:
                os.remove(_snapshot_path(self._dir, s))
        for s in segs:
            if s < seq - 1:
                os.remove(_segment_path(self._dir, s))
        return len(data)

    def _fail(self, exc: BaseException) -> None:
        self._broken = True
        self.recorded.advance(math.inf)
        log.warning(
            "atune cannot write the experiment journal in %s (%s); the experiment goes on, "
            "but it cannot be restored past this point.",
            self._dir,
            exc,
        )

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            self.recorded.advance(math.inf)
            if self._file is not None:
                file, self._file = self._file, None
                file.close()
