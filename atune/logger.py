"""Ray Tune's ``ray.tune.logger`` names: ``from atune.logger import JsonLoggerCallback``.

The logger callbacks live in :mod:`atune.callbacks` (see :mod:`atune.callbacks.loggers`
for how they batch their writes); this module re-exports them under Ray Tune's path,
together with :func:`pretty_print`. It also offers the per-trial :class:`Logger` base
class of Ray Tune 0.7 and the :class:`LegacyLoggerCallback` that runs such loggers,
which Ray Tune 2.x no longer has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from atune.callbacks._base import LoggerCallback
from atune.callbacks._result_yaml import yaml_lines
from atune.callbacks.loggers import (
    DEFAULT_LOGGERS,
    CSVLoggerCallback,
    JsonLoggerCallback,
    LegacyLoggerCallback,
    Logger,
    TBXLoggerCallback,
)
from atune.result import CONFIG

__all__ = [
    "DEFAULT_LOGGERS",
    "CSVLoggerCallback",
    "JsonLoggerCallback",
    "LegacyLoggerCallback",
    "Logger",
    "LoggerCallback",
    "TBXLoggerCallback",
    "pretty_print",
]


def pretty_print(result: Mapping[str, Any], exclude: Iterable[str] | None = None) -> str:
    """A result as YAML text, one ``key: value`` line per field, sorted by key.

    As in Ray Tune, ``config``, ``hist_stats``, the keys in ``exclude`` and fields
    whose value is None are left out; nested dicts are indented by two spaces. It is
    the format of the per-result block printed at ``verbose=2``, without its header.

    Args:
        result: A result dict.
        exclude: Top-level keys to leave out.

    Returns:
        The text, each line ending with a newline.

    Example:
        >>> print(pretty_print({"loss": 0.5, "info": {"lr": 0.1}, "config": {}}), end="")
        info:
          lr: 0.1
        loss: 0.5
    """
    skip = {CONFIG, "hist_stats", *(exclude or ())}
    fields = {k: v for k, v in result.items() if k not in skip and v is not None}
    lines: list[str] = []
    yaml_lines(fields, 0, lines)
    return "".join(f"{line}\n" for line in lines)
