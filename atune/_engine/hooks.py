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
from atune._engine.plugins import plugin_error
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
        self._is_async: dict[tuple[int, str], bool] = {}

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
        if isinstance(event, E.ResultRecorded):
            await self.trial_hook("on_trial_result", trial, result=event.result)
        elif isinstance(event, E.CheckpointRecorded):
            if event.copied_from is None:
                await self.trial_hook("on_trial_save", trial)
                await self.trial_hook("on_checkpoint", trial, checkpoint=Checkpoint(event.path))
        elif isinstance(event, E.TrialWorkerStarted):
            await self.trial_hook("on_trial_restore" if event.restored else "on_trial_start", trial)
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
        for cb in self.callbacks:
            key = (id(cb), name)
            is_async = self._is_async.get(key)
            hook = getattr(cb, name)
            if is_async is None:
                is_async = self._is_async[key] = inspect.iscoroutinefunction(hook)
            try:
                if is_async:
                    await hook(*args, **kwargs)
                else:
                    out = hook(*args, **kwargs)
                    if inspect.isawaitable(out):
                        await out
            except (AtuneError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise plugin_error(cb, name, exc) from exc

    async def flush(self) -> None:
        for cb in self.callbacks:
            try:
                await cb.flush()
            except (AtuneError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise plugin_error(cb, "flush", exc) from exc
