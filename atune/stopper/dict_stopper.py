"""Stop a trial when a reported value reaches its threshold (``stop={...}``)."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from typing import Any

from atune import result as result_fields
from atune._util import flatten_dict, lookup
from atune.errors import ConfigError, ConfigTypeError
from atune.stopper._base import Stopper

__all__ = ["DictStopper"]

#: What :func:`~atune._util.lookup` returns here for a key a result lacks.
_ABSENT: Any = object()

#: Auto-filled fields a stop criterion may name even if the first result lacks them
#: (some are filled only once the trainable reports the matching ``*_this_iter``).
AUTO_FILLED_KEYS = frozenset(
    (
        *result_fields.AUTO_RESULT_KEYS,
        result_fields.TIMESTEPS_TOTAL,
        result_fields.EXPERIMENT_TAG,
        "episodes_total",
        "timesteps_since_restore",
    )
)


class DictStopper(Stopper):
    """Stop a trial once any reported value is ``>=`` its threshold.

    This is what ``stop={"training_iteration": 10, "mean_accuracy": 0.8}`` means: the
    metrics are assumed to increase, and the first criterion reached stops the trial
    (OR). A key ``"a/b"`` names ``result["a"]["b"]`` (a literal ``"a/b"`` key wins).
    A result that lacks a key, or reports None for it, does not meet that criterion.
    For a decreasing metric use a function or a :class:`Stopper`.

    Never stops the whole experiment.

    Args:
        criteria: Maps result keys to thresholds (real numbers, not NaN).

    Example:
        >>> stopper = DictStopper({"training_iteration": 3, "mean_accuracy": 0.8})
        >>> stopper("t1", {"training_iteration": 1, "mean_accuracy": 0.8})
        True
    """

    def __init__(self, criteria: Mapping[str, float]) -> None:
        if not isinstance(criteria, Mapping):
            raise ConfigTypeError(
                f"`stop` must be a dict of result key -> threshold, got "
                f"{type(criteria).__name__} {criteria!r}"
            )
        checked: dict[str, float] = {}
        for key, threshold in criteria.items():
            if not isinstance(key, str) or not key:
                raise ConfigTypeError(
                    f"`stop` keys must be non-empty result key names (str), got {key!r}"
                )
            if not isinstance(threshold, numbers.Real) or math.isnan(threshold):
                raise ConfigError(
                    f"`stop[{key!r}]` must be a number (the value at which the trial "
                    f"stops), got {type(threshold).__name__} {threshold!r}"
                )
            checked[key] = threshold
        self._criteria = checked

    @property
    def criteria(self) -> dict[str, float]:
        """A copy of the criteria, key -> threshold."""
        return dict(self._criteria)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for key, threshold in self._criteria.items():
            value = lookup(result, key)
            if value is None:  # absent, or reported as None
                continue
            try:
                reached = value >= threshold
            except TypeError as exc:
                raise ConfigTypeError(
                    f"stop criterion {key!r}: the reported value {value!r} "
                    f"({type(value).__name__}) cannot be compared with the threshold "
                    f"{threshold!r}; stop on a numeric result key"
                ) from exc
            if reached:
                return True
        return False

    def stop_all(self) -> bool:
        return False

    def check_keys(self, result: Mapping[str, Any]) -> None:
        """Raise if a criterion names a key that ``result`` (a first result) lacks.

        The controller calls this on each trial's first result. Auto-filled fields are
        always accepted, even when absent.

        Raises:
            ConfigError: Naming the unknown criteria, the keys the result has and the fix.
        """
        unknown = [
            key
            for key in self._criteria
            if key not in AUTO_FILLED_KEYS and lookup(result, key, _ABSENT) is _ABSENT
        ]
        if not unknown:
            return
        known = sorted(flatten_dict({k: v for k, v in result.items() if k != result_fields.CONFIG}))
        known_text = ", ".join(known) if known else "none"
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            if close:
                hints.append(f" Did you mean {close[0]!r} for {key!r}?")
        names = ", ".join(repr(key) for key in unknown)
        if len(unknown) == 1:
            head = f"stop criterion {names} is not a key of the reported results"
            fix = "Report it, or fix the name in `stop`."
        else:
            head = f"stop criteria {names} are not keys of the reported results"
            fix = "Report them, or fix the names in `stop`."
        raise ConfigError(f"{head} (keys: {known_text}).{''.join(hints)} {fix}")

    def __repr__(self) -> str:
        return f"DictStopper({self._criteria!r})"
