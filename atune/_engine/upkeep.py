"""The experiment's periodic work, in one task: the time budget, checkpoints the book
dropped, the user callbacks' flush and the searcher's state; and the status lines."""

from __future__ import annotations

import logging
import shutil
import time
from typing import TYPE_CHECKING, Any

import anyio

from atune._engine.spec import FLUSH_INTERVAL_S, SEARCHER_SAVE_INTERVAL_S
from atune._storage import SYNC_PERIOD_S, RemoteSync
from atune.errors import PluginError

if TYPE_CHECKING:
    from atune._engine.controller import Controller

__all__ = ["delete_dropped", "status", "upkeep"]

log = logging.getLogger("atune")


async def upkeep(ctl: Controller) -> None:
    """Time budget, dropped checkpoints, the user callbacks' flush, searcher saves."""
    budget = ctl.spec.time_budget_s
    deadline = None if budget is None else time.monotonic() + budget
    next_save = time.monotonic() + SEARCHER_SAVE_INTERVAL_S
    while True:
        timeout = FLUSH_INTERVAL_S
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        await anyio.sleep(timeout)
        if deadline is not None and time.monotonic() >= deadline and not ctl.stopping:
            if ctl.spec.verbose >= 1:
                log.info("Time budget of %.1f s reached; stopping all trials.", budget)
            ctl.stop_all()
        try:
            await ctl.publish_pending()
            await ctl.inline_hooks.flush()
        except PluginError as exc:
            ctl.fail_experiment(exc)
        await delete_dropped(ctl)
        if time.monotonic() >= next_save:
            next_save = time.monotonic() + SEARCHER_SAVE_INTERVAL_S
            await ctl.searcher_gate.save()


async def sync_remote(sync: RemoteSync) -> None:
    """Upload the experiment to its remote storage every SYNC_PERIOD_S, off the loop."""
    while True:
        await anyio.sleep(SYNC_PERIOD_S)
        await anyio.to_thread.run_sync(sync.sync)


async def delete_dropped(ctl: Controller) -> None:
    if ctl.to_delete:
        recorded = ctl.journal.recorded.value
        paths = [p for i, p in ctl.to_delete if i <= recorded]
        if not paths:
            return
        ctl.to_delete = [(i, p) for i, p in ctl.to_delete if i > recorded]

        def _rm() -> None:
            for p in paths:
                shutil.rmtree(p, ignore_errors=True)

        await anyio.to_thread.run_sync(_rm)


def status(ctl: Controller) -> list[Any]:
    from atune.callbacks.progress import ExperimentStatus

    total = ctl.state.pool.total
    used = ctl.state.pool.used
    parts = [f"{used.get('CPU', 0):g}/{total.get('CPU', 0):g} CPUs"]
    parts.append(f"{used.get('GPU', 0):g}/{total.get('GPU', 0):g} GPUs")
    status = ExperimentStatus(
        start_time=ctl.start_time,
        scheduler_line=ctl.spec.scheduler.debug_string(),
        resources_line="Logical resource usage: " + ", ".join(parts),
        logdir=ctl.spec.experiment_path,
        total_samples=ctl.spec.total_samples,
        metric=ctl.spec.metric,
        mode=ctl.spec.mode,
    )
    return [status]
