"""AxSearch's side of the Ax library: importing it quietly, checking a user's client,
naming the objective, and writing a client to JSON and back.

Nothing here holds searcher state; :class:`atune.search.ax.AxSearch` calls these.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._library import ignore_warnings, import_library

__all__ = ["ax_error", "check_client", "dump_client", "import_ax", "load_client", "objective_name"]

#: Name the objective gets inside Ax when ``metric`` is not a plain identifier (Ax
#: parses objectives as expressions, so ``"val-loss"`` would read as ``val - loss``).
OBJECTIVE_ALIAS = "atune_objective"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_quieted = False

#: (category, message regex, module regex) of library warnings that only add noise: Ax's
#: own deprecations and pandas 3 deprecations raised inside Ax, and BoTorch's notices
#: that one acquisition optimisation restart failed (it retries by itself).
_IGNORED_WARNINGS = (
    (DeprecationWarning, "", r"ax\."),
    (RuntimeWarning, r"Optimization failed", r"botorch\."),
)


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


#: The Ax logger that announces its SQL storage at INFO when Ax is imported.
_IMPORT_TIME_LOGGER = "ax.storage.sqa_store.with_db_settings_base"


def import_ax() -> Any:
    """Import ``ax.api``; keep Ax's INFO chatter off stderr unless the user set it up.

    Ax logs through its own non-propagating ``"ax"`` logger, whose stream handler it
    sets to INFO and whose module loggers it sets to INFO explicitly, so raising the
    ``"ax"`` logger's level (``quiet_logger``) has no effect; the handler is raised
    instead, and the one INFO line Ax logs while being imported is filtered out. A user
    who configured the ``"ax"`` logger before the import, or changed Ax's handler level
    afterwards, keeps their setting.
    """
    global _quieted
    first = "ax" not in sys.modules
    ax_root = logging.getLogger("ax")
    user_set = ax_root.level != logging.NOTSET or bool(ax_root.handlers)
    if first and not user_set:
        logging.getLogger(_IMPORT_TIME_LOGGER).addFilter(_BelowWarning())
    api = import_library("ax.api", "AxSearch", "ax", "ax-platform")
    ignore_warnings(*_IGNORED_WARNINGS)
    if not _quieted and not (first and user_set):
        _quieted = True
        from ax.utils.common import logger as ax_logger

        handler = getattr(ax_logger, "ROOT_STREAM_HANDLER", None)
        if handler is not None and handler.level == getattr(
            ax_logger, "DEFAULT_LOG_LEVEL", logging.INFO
        ):
            handler.setLevel(logging.WARNING)
    return api


def ax_error() -> type[Exception]:
    """Ax's base exception class (imported when needed)."""
    from ax.exceptions.core import AxError

    return AxError


def _legacy_client(obj: Any) -> bool:
    return any(
        cls.__name__ == "AxClient" and cls.__module__.startswith("ax.service")
        for cls in type(obj).__mro__
    )


def check_client(api: Any, client: Any) -> None:
    """Raise unless ``client`` is an ``ax.api.Client`` (the legacy AxClient is named)."""
    if _legacy_client(client):
        raise ConfigError(
            "AxSearch builds on Ax 1.x's ax.api.Client; `ax_client` is the legacy "
            "ax.service.ax_client.AxClient, deprecated in Ax 1.x. Build the experiment "
            "with `client = ax.api.Client()`, `client.configure_experiment(parameters=[...])`"
            " and `client.configure_optimization('-loss')`, and pass that client (or let "
            "AxSearch build one: pass `space`, `metric` and `mode`)"
        )
    if not isinstance(client, api.Client):
        raise ConfigTypeError(
            f"AxSearch: `ax_client` must be an ax.api.Client, got {type(client).__name__}"
        )


def objective_name(metric: str) -> str:
    """The name ``metric`` has inside Ax: itself, or :data:`OBJECTIVE_ALIAS` when Ax
    would not read it as one metric name."""
    from ax.api.utils.instantiation.from_string import optimization_config_from_string

    try:  # Ax reads objectives as sympy expressions: "val-loss", "1st", "E" fail
        ok = optimization_config_from_string(metric).objective.metric_names == [metric]
    except Exception:
        ok = False
    return metric if ok and _IDENTIFIER.match(metric) else OBJECTIVE_ALIAS


def dump_client(client: Any) -> str:
    """The client's experiment and generation strategy as Ax's JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ax_client.json")
        client.save_to_json_file(path)
        with open(path) as f:
            return f.read()


def load_client(snapshot: str, storage_config: Any = None) -> Any:
    """An ``ax.api.Client`` read back from :func:`dump_client`'s JSON."""
    api = import_ax()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ax_client.json")
        with open(path, "w") as f:
            f.write(snapshot)
        return api.Client.load_from_json_file(path, storage_config=storage_config)
