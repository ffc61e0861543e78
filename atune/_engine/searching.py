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
from atune._util import pickle_any
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
        self._small = _innermost_is_basic(searcher)

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
        data = await self.state_bytes(_for_save=True)
        if data is not None:
            try:
                await anyio.to_thread.run_sync(self._write, data)
            except Exception as exc:
                self._cannot_save(exc)

    async def state_bytes(self, _for_save: bool = False) -> bytes | None:
        """The searcher's state, pickled while the gate is closed (None: it cannot be).

        A small state (the default random and grid search) is pickled on the loop;
        any other in a worker thread, so a large model never stalls the loop.
        """
        while self._saving is not None:
            await self._saving.wait()
        self._saving = saving = anyio.Event()
        try:
            while self._active:  # let calls under way finish first
                self._idle = anyio.Event()
                await self._idle.wait()
            self._idle = None
            if _for_save:
                self._changes = 0
            try:
                state = await experiment_state(self.searcher)
                if self._small:
                    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
                return await anyio.to_thread.run_sync(pickle_any, state)
            except Exception as exc:
                self._cannot_save(exc)
                return None
        finally:
            self._saving = None
            saving.set()

    def _write(self, data: bytes) -> None:
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


def _innermost_is_basic(searcher: Any) -> bool:
    from atune.search._wrappers import _Wrapper
    from atune.search.basic_variant import BasicVariantGenerator

    while isinstance(searcher, _Wrapper):
        searcher = searcher.searcher
    return isinstance(searcher, BasicVariantGenerator)


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
