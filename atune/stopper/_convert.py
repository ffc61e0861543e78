"""Turn the ``stop`` argument of Tuner/RunConfig/``tune.run`` into a :class:`Stopper`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atune.errors import ConfigTypeError
from atune.stopper._base import Stopper
from atune.stopper.dict_stopper import DictStopper
from atune.stopper.function_stopper import FunctionStopper, check_stop_function

__all__ = ["as_stopper"]


def as_stopper(stop: Any) -> Stopper | None:
    """Return the stopper that ``stop`` stands for, or None if there is nothing to check.

    Args:
        stop: None or an empty dict (no criteria), a dict of result key -> threshold
            (:class:`DictStopper`), a :class:`Stopper` (returned as is), or a function
            ``(trial_id, result) -> bool`` (:class:`FunctionStopper`).

    Raises:
        ConfigTypeError: ``stop`` is none of these.
        ConfigError: A dict threshold is not a number, or a function does not take
            two positional arguments.

    Example:
        >>> as_stopper({"training_iteration": 10})
        DictStopper({'training_iteration': 10})
        >>> as_stopper(None) is None
        True
    """
    if stop is None:
        return None
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, Mapping):
        return DictStopper(stop) if stop else None
    if callable(stop):
        check_stop_function(stop)
        return FunctionStopper(stop)
    raise ConfigTypeError(
        "`stop` must be None, a dict of result key -> threshold, an atune.Stopper or a "
        f"function (trial_id, result) -> bool, got {type(stop).__name__} {stop!r}"
    )
