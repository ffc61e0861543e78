"""Combine several stoppers with OR."""

from __future__ import annotations

from typing import Any

from atune.errors import ConfigTypeError
from atune.stopper._base import Stopper

__all__ = ["CombinedStopper"]


class CombinedStopper(Stopper):
    """Stop when any of the given stoppers says so.

    A trial stops if any stopper's :meth:`__call__` returns True; the experiment stops
    if any stopper's :meth:`stop_all` does. Every stopper is consulted on every call,
    even after one has said stop, so stateful stoppers (iteration counts, plateaus)
    see every result.

    Args:
        *stoppers: :class:`Stopper` instances.

    Example:
        >>> from atune.stopper import MaximumIterationStopper, TrialPlateauStopper
        >>> stopper = CombinedStopper(
        ...     MaximumIterationStopper(max_iter=10),
        ...     TrialPlateauStopper(metric="loss"),
        ... )
    """

    def __init__(self, *stoppers: Stopper) -> None:
        for index, stopper in enumerate(stoppers):
            if not isinstance(stopper, Stopper):
                raise ConfigTypeError(
                    f"`stoppers[{index}]` must be an atune.Stopper, got "
                    f"{type(stopper).__name__} {stopper!r}; wrap a function in "
                    "FunctionStopper or a dict in DictStopper"
                )
        self._stoppers: tuple[Stopper, ...] = stoppers

    @property
    def stoppers(self) -> tuple[Stopper, ...]:
        """The combined stoppers, in order."""
        return self._stoppers

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        decisions = [bool(stopper(trial_id, result)) for stopper in self._stoppers]
        return any(decisions)

    def stop_all(self) -> bool:
        decisions = [bool(stopper.stop_all()) for stopper in self._stoppers]
        return any(decisions)

    def check_keys(self, result: dict[str, Any]) -> None:
        """Run ``check_keys`` of every combined stopper that has one (e.g. DictStopper).

        Raises:
            ConfigError: A combined stopper names a key the first result lacks.
        """
        for stopper in self._stoppers:
            check = getattr(stopper, "check_keys", None)
            if callable(check):
                check(result)

    def __repr__(self) -> str:
        return f"CombinedStopper({', '.join(repr(s) for s in self._stoppers)})"
