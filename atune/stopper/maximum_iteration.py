"""Stop each trial after a fixed number of results."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from atune.stopper._base import Stopper, check_int

__all__ = ["MaximumIterationStopper"]


class MaximumIterationStopper(Stopper):
    """Stop a trial once it has reported ``max_iter`` results.

    The stopper counts the results it sees for each trial; the result that brings the
    count to ``max_iter`` is the trial's last. Never stops the whole experiment.

    Args:
        max_iter: Number of results after which a trial stops (>= 1).

    Example:
        >>> stopper = MaximumIterationStopper(max_iter=2)
        >>> stopper("t1", {}), stopper("t1", {}), stopper("t2", {})
        (False, True, False)
    """

    def __init__(self, max_iter: int) -> None:
        self._max_iter = check_int(max_iter, name="max_iter", minimum=1)
        self._iterations: defaultdict[str, int] = defaultdict(int)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self._iterations[trial_id] += 1
        return self._iterations[trial_id] >= self._max_iter

    def __repr__(self) -> str:
        return f"MaximumIterationStopper(max_iter={self._max_iter})"
