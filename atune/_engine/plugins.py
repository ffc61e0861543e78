"""The one failure policy for plugins: callbacks, loggers, searchers, schedulers, stoppers.

Every call the engine makes into a plugin goes through :func:`call_plugin`. When the
plugin raises, the experiment ends the way ``stop_all()`` ends it (running trials
stop after the result they are on, everything recorded stays recorded) and
``fit()`` raises :class:`~atune.errors.PluginError`, which names the plugin, the hook
and the error, with the plugin's exception as ``__cause__``.

Two kinds of exceptions pass through unchanged: atune's own errors
(:class:`~atune.errors.AtuneError`, e.g. the ``ConfigError`` of a searcher that
rejects a search space, whose message already says what to fix), and cancellation.
"""

from __future__ import annotations

import inspect
from typing import Any

from atune.errors import AtuneError, PluginError

__all__ = ["call_plugin", "call_plugin_sync", "plugin_error"]


async def call_plugin(plugin: Any, hook: str, *args: Any, **kwargs: Any) -> Any:
    """``plugin.<hook>(*args, **kwargs)``, awaited if it returns an awaitable."""
    try:
        out = getattr(plugin, hook)(*args, **kwargs)
        if inspect.isawaitable(out):
            out = await out
    except AtuneError:
        raise
    except Exception as exc:
        raise plugin_error(plugin, hook, exc) from exc
    return out


def call_plugin_sync(plugin: Any, hook: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`call_plugin` for hooks that are plain methods (stoppers)."""
    try:
        return getattr(plugin, hook)(*args, **kwargs)
    except AtuneError:
        raise
    except Exception as exc:
        raise plugin_error(plugin, hook, exc) from exc


def plugin_error(plugin: Any, hook: str, exc: BaseException) -> PluginError:
    name = type(plugin).__name__
    kind = _kind(plugin)
    return PluginError(
        f"The {kind} {name}.{hook}() raised {type(exc).__name__}: {exc}. The experiment "
        "stopped; the results and checkpoints recorded until then are kept. Fix the "
        f"{kind} (the traceback of the original error is above this one).",
        plugin=plugin,
        hook=hook,
    )


def _kind(plugin: Any) -> str:
    from atune.callbacks._base import Callback, LoggerCallback
    from atune.schedulers._base import TrialScheduler
    from atune.search._base import Searcher

    if isinstance(plugin, LoggerCallback):
        return "logger"
    if isinstance(plugin, Callback):
        return "callback"
    if isinstance(plugin, Searcher):
        return "searcher"
    if isinstance(plugin, TrialScheduler):
        return "scheduler"
    if callable(getattr(plugin, "stop_all", None)):
        return "stopper"
    return "plugin"
