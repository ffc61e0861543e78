"""Restoring an experiment from its journal: which trials run again, and from where.

:func:`prepare` reads the journal (off the event loop) and decides, trial by trial,
as :meth:`atune.Tuner.restore` was asked:

- finished trials (TERMINATED) are never run again;
- unfinished ones (RUNNING, PENDING, PAUSED when the driver stopped) continue from
  their latest checkpoint, or from scratch without one (``resume_unfinished=False``:
  they end as TERMINATED where they were);
- errored ones stay ERROR, or continue from their latest checkpoint
  (``resume_errored``), or start over (``restart_errored``).

A trial continues from the latest checkpoint the journal recorded *and* its
``result.json`` reaches, so its history has no gap: the rows past that point belong
to an attempt that is discarded, and the loggers move them aside when it starts
(as after a failure). Checkpoint directories of the trial that no entry keeps (saved
after the last record the journal holds) are deleted; a kept one that is missing is
skipped with a warning.

:func:`install` then puts the trials into a new controller and brings the searcher,
the scheduler and stateful callbacks back to where they were.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from atune import result as R
from atune._engine import journal as J
from atune._engine.plugins import call_plugin
from atune._engine.state import CheckpointBook
from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.errors import AtuneError

if TYPE_CHECKING:
    from atune._engine.controller import Controller

__all__ = ["RestorePlan", "Restored", "install", "prepare"]

log = logging.getLogger("atune")

_CHECKPOINT_DIR = re.compile(r"^checkpoint_\d{6}$")
#: How much of the end of a result.json is read to find its last iteration.
_TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class RestorePlan:
    """What :meth:`atune.Tuner.restore` was asked to run again."""

    resume_unfinished: bool = True
    resume_errored: bool = False
    restart_errored: bool = False


@dataclass
class Restored:
    """A journal, read back and decided on: the state the new run starts from."""

    state: J.JournalState
    trials: list[Trial]
    #: Trials that run again (PENDING now), each from its latest kept checkpoint.
    resumed: list[Trial] = field(default_factory=list)
    #: Unfinished trials ended now (``resume_unfinished=False``).
    ended: list[Trial] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def prepare(experiment_path: str, plan: RestorePlan) -> Restored:
    """Read the journal of ``experiment_path`` and decide every trial (blocking I/O)."""
    state, warnings = J.load(experiment_path)
    old = state.experiment_path
    if os.path.normpath(old) != os.path.normpath(experiment_path):
        _move(state, old, experiment_path)  # the directory was moved or copied
    restored = Restored(state, [], warnings=list(warnings))
    book = CheckpointBook(state.checkpoint_config)
    for trial_id in state.order:
        rec = state.trials[trial_id]
        kept = state.kept(trial_id)
        status = rec["status"]
        resume = from_scratch = False
        if status in (Trial.RUNNING, Trial.PENDING, Trial.PAUSED):
            if plan.resume_unfinished:
                resume = True
            else:
                status = Trial.TERMINATED
        elif status == Trial.ERROR:
            if plan.restart_errored:
                resume = from_scratch = True
            elif plan.resume_errored:
                resume = True
        if resume:
            kept = [] if from_scratch else _usable(rec, kept, restored.warnings)
            _delete_strays(rec["path"], {k[0] for k in kept})
            status = Trial.PENDING
            rec["error"] = None
            if kept:
                rec["num_results"], rec["last_result"] = kept[-1][1], kept[-1][3]
            else:
                rec["num_results"], rec["last_result"] = 0, {}
        rec["status"] = status
        for path, it, total, result in kept:
            book.record(trial_id, Checkpoint(path), result, iteration=it, time_total_s=total)
        trial = _trial(rec, book)
        restored.trials.append(trial)
        if resume:
            restored.resumed.append(trial)
            trial.restore_from = trial.checkpoint
        elif status == Trial.TERMINATED and state.trials[trial_id]["status"] != status:
            restored.ended.append(trial)
    state.book = book
    state.ended = False
    return restored


def _move(state: J.JournalState, old: str, new: str) -> None:
    def moved(path: str) -> str:
        rel = os.path.relpath(path, old)
        return path if rel.startswith("..") else os.path.join(new, rel)

    book = CheckpointBook(state.checkpoint_config)
    for trial_id in state.order:
        rec = state.trials[trial_id]
        rec["path"] = moved(rec["path"])
        for path, it, total, result in state.kept(trial_id):
            book.record(trial_id, Checkpoint(moved(path)), result, iteration=it, time_total_s=total)
    state.book = book
    state.experiment_path = new


def _usable(rec: dict[str, Any], kept: list[list[Any]], warnings: list[str]) -> list[list[Any]]:
    """The kept checkpoints a resumed trial may continue from: present on disk, and not
    past the last row of its ``result.json`` (so its history has no gap)."""
    logged = _last_logged_iteration(rec["path"])
    out = []
    for entry in kept:
        path, it = entry[0], entry[1]
        if logged is not None and it > logged:
            continue
        if not os.path.isdir(path):
            warnings.append(
                f"the checkpoint {path} of trial {rec['id']} is missing; the trial continues "
                "from an older checkpoint (or from scratch)"
            )
            continue
        out.append(entry)
    return out


def _last_logged_iteration(trial_dir: str) -> int | None:
    """``training_iteration`` of the last complete row of ``result.json`` (None: no file)."""
    path = os.path.join(trial_dir, R.EXPR_RESULT_FILE)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return None
    for line in reversed(tail.split(b"\n")):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8", errors="replace"))
        except ValueError:
            continue  # a torn last line
        if isinstance(row, dict) and isinstance(row.get(R.TRAINING_ITERATION), (int, float)):
            return int(row[R.TRAINING_ITERATION])
    return 0


def _delete_strays(trial_dir: str, keep: set[str]) -> None:
    """Checkpoint directories the journal never recorded (saved after its last record)."""
    try:
        names = os.listdir(trial_dir)
    except OSError:
        return
    for name in names:
        path = os.path.join(trial_dir, name)
        if _CHECKPOINT_DIR.match(name) and path not in keep and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def _trial(rec: dict[str, Any], book: CheckpointBook) -> Trial:
    error = rec["error"]
    if error is not None and not isinstance(error, BaseException):
        error = AtuneError(str(error))
    trial = Trial(
        trial_id=rec["id"],
        trainable_name=rec["trainable"],
        config=rec["config"],
        experiment_tag=rec["tag"],
        evaluated_params=rec["evaluated"],
        resources=rec["resources"],
        status=rec["status"],
        last_result=rec["last_result"],
        local_path=rec["path"],
        num_failures=rec["num_failures"],
        error=error,
        custom_name=rec["name"],
        num_results=rec["num_results"],
    )
    trial.checkpoint = book.latest(trial.trial_id)
    trial.checkpoints = book.best(trial.trial_id)
    return trial


# --------------------------------------------------------------------------- install
async def install(ctl: Controller, restored: Restored) -> None:
    """Put the restored trials into ``ctl`` and bring its plugins back to where they were."""
    state = restored.state
    by_id = {t.trial_id: t for t in restored.trials}
    for trial in restored.trials:
        ctl.state.table.add(trial)
        for ckpt, result in state.book.kept(trial.trial_id):
            it, total = state.book.meta(ckpt.path)
            ctl.state.book.record(trial.trial_id, ckpt, result, iteration=it, time_total_s=total)
        if state.trials[trial.trial_id]["external"]:
            ctl.external.add(trial.trial_id)
    for trial in restored.resumed:
        ctl.requeued[trial.trial_id] = True  # its loggers rewind to where it continues
    spec = ctl.spec
    if spec.metric is not None:  # reported before: a trial may end with no new result
        ctl.pipeline.saw_metric(t for t in restored.trials if spec.metric in t.last_result)
    # The searcher: its state as of the last trial it suggested, then the trials that
    # ended after that, told again.
    if state.searcher is not None:
        from atune.search._wrappers import restore_experiment_state

        try:
            restore_experiment_state(spec.searcher, pickle.loads(state.searcher))
        except Exception as exc:
            _warn(restored, f"the searcher's state cannot be restored ({exc}); it starts afresh")
        else:
            for trial_id, errored in state.replay:
                done = by_id.get(trial_id)
                if done is not None:
                    await ctl.searcher_gate.call(
                        "on_trial_complete", trial_id, done.last_result or None, error=errored
                    )
    elif any(not t["external"] for t in state.trials.values()):
        _warn(
            restored,
            f"the state of {type(spec.searcher).__name__} was not saved (it cannot be "
            "pickled); it starts afresh and may suggest configs that were tried already",
        )
    for trial in restored.ended:
        if ctl.searcher_knows(trial):
            await ctl.searcher_gate.call(
                "on_trial_complete", trial.trial_id, trial.last_result or None
            )
    # The scheduler: as of the last snapshot; trials it has not seen are added to it.
    knows: set[str] = set()
    if state.scheduler is not None:
        try:
            spec.scheduler = J.loads_with_trials(state.scheduler, by_id, ctl)
            knows = set(state.scheduler_knows)
        except Exception as exc:
            _warn(restored, f"the scheduler's state cannot be restored ({exc}); it starts afresh")
    for trial in restored.trials:
        if trial.trial_id not in knows:
            await call_plugin(spec.scheduler, "on_trial_add", ctl, trial)
    for trial in restored.ended:
        await call_plugin(spec.scheduler, "on_trial_remove", ctl, trial)
    for cb, blob in zip(spec.callbacks, state.callbacks):
        if blob is not None:
            try:
                cb.set_state(pickle.loads(blob))
            except Exception as exc:
                _warn(restored, f"{type(cb).__name__}.set_state failed ({exc}); it starts afresh")
    for text in restored.warnings:
        log.warning("Restoring %s: %s", spec.experiment_path, text)


def _warn(restored: Restored, text: str) -> None:
    restored.warnings.append(text)


def capture(ctl: Controller) -> tuple[bytes | None, list[str], list[bytes | None]]:
    """The scheduler's and the callbacks' states, for a journal snapshot (on the loop)."""
    spec = ctl.spec
    try:
        scheduler: bytes | None = J.dumps_with_trials(spec.scheduler, ctl)
    except Exception as exc:
        scheduler = None
        ctl.warn_once(
            "scheduler-pickle",
            "The state of %s cannot be pickled (%s); a restored experiment starts it afresh.",
            type(spec.scheduler).__name__,
            exc,
        )
    knows = [t.trial_id for t in ctl.trials]
    callbacks: list[bytes | None] = []
    for cb in spec.callbacks:
        blob = None
        try:
            cb_state = cb.get_state()
            if cb_state is not None:
                blob = pickle.dumps(cb_state, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            ctl.warn_once(
                f"callback-state-{id(cb)}",
                "%s.get_state() cannot be saved (%s); a restored experiment starts it afresh.",
                type(cb).__name__,
                exc,
            )
        callbacks.append(blob)
    return scheduler, knows, callbacks
