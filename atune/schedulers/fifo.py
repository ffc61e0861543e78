"""First in, first out: trials run in the order they were created, to completion."""

from __future__ import annotations

from atune.schedulers._base import TrialScheduler

__all__ = ["FIFOScheduler"]


class FIFOScheduler(TrialScheduler):
    """The default scheduler: never pauses or stops a trial early.

    Trials start in creation order as resources free up.
    """

    def debug_string(self) -> str:
        return "Using FIFO scheduling algorithm."
