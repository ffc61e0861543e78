"""Results as YAML-like text: the ``verbose=2`` block and :func:`atune.logger.pretty_print`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from atune.result import CONFIG

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["format_result", "yaml_lines"]


def format_result(trial: Trial, result: Mapping[str, Any]) -> str:
    """The verbose (``verbose=2``) block printed for one result.

    ``Result for <trial name>:`` then one ``key: value`` line per field, sorted by
    key, YAML-like (nested dicts indented by two more spaces). ``config`` and fields
    whose value is None are left out, as in Ray Tune.

    Example:
        >>> print(format_result(trial, {"done": False, "loss": 0.5}))  # doctest: +SKIP
        Result for train_fn_3a1f2_00000:
          done: false
          loss: 0.5
    """
    lines = [f"Result for {trial.name}:"]
    fields = {k: v for k, v in result.items() if k != CONFIG and v is not None}
    yaml_lines(fields, 1, lines)
    return "\n".join(lines)


#: Nesting shown by :func:`format_result`; deeper (or self-referencing) dicts are
#: printed as one value.
_MAX_YAML_DEPTH = 16
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "~"})
_YAML_SPECIAL = frozenset(":#{}[],&*!|>'\"%@`\n")


def yaml_lines(data: Mapping[Any, Any], depth: int, out: list[str]) -> None:
    """Appends one ``key: value`` line per field of ``data`` to ``out``, sorted by key.

    Lines are indented by two spaces per ``depth``; nested dicts by two more.
    """
    pad = "  " * depth
    for key in sorted(data, key=str):
        value = data[key]
        if isinstance(value, Mapping) and value and depth < _MAX_YAML_DEPTH:
            out.append(f"{pad}{key}:")
            yaml_lines(value, depth + 1, out)
        else:
            out.append(f"{pad}{key}: {_yaml_scalar(value)}")


def _yaml_scalar(value: Any) -> str:
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if tolist is not None and not isinstance(value, (str, bytes)):
        try:
            value = tolist()
        except Exception:  # a foreign tolist(): print the object itself
            pass
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _yaml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml_scalar(v)}" for k, v in value.items()) + "}"
    return _yaml_string(repr(value))


def _yaml_string(text: str) -> str:
    """``text`` as is, or quoted when YAML would read it as something else."""
    plain = (
        text
        and text.strip() == text
        and text.lower() not in _YAML_WORDS
        and not _YAML_SPECIAL.intersection(text)
        and not _number_like(text)
    )
    return text if plain else "'" + text.replace("'", "''") + "'"


def _number_like(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
