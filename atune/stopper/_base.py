"""The stopper protocol and the small helpers the built-in stoppers share.

A stopper is pure, synchronous logic. The controller calls it on the event loop for
every recorded result (:meth:`Stopper.__call__`) and between results
(:meth:`Stopper.stop_all`), so both methods must return quickly and do no I/O.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from atune._metric import metric_number
from atune._util import lookup
from atune.errors import ConfigError, ConfigTypeError

__all__ = ["Stopper"]


class Stopper(abc.ABC):
    """Base class of experiment stoppers.

    Subclass it and implement :meth:`__call__` to stop single trials, and override
    :meth:`stop_all` to stop the whole experiment. After :meth:`stop_all` returns True,
    no new trial starts and each running trial stops at its next result.

    Example:
        >>> class StopAtAccuracy(Stopper):
        ...     def __init__(self):
        ...         self.reached = False
        ...     def __call__(self, trial_id, result):
        ...         self.reached |= result["mean_accuracy"] >= 0.8
        ...         return self.reached
        ...     def stop_all(self):
        ...         return self.reached
    """

    @abc.abstractmethod
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Return True if the trial that produced ``result`` should stop.

        Args:
            trial_id: Id of the trial that reported ``result``.
            result: The result, auto-filled fields included.
        """

    def stop_all(self) -> bool:
        """Return True if the whole experiment should stop (default: never)."""
        return False


def as_number(value: Any) -> float | None:
    """``float(value)`` for a real number that is not NaN, else None (bools excluded)."""
    number = metric_number(value)
    return None if number is None or math.isnan(number) else number


def metric_value(result: Mapping[str, Any], metric: str) -> float | None:
    """The number ``result`` reports for ``metric`` (``"a/b"`` looks into nested dicts).

    None when the result lacks it or it is not a number (None, NaN, a string...).
    """
    return as_number(lookup(result, metric))


def check_metric(metric: Any) -> str:
    """Return ``metric`` if it is a non-empty str; raise :class:`ConfigTypeError` else."""
    if not isinstance(metric, str) or not metric:
        raise ConfigTypeError(f"`metric` must be a non-empty str, got {metric!r}")
    return metric


def pstdev(values: Iterable[float]) -> float:
    """Population standard deviation (as ``numpy.std``); NaN if a value is infinite."""
    data = list(values)
    if not all(math.isfinite(x) for x in data):
        return math.nan
    mean = math.fsum(data) / len(data)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in data) / len(data))


def check_int(value: Any, *, name: str, minimum: int) -> int:
    """Return ``value`` if it is an int ``>= minimum``; raise else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigTypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ConfigError(f"`{name}` must be >= {minimum}, got {value!r}")
    return int(value)


def check_positive(value: Any, *, name: str) -> float:
    """Return ``float(value)`` if it is a real number > 0; raise else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not number > 0:  # also rejects NaN
        raise ConfigError(f"`{name}` must be > 0, got {value!r}")
    return number
