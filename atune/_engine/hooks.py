"""Callback hooks from events: which :class:`~atune.callbacks.Callback` hook an event means.

The same mapping serves both ways callbacks run:

- inline, for user callbacks: the controller calls :meth:`CallbackHooks.deliver` at
  the point Ray Tune calls them, so a hook sees the trials as of the event and may
  change a result in place (``result["should_checkpoint"] = True`` is honoured);
- from the event bus, for loggers (:class:`~atune._engine.sinks.LoggerSink`), which
  only record what happened and so may run behind.

=========================  ==============================================
event                      hooks
=========================  ==============================================
``TrialWorkerStarted``     ``on_trial_start`` (``on_trial_restore`` if restored)
``ResultRecorded``         ``on_trial_result``
``CheckpointRecorded``     ``on_trial_save``, ``on_checkpoint`` (not for a copy)
``TrialRetrying``          ``on_trial_recover``
``TrialCompleted``         ``on_trial_complete``
``TrialErrored``           ``on_trial_error``
``ExperimentEnded``        ``on_experiment_end``
=========================  ==============================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from atune._engine import events as E
from atune._engine.plugins import call_plugin, plugin_error
from atune._engine.state import TrialTable
from atune._trial import Trial
from atune.callbacks._base import Callback
from atune.checkpoint import Checkpoint
from atune.errors import AtuneError

__all__ = ["CallbackHooks"]


class CallbackHooks:
    """Calls the hooks of ``callbacks`` for each event, in order; awaits async hooks."""

    def __init__(
        self,
        callbacks: Sequence[Callback],
        table: TrialTable,
        iteration: Callable[[], int],
    ) -> None:
        self.callbacks = list(callbacks)
        self._table = table
        self._iteration = iteration
        #: Per hook name: (callback, bound method, is it async), computed on first use.
        self._bound: dict[str, list[tuple[Callback, Any, bool]]] = {}
        self._any_async: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    async def deliver(self, event: E.Event) -> None:
        if not self.callbacks:
            return
        if isinstance(event, E.ExperimentEnded):
            await self.call("on_experiment_end", self._table.trials)
            return
        if not isinstance(event, E.TrialEvent):
            return
        trial = self._table.get(event.trial_id)
        if trial is None:
            return  # dropped from the experiment (never started) meanwhile
        if isinstance(event, E.ResultRecorded):  # the hot path: one call per result
            await self.call(
                "on_trial_result", self._iteration(), self._table.trials, trial, event.result
            )
        elif isinstance(event, E.CheckpointRecorded):
            if event.copied_from is None:
                await self.trial_hook("on_trial_save", trial)
                await self.trial_hook("on_checkpoint", trial, checkpoint=Checkpoint(event.path))
        elif isinstance(event, E.TrialWorkerStarted):
            name = "on_trial_restore" if event.restored else "on_trial_start"
            if event.after_failure:  # tell loggers where the trial's history continues
                await self.trial_hook(name, trial, rewind_to=event.start_iteration)
            else:
                await self.trial_hook(name, trial)
        elif isinstance(event, E.TrialCompleted):
            await self.trial_hook("on_trial_complete", trial)
        elif isinstance(event, E.TrialErrored):
            await self.trial_hook("on_trial_error", trial)
        elif isinstance(event, E.TrialRetrying):
            await self.trial_hook("on_trial_recover", trial)

    async def trial_hook(self, name: str, trial: Trial, **kwargs: Any) -> None:
        await self.call(name, self._iteration(), self._table.trials, trial=trial, **kwargs)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Call hook ``name`` of every callback; a failure raises PluginError."""
        bound = self._bound.get(name)
        if bound is None:
            bound = self._bind(name)
        for cb, hook, is_async in bound:
            try:
                if is_async:
                    await hook(*args, **kwargs)
                else:
                    out = hook(*args, **kwargs)
                    if out is not None and inspect.isawaitable(out):
                        await out
            except AtuneError:
                raise
            except Exception as exc:
                raise plugin_error(cb, name, exc) from exc

    def deliver_now(self, event: E.Event) -> bool:
        """Deliver a result without awaiting, if every ``on_trial_result`` is a plain
        method (the loggers' hot path); False if it must go through :meth:`deliver`."""
        if type(event) is not E.ResultRecorded:
            return False
        bound = self._bound.get("on_trial_result")
        if bound is None:
            self._bind("on_trial_result")
            bound = self._bound["on_trial_result"]
        if self._any_async.get("on_trial_result", True):
            return False
        trial = self._table.get(event.trial_id)
        if trial is None:
            return True
        iteration, trials, result = self._iteration(), self._table.trials, event.result
        for cb, hook, _ in bound:
            try:
                hook(iteration, trials, trial, result)
            except AtuneError:
                raise
            except Exception as exc:
                raise plugin_error(cb, "on_trial_result", exc) from exc
        return True

    def _bind(self, name: str) -> list[tuple[Callback, Any, bool]]:
        bound = self._bound[name] = [
            (cb, getattr(cb, name), inspect.iscoroutinefunction(getattr(cb, name)))
            for cb in self.callbacks
        ]
        self._any_async[name] = any(is_async for _, _, is_async in bound)
        return bound

    def remove(self, callback: object) -> None:
        """Stop calling ``callback`` (it failed)."""
        self.callbacks = [cb for cb in self.callbacks if cb is not callback]
        self._bound.clear()
        self._any_async.clear()

    async def flush(self) -> None:
        for cb in self.callbacks:
            await call_plugin(cb, "flush")
