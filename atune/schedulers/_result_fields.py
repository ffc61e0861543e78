"""Reading the fields a scheduler decides on out of a result, with Ray Tune's strict check.

Ray Tune fails an experiment whose trials report results without the metric its
scheduler needs (unless ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1``); the schedulers
here do the same, naming the missing field and the fields the result did have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from atune import result as R
from atune.errors import ConfigError

__all__ = ["STRICT_METRIC_ENV", "numeric_fields", "strict_metric_checking"]

#: Set to ``1`` to let schedulers skip results that lack their fields (as in Ray Tune).
STRICT_METRIC_ENV = "TUNE_DISABLE_STRICT_METRIC_CHECKING"

#: Filled in by atune for every result; left out of the "it reported ..." list.
_BOOKKEEPING_KEYS = frozenset((*R.AUTO_RESULT_KEYS, R.EXPERIMENT_TAG))


def strict_metric_checking() -> bool:
    """True unless ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1`` (read at each call)."""
    try:
        return int(os.environ.get(STRICT_METRIC_ENV, "0")) != 1
    except ValueError:
        return True


def numeric_fields(
    owner: str, result: Mapping[str, Any], fields: tuple[str, ...]
) -> tuple[float, ...] | None:
    """Return ``result[f]`` as floats for each of ``fields``.

    A field that is absent (or None) raises :class:`ConfigError` naming it and the
    fields the trainable did report; with strict checking disabled it gives None
    instead, and the scheduler lets the trial continue. A value that is not a number
    always raises.

    Args:
        owner: The scheduler's class name, for the message.
        result: The result being decided on.
        fields: The names to read, e.g. ``(time_attr, metric)``.
    """
    out: list[float] = []
    for name in fields:
        value = result.get(name)
        if value is None:
            if not strict_metric_checking():
                return None
            reported = sorted(k for k in result if k not in _BOOKKEEPING_KEYS)
            raise ConfigError(
                f"{owner} needs the result field {name!r}, but the trial reported "
                f"{reported} (besides atune's automatic fields). Report it, e.g. "
                f"atune.report({{{name!r}: ...}}), fix the scheduler's `metric`/`time_attr`, "
                f"or set {STRICT_METRIC_ENV}=1 to let such results pass unchecked."
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{owner} needs the result field {name!r} to be a number, got {value!r}"
            ) from None
        out.append(number)
    return tuple(out)
