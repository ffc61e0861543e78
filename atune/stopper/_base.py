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

from atune.errors import ConfigError, ConfigTypeError

__all__ = ["Stopper"]

#: Separator of nested result keys in stop criteria and metric names ("info/loss").
KEY_SEPARATOR = "/"

_MISSING: Any = object()


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


def lookup(result: Mapping[str, Any], key: str) -> Any:
    """Return ``result[key]``, following ``"a/b"`` into nested dicts; ``_MISSING`` if absent.

    A literal key containing the separator wins over the nested path.
    """
    if key in result:
        return result[key]
    if KEY_SEPARATOR not in key:
        return _MISSING
    node: Any = result
    for part in key.split(KEY_SEPARATOR):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def is_missing(value: Any) -> bool:
    """True if ``value`` is the marker :func:`lookup` returns for an absent key."""
    return value is _MISSING


def as_number(value: Any) -> float | None:
    """``float(value)`` for a real number that is not NaN, else None (bools excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def pstdev(values: Iterable[float]) -> float:
    """Population standard deviation (as ``numpy.std``); NaN if a value is infinite."""
    data = list(values)
    if not all(math.isfinite(x) for x in data):
        return math.nan
    mean = math.fsum(data) / len(data)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in data) / len(data))


def check_mode(mode: Any, *, name: str = "mode") -> str:
    """Return ``mode`` if it is ``"min"`` or ``"max"``; raise :class:`ConfigError` else."""
    if mode not in ("min", "max"):
        raise ConfigError(f"`{name}` must be 'min' or 'max', got {mode!r}")
    return mode


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
