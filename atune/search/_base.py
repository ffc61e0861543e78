"""The searcher protocol: an async event handler that proposes configs.

The controller asks :meth:`Searcher.suggest` for a config whenever it has room for a
new trial, and tells the searcher about every recorded result and every finished
trial. A searcher may answer ``None`` ("nothing now": the controller asks again after
the next trial completes) or :data:`Searcher.FINISHED` ("no more trials").
"""

from __future__ import annotations

import os
import pickle
from typing import Any, ClassVar

from atune._metric import MetricMode, validate_mode
from atune.errors import AtuneError

__all__ = [
    "EXPERIMENT_STATE_FORMAT",
    "FINISHED",
    "SEARCHER_STATE_FILE",
    "Searcher",
    "SyncSearcher",
    "validate_mode",
]

#: Returned by :meth:`Searcher.suggest` when the searcher has no more configs to give.
FINISHED = "FINISHED"
#: The file, in an experiment directory, that holds the searcher's state.
SEARCHER_STATE_FILE = "searcher-state.pkl"
#: Marks a state file written by a Tuner (the searcher's state plus the Tuner's wrappers).
EXPERIMENT_STATE_FORMAT = "atune.searcher-state/1"


class Searcher(MetricMode):
    """Base class of search algorithms.

    Subclasses override :meth:`suggest` and usually :meth:`on_trial_complete`. All
    event handlers are coroutines so that a searcher can wait (on a model fit in a
    thread, on a remote service) without blocking the controller; handlers that only
    compute should stay short and push heavy work to a thread.

    Args:
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
    """

    FINISHED: ClassVar[str] = FINISHED

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Receive the Tuner's metric, mode and param space.

        Returns True when the searcher accepted them. A searcher that was built with
        its own metric/mode keeps those; the default implementation fills in what it
        lacks and accepts.
        """
        self._fill_metric_mode(metric, mode)
        return True

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """Return a config for a new trial, ``None`` for "not now", or ``FINISHED``."""
        raise NotImplementedError

    async def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Called for every recorded result of a running trial."""

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Called once when a trial ends (``error=True`` when it failed)."""

    def is_finished(self) -> bool:
        """True once the searcher will suggest nothing more."""
        return False

    def get_state(self) -> dict[str, Any]:
        """Return the state :meth:`save` persists (default: the instance ``__dict__``)."""
        return dict(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    async def snapshot(self) -> dict[str, Any]:
        """The state to save during a run, taken without holding up the event loop.

        The controller saves the searcher through this method. The default returns
        :meth:`get_state`; a searcher that must first wait for work in progress (a model
        fit in a thread) overrides it to wait asynchronously.
        """
        return self.get_state()

    def save(self, checkpoint_path: str) -> None:
        """Write the searcher's state to ``checkpoint_path``."""
        with open(os.path.expanduser(checkpoint_path), "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        """Read back state written by :meth:`save`, or saved by a Tuner during a run.

        An experiment's ``searcher-state.pkl`` holds the state of the searcher that was
        given to the Tuner, so ``restore`` on a searcher built the same way continues
        that search.
        """
        path = os.path.expanduser(checkpoint_path)
        with open(path, "rb") as f:
            data = f.read()
        try:
            state = pickle.loads(data)
        except Exception as exc:  # truncated or not a pickle: any decoder error
            raise AtuneError(
                f"{path} cannot be read back ({type(exc).__name__}: {exc}): the file is "
                f"damaged or truncated ({len(data)} bytes), or was not written by "
                "Searcher.save. Restore from a copy, or delete it to start the search afresh."
            ) from exc
        if isinstance(state, dict) and state.get("format") == EXPERIMENT_STATE_FORMAT:
            state = state["searcher"]
        self.set_state(state)

    def save_to_dir(self, checkpoint_dir: str) -> None:
        """Write the state to ``<checkpoint_dir>/searcher-state.pkl`` (Ray Tune's name)."""
        self.save(os.path.join(os.path.expanduser(checkpoint_dir), SEARCHER_STATE_FILE))

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore from ``<checkpoint_dir>/searcher-state.pkl``, e.g. an experiment directory."""
        path = os.path.join(os.path.expanduser(checkpoint_dir), SEARCHER_STATE_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"no {SEARCHER_STATE_FILE} in {checkpoint_dir!r}: pass the experiment "
                "directory of a run that used a searcher (or a directory save_to_dir wrote)"
            )
        self.restore(path)


class SyncSearcher(Searcher):
    """Base class for a searcher written without async code (Ray Tune's ``Searcher`` shape).

    Override the plain methods :meth:`suggest`, :meth:`on_trial_complete` and, if the
    searcher uses intermediate results, :meth:`on_trial_result`. atune calls them one at
    a time, never concurrently, and runs ``suggest`` and ``on_trial_complete`` (where
    model fits happen) in a worker thread, so a slow fit does not hold up the event loop
    and the results of other trials. ``on_trial_result`` is called for every result, so
    it runs on the event loop and should stay cheap; when it is not overridden it costs
    nothing.

    Set ``offload = False`` on the class to run every handler on the event loop instead
    (for searchers that are fast, or not safe to call from another thread).

    Example:
        >>> class Halving(SyncSearcher):
        ...     def __init__(self):
        ...         super().__init__(metric="loss", mode="min")
        ...         self.x = 1.0
        ...
        ...     def suggest(self, trial_id):
        ...         self.x /= 2
        ...         return {"x": self.x}
    """

    #: Run ``suggest``/``on_trial_complete`` in a worker thread (True) or on the loop.
    offload: ClassVar[bool] = True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        """Return a config for a new trial, ``None`` for "not now", or ``FINISHED``."""
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:  # type: ignore[override]
        """Called for every recorded result of a running trial (on the event loop)."""

    def on_trial_complete(  # type: ignore[override]
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Called once when a trial ends (``error=True`` when it failed)."""

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state.pop("_handler_lock", None)  # belongs to the running event loop
        return state
