"""The end of an experiment, in bounded stages, shielded from cancellation.

1. idle workers run ``cleanup()`` and every worker is killed (``executor.aclose()``);
2. the plugins' last hooks: trials lost with a dead cluster are marked, trials that
   never started are dropped, the searcher's state is written, ``ExperimentEnded``;
3. the bus is closed and the sinks write what they still hold.

Each stage has its own time bound (:data:`~atune._engine.spec.SHUTDOWN_FLUSH_TIMEOUT_S`),
so a stuck plugin cannot keep workers alive, and a slow disk cannot keep the plugins
from their last hooks.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

import anyio

from atune._engine import events as E
from atune._engine.endings import finish_idle_trials
from atune._engine.plugins import call_plugin
from atune._engine.proxy import TrialProxy
from atune._engine.spec import REMOTE_SYNC_TIMEOUT_S, SHUTDOWN_FLUSH_TIMEOUT_S
from atune._engine.upkeep import delete_dropped
from atune._trial import Trial
from atune.errors import ClusterDiedError, PluginError

if TYPE_CHECKING:
    from atune._engine.controller import Controller

log = logging.getLogger("atune")

__all__ = ["finish"]


async def finish(ctl: Controller) -> None:
    """End the experiment: workers first, then the plugins' last hooks, then sinks.

    Each stage has its own bound, so a stuck plugin cannot keep workers alive,
    and a slow disk cannot keep the plugins from their last hooks.
    """
    lost = ctl.cluster_lost
    with anyio.move_on_after(SHUTDOWN_FLUSH_TIMEOUT_S):
        await ctl.pool.drain(graceful=lost is None)
    await ctl.executor.aclose()
    ctl.commands.close()
    with anyio.move_on_after(SHUTDOWN_FLUSH_TIMEOUT_S):
        try:
            await last_hooks(ctl, lost)
        except PluginError as exc:
            ctl.fail_experiment(exc)
    ctl.release_waiters()
    ctl.bus.close()
    with anyio.move_on_after(SHUTDOWN_FLUSH_TIMEOUT_S):
        for sink in ctl.sinks:
            await sink.done.wait()
    for sink in ctl.sinks:
        sink.cancel()
    await delete_dropped(ctl)  # the journal has recorded everything now
    if ctl.remote_sync is not None:
        with anyio.move_on_after(REMOTE_SYNC_TIMEOUT_S):
            await anyio.to_thread.run_sync(ctl.remote_sync.sync, abandon_on_cancel=True)
        if ctl.remote_sync.last_error is not None and ctl.fatal is None:
            log.warning(
                "The last upload of the experiment to its storage failed (%s); the "
                "experiment is complete in %s.",
                ctl.remote_sync.last_error,
                ctl.spec.experiment_path,
            )
    sys.stdout.flush()


async def last_hooks(ctl: Controller, lost: ClusterDiedError | None) -> None:
    if lost is not None:
        await mark_lost_trials(ctl, lost)
    # Trials never started when stop-all hit are not part of the experiment.
    if ctl.stopping:
        dropped = [t for t in ctl.trials if t.status == Trial.PENDING and not t.num_results]
        for t in dropped:
            ctl.state.table.remove(t)
            await call_plugin(ctl.spec.scheduler, "on_trial_remove", ctl, t)
    await ctl.publish_pending()
    await finish_idle_trials(ctl)
    await ctl.searcher_gate.save(force=True)
    await delete_dropped(ctl)
    await ctl.emit(E.ExperimentEnded(error=ctl.fatal))
    await ctl.inline_hooks.flush()


async def mark_lost_trials(ctl: Controller, lost: ClusterDiedError) -> None:
    """Trials that were running on a cluster that died end in ERROR; say so clearly."""
    from atune.search._base import SEARCHER_STATE_FILE

    running = [t for t in ctl.trials if t.status == Trial.RUNNING]
    for trial in running:
        await ctl.emit(E.TrialErrored(trial_id=trial.trial_id, error=lost), inline=False)
        with anyio.move_on_after(2.0):
            await TrialProxy(ctl, trial, False).write_error(lost, "")
    finished = sum(1 for t in ctl.trials if t.status == Trial.TERMINATED)
    searcher = os.path.join(ctl.spec.experiment_path, SEARCHER_STATE_FILE)
    ctl.fatal = ClusterDiedError(
        f"the Ray cluster stopped under the experiment: {lost}. atune disconnected "
        f"from it and ended the experiment: {finished} trials had finished, "
        f"{len(running)} that were running are marked ERROR. Everything recorded is "
        f"saved in {ctl.spec.experiment_path} (each trial's results and checkpoints, "
        f"and the searcher's state in {searcher}). To continue, run the experiment "
        "again: atune starts a new local Ray (or call ray.init(address=...) for your "
        "cluster), and a model-based searcher continues its search with "
        f"searcher.restore_from_dir({ctl.spec.experiment_path!r})."
    )
    ctl.fatal.__cause__ = lost
