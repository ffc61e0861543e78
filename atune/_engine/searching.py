"""The searcher, behind one gate: every call the engine makes, and its periodic save.

The engine calls the searcher only through :meth:`SearcherGate.call`.
:meth:`SearcherGate.save` closes the gate (new calls wait; calls under way finish
first) and pickles the searcher's state in a worker thread while it is closed: the
event loop stays free (the host application's tasks, the loggers, the progress view
keep running) while a large model is serialized, and no searcher call can change the
state half-way through. A save happens only when the searcher was told something
since the last one.
"""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from typing import Any

import anyio

from atune._engine.plugins import plugin_error
from atune.errors import AtuneError
from atune.search._base import SEARCHER_STATE_FILE, Searcher
from atune.search._wrappers import call_handler, experiment_state

__all__ = ["SearcherGate"]

log = logging.getLogger("atune")


class SearcherGate:
    """The engine's calls into ``searcher``, held while its state is being saved."""

    def __init__(self, searcher: Searcher, directory: str) -> None:
        self.searcher = searcher
        self.path = os.path.join(directory, SEARCHER_STATE_FILE)
        self._changes = 0  # calls since the last save
        self._active = 0  # calls under way (an async searcher may await in one)
        self._saving: anyio.Event | None = None  # set when a save under way ends
        self._idle: anyio.Event | None = None  # set when the last active call ends
        self._warned = False
        #: Does the searcher do anything with results? (Most only learn from the end.)
        self.listens_to_results = _listens_to_results(searcher)

    async def call(self, hook: str, *args: Any, **kwargs: Any) -> Any:
        """``searcher.<hook>(...)``; a failure raises PluginError naming the hook.

        Costs nothing extra unless a save is under way (then it waits for it): this
        runs for every result, so it takes no lock and never yields needlessly.
        """
        while self._saving is not None:
            await self._saving.wait()
        self._changes += 1
        self._active += 1
        try:
            return await call_handler(self.searcher, hook, *args, **kwargs)
        except AtuneError:
            raise
        except Exception as exc:
            raise plugin_error(self.searcher, hook, exc) from exc
        finally:
            self._active -= 1
            if not self._active and self._idle is not None:
                self._idle.set()

    async def save(self, *, force: bool = False) -> None:
        """Write the state atomically (a temp file, then rename), if it changed."""
        while self._saving is not None:  # one save at a time
            await self._saving.wait()
        if not (self._changes or force):
            return
        self._saving = saving = anyio.Event()
        try:
            while self._active:  # let calls under way finish first
                self._idle = anyio.Event()
                await self._idle.wait()
            self._idle = None
            self._changes = 0
            try:
                state = await experiment_state(self.searcher)
            except Exception as exc:
                self._cannot_save(exc)
                return
            try:
                await anyio.to_thread.run_sync(self._write, state)
            except Exception as exc:
                self._cannot_save(exc)
        finally:
            self._saving = None
            saving.set()

    def _write(self, state: dict[str, Any]) -> None:
        data = pickle.dumps(state)
        tmp = f"{self.path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path)

    def _cannot_save(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "The state of %s cannot be pickled (%s); it is not saved with the experiment.",
                type(self.searcher).__name__,
                exc,
            )


def _listens_to_results(searcher: Any) -> bool:
    """False when ``on_trial_result`` is the base class's no-op (through the wrappers)."""
    from atune.search._base import SyncSearcher
    from atune.search._wrappers import _Wrapper

    method = type(searcher).on_trial_result
    if method in (Searcher.on_trial_result, SyncSearcher.on_trial_result):
        return False
    if method is _Wrapper.on_trial_result:
        return _listens_to_results(searcher.searcher)
    return True
