"""The searcher, behind one gate: every call the engine makes, and its periodic save.

The engine calls the searcher only through :meth:`SearcherGate.call`, one call at a
time. :meth:`SearcherGate.save` takes the gate too, and pickles the searcher's state
in a worker thread while holding it: the event loop stays free (the host
application's tasks, the loggers, the progress view keep running) while a large
model is serialized, and no searcher call can change the state half-way through.
A save happens only when the searcher was told something since the last one.
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
    """Serializes the engine's calls into ``searcher`` and writes its state to ``directory``."""

    def __init__(self, searcher: Searcher, directory: str) -> None:
        self.searcher = searcher
        self.path = os.path.join(directory, SEARCHER_STATE_FILE)
        self._lock = anyio.Lock()
        self._changes = 0  # calls since the last save
        self._warned = False

    async def call(self, hook: str, *args: Any, **kwargs: Any) -> Any:
        """``searcher.<hook>(...)``; a failure raises PluginError naming the hook."""
        async with self._lock:
            self._changes += 1
            try:
                return await call_handler(self.searcher, hook, *args, **kwargs)
            except (AtuneError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise plugin_error(self.searcher, hook, exc) from exc

    def is_finished(self) -> bool:
        return bool(self.searcher.is_finished())

    async def save(self, *, force: bool = False) -> None:
        """Write the state atomically (a temp file, then rename), if it changed."""
        async with self._lock:
            if not (self._changes or force):
                return
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
