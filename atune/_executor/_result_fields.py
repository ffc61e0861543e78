"""The fields atune fills into every result: iteration counts, times, ids, host."""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atune._executor._base import WorkerSpec

__all__ = ["ResultFields"]


class ResultFields:
    """Counts one trial's iterations and times, and fills them into its results.

    ``time_this_iter_s`` is the time since the last :meth:`mark` (the end of the last
    report, not counting time the trainable spent waiting in it), unless reported.
    """

    def __init__(self, spec: WorkerSpec, *, pid: int, hostname: str, node_ip: str) -> None:
        self._constant = {
            "trial_id": spec.trial_id,
            "experiment_id": spec.experiment_id,
            "pid": pid,
            "hostname": hostname,
            "node_ip": node_ip,
        }
        self.iteration = spec.start_iteration
        self._iters_since_restore = 0
        self._time_total = spec.start_time_total
        self._time_since_restore = 0.0
        self._timesteps_total: float | None = None
        self._last_mark = time.monotonic()

    def mark(self) -> None:
        """The trainable goes on computing from now."""
        self._last_mark = time.monotonic()

    def fill(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The result for ``metrics``, the next iteration: a new dict with every field."""
        result = dict(metrics)
        elapsed = result.get("time_this_iter_s")
        if not isinstance(elapsed, (int, float)):
            elapsed = time.monotonic() - self._last_mark
            result["time_this_iter_s"] = elapsed
        self.iteration += 1
        self._iters_since_restore += 1
        self._time_total += elapsed
        self._time_since_restore += elapsed
        now = time.time()
        steps = result.get("timesteps_this_iter")
        if isinstance(steps, (int, float)) and "timesteps_total" not in result:
            self._timesteps_total = (self._timesteps_total or 0) + steps
            result["timesteps_total"] = self._timesteps_total
        result.setdefault("done", False)
        result.update(
            training_iteration=self.iteration,
            time_total_s=self._time_total,
            timestamp=int(now),
            date=datetime.datetime.fromtimestamp(now).strftime("%Y-%m-%d_%H-%M-%S"),
            **self._constant,
            iterations_since_restore=self._iters_since_restore,
            time_since_restore=self._time_since_restore,
        )
        return result
