"""Wrap a plain ``(trial_id, result) -> bool`` function as a stopper."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.stopper._base import Stopper

__all__ = ["FunctionStopper"]


class FunctionStopper(Stopper):
    """Stop a trial when ``function(trial_id, result)`` returns a true value.

    Never stops the whole experiment; subclass :class:`Stopper` for that.

    Args:
        function: Called with the trial id and each of its results.

    Raises:
        ConfigTypeError: ``function`` is not callable, or is a stopper-like object
            (it has ``stop_all``) that does not subclass :class:`Stopper`.
        ConfigError: ``function`` cannot be called with two positional arguments.

    Example:
        >>> stopper = FunctionStopper(lambda trial_id, result: result["loss"] < 0.1)
        >>> stopper("t1", {"loss": 0.05})
        True
    """

    def __init__(self, function: Callable[[str, dict[str, Any]], bool]) -> None:
        check_stop_function(function, name="function")
        self._function = function

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(self._function(trial_id, result))

    def stop_all(self) -> bool:
        return False

    def __repr__(self) -> str:
        name = getattr(self._function, "__qualname__", None) or repr(self._function)
        return f"FunctionStopper({name})"


def check_stop_function(function: Any, *, name: str = "stop") -> None:
    """Raise unless ``function`` can be called as ``function(trial_id, result)``."""
    if isinstance(function, Stopper) or not callable(function):
        raise ConfigTypeError(
            f"`{name}` must be a function (trial_id, result) -> bool, "
            f"got {type(function).__name__} {function!r}"
        )
    if callable(getattr(function, "stop_all", None)):
        raise ConfigTypeError(
            f"`{name}` has a `stop_all` method but does not subclass atune.Stopper "
            f"(got {type(function).__name__}); subclass atune.Stopper so that "
            "`stop_all` is called"
        )
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return
    try:
        signature.bind("trial_id", {})
    except TypeError as exc:
        raise ConfigError(
            f"`{name}` must accept two positional arguments (trial_id, result), "
            f"got {getattr(function, '__qualname__', function)!r} with signature "
            f"{signature}"
        ) from exc
