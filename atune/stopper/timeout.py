"""Stop the whole experiment after a time budget."""

from __future__ import annotations

import datetime
import math
import numbers
import time
from collections.abc import Callable
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.stopper._base import Stopper

__all__ = ["TimeoutStopper"]


class TimeoutStopper(Stopper):
    """Stop the experiment once ``timeout`` has passed since the stopper was first consulted.

    The clock starts at the first call of :meth:`stop_all` or :meth:`__call__` (the
    controller consults its stopper when the experiment starts). From then on
    :meth:`stop_all` is True once ``elapsed >= timeout``. Single trials are never
    stopped by this stopper on their own; running trials stop at their next result
    once the experiment is stopped. ``TuneConfig(time_budget_s=...)`` creates one.

    Pickling keeps the time already spent: a restored stopper resumes the clock with
    the remaining budget when it is next consulted.

    Args:
        timeout: Budget in seconds (> 0; ``math.inf`` never stops) or a
            :class:`datetime.timedelta`.
        clock: Monotonic clock returning seconds; injectable for tests.

    Example:
        >>> now = [0.0]
        >>> stopper = TimeoutStopper(10, clock=lambda: now[0])
        >>> stopper.stop_all()
        False
        >>> now[0] = 10.0
        >>> stopper.stop_all()
        True
    """

    def __init__(
        self,
        timeout: float | datetime.timedelta,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_s = _timeout_seconds(timeout)
        self._clock = clock
        self._started_at: float | None = None
        #: Seconds spent before ``_started_at`` (carried over by pickling).
        self._spent_s = 0.0

    @property
    def timeout_s(self) -> float:
        """The budget in seconds."""
        return self._timeout_s

    def elapsed_s(self) -> float:
        """Seconds spent so far (starts the clock if it is not running)."""
        now = self._clock()
        if self._started_at is None:
            self._started_at = now
        return self._spent_s + (now - self._started_at)

    def remaining_s(self) -> float:
        """Seconds left in the budget (never negative; starts the clock)."""
        return max(0.0, self._timeout_s - self.elapsed_s())

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.elapsed_s()  # a result may come before the first stop_all: start the clock
        return False

    def stop_all(self) -> bool:
        return self.elapsed_s() >= self._timeout_s

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._started_at is not None:
            state["_spent_s"] = self.elapsed_s()
        state["_started_at"] = None
        return state

    def __repr__(self) -> str:
        return f"TimeoutStopper(timeout={self._timeout_s})"


def _timeout_seconds(timeout: Any) -> float:
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, numbers.Real) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise ConfigTypeError(
            "`timeout` must be a number of seconds or a datetime.timedelta, "
            f"got {type(timeout).__name__} {timeout!r}"
        )
    if math.isnan(seconds) or seconds <= 0:
        raise ConfigError(f"`timeout` must be > 0 seconds, got {timeout!r}")
    return seconds
