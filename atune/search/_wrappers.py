"""Searchers that wrap other searchers: sample budget, concurrency, repetition.

* :class:`SearchGenerator` gives any searcher the experiment's ``num_samples`` budget
  (the Tuner wraps searchers other than :class:`BasicVariantGenerator` in it).
* :class:`ConcurrencyLimiter` caps how many of a searcher's trials run at once.
* :class:`Repeater` runs each suggested config several times and tells the searcher
  the average.

Wrapped searchers may be written with plain (sync) or ``async`` handlers; the
wrappers await what needs awaiting (see :func:`call_handler`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import anyio
import anyio.to_thread

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import EXPERIMENT_STATE_FORMAT, FINISHED, Searcher, SyncSearcher

__all__ = [
    "ConcurrencyLimiter",
    "Repeater",
    "SearchGenerator",
    "call_handler",
    "experiment_state",
    "snapshot_of",
]

#: Config key a Repeater sets to the repetition index (usable as a seed).
TRIAL_INDEX = "__trial_index__"


async def snapshot_of(searcher: Any) -> dict[str, Any]:
    """``searcher.snapshot()`` where it has one, else ``searcher.get_state()``."""
    snapshot = getattr(searcher, "snapshot", None)
    if snapshot is not None:
        return await snapshot()  # type: ignore[no-any-return]
    return searcher.get_state()  # type: ignore[no-any-return]


async def experiment_state(searcher: Searcher) -> dict[str, Any]:
    """What a Tuner saves: the state of the searcher it was given, and of its own wrappers.

    The wrappers the Tuner added (``SearchGenerator``, the ``ConcurrencyLimiter`` of
    ``max_concurrent_trials``) are saved apart, so :meth:`Searcher.restore` on a
    searcher built like the user's reads the file directly.
    """
    wrappers = []
    while isinstance(searcher, _Wrapper) and searcher._added_by_tuner:
        wrappers.append(searcher._own_state())
        searcher = searcher.searcher
    return {
        "format": EXPERIMENT_STATE_FORMAT,
        "searcher": await snapshot_of(searcher),
        "wrappers": wrappers,
    }


def restore_experiment_state(searcher: Searcher, state: dict[str, Any]) -> None:
    """Put ``state`` (made by :func:`experiment_state`) back into ``searcher``."""
    if not (isinstance(state, dict) and state.get("format") == EXPERIMENT_STATE_FORMAT):
        raise ValueError("not a state saved by atune")
    wrappers = list(state["wrappers"])
    while isinstance(searcher, _Wrapper) and searcher._added_by_tuner and wrappers:
        searcher.__dict__.update(wrappers.pop(0))
        searcher = searcher.searcher
    searcher.set_state(state["searcher"])


#: The handlers of a SyncSearcher that run in a worker thread (when ``offload`` is set).
_OFFLOADED = frozenset({"suggest", "on_trial_complete"})


async def call_handler(searcher: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a searcher handler that may be ``async def`` or a plain method.

    The handlers of a :class:`SyncSearcher` run one at a time; its ``suggest`` and
    ``on_trial_complete`` run in a worker thread unless the class sets ``offload = False``.
    """
    if isinstance(searcher, SyncSearcher):
        return await _call_sync_searcher(searcher, name, *args, **kwargs)
    out = getattr(searcher, name)(*args, **kwargs)
    if inspect.isawaitable(out):
        out = await out
    return out


async def _call_sync_searcher(searcher: SyncSearcher, name: str, *args: Any, **kwargs: Any) -> Any:
    method = getattr(searcher, name)
    if name == "on_trial_result" and type(searcher).on_trial_result is SyncSearcher.on_trial_result:
        return None  # not overridden: nothing to run, and no lock to wait for
    lock = searcher.__dict__.get("_handler_lock")
    if lock is None:
        lock = searcher.__dict__["_handler_lock"] = anyio.Lock()
    async with lock:
        if searcher.offload and name in _OFFLOADED:
            return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))
        return method(*args, **kwargs)


class _Wrapper(Searcher):
    """Forwards the protocol to ``searcher``; subclasses change what they need."""

    #: Set on the wrappers a Tuner adds itself (saved apart from the user's searcher).
    _added_by_tuner = False

    def __init__(self, searcher: Searcher) -> None:
        if not isinstance(searcher, Searcher):
            raise ConfigTypeError(f"`searcher` must be an atune Searcher, got {searcher!r}")
        super().__init__()
        self.searcher = searcher

    @property
    def metric(self) -> str | None:
        return self.searcher.metric

    @property
    def mode(self) -> str | None:
        return self.searcher.mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        return await call_handler(self.searcher, "suggest", trial_id)

    async def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        await call_handler(self.searcher, "on_trial_result", trial_id, result)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        await call_handler(self.searcher, "on_trial_complete", trial_id, result, error=error)

    async def on_pause(self, trial_id: str) -> None:
        """Forward HyperBandForBOHB's pause notice, if the wrapped searcher takes it."""
        if getattr(self.searcher, "on_pause", None) is not None:
            await call_handler(self.searcher, "on_pause", trial_id)

    async def on_unpause(self, trial_id: str) -> None:
        """Forward HyperBandForBOHB's resume notice, if the wrapped searcher takes it."""
        if getattr(self.searcher, "on_unpause", None) is not None:
            await call_handler(self.searcher, "on_unpause", trial_id)

    def is_finished(self) -> bool:
        return self.searcher.is_finished()

    def _own_state(self) -> dict[str, Any]:
        """The wrapper's own attributes, without the wrapped searcher."""
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def get_state(self) -> dict[str, Any]:
        return {"wrapper": self._own_state(), "searcher": self.searcher.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state["wrapper"])
        self.searcher.set_state(state["searcher"])

    async def snapshot(self) -> dict[str, Any]:
        inner = await snapshot_of(self.searcher)
        return {"wrapper": self._own_state(), "searcher": inner}


class SearchGenerator(_Wrapper):
    """Stop asking ``searcher`` for configs after ``num_samples`` suggestions.

    ``num_samples`` comes from ``TuneConfig`` through :meth:`set_search_properties`;
    a negative value means no limit. The searcher may also finish earlier by itself.
    """

    def __init__(self, searcher: Searcher) -> None:
        super().__init__(searcher)
        self._num_samples = 1
        self._suggested = 0
        self._finished = False

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        self._num_samples = int(spec.get("num_samples", 1))
        return super().set_search_properties(metric, mode, config, **spec)

    @property
    def total_samples(self) -> int | None:
        return None if self._num_samples < 0 else self._num_samples

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._finished or 0 <= self._num_samples <= self._suggested:
            self._finished = True
            return FINISHED
        config = await super().suggest(trial_id)
        if config == FINISHED:
            self._finished = True
        elif config is not None:
            self._suggested += 1
        return config

    def is_finished(self) -> bool:
        return self._finished or super().is_finished()


class ConcurrencyLimiter(_Wrapper):
    """Let at most ``max_concurrent`` trials of ``searcher`` be unfinished at once.

    A paused trial is unfinished: it keeps its slot until it completes, as in Ray Tune
    (so at most ``max_concurrent`` trials run or wait to resume at any time).

    Args:
        searcher: The searcher to limit.
        max_concurrent: The cap (>= 1).
        batch: Suggest ``max_concurrent`` configs, then wait until all of them finished
            and tell the searcher their results together, before the next batch
            (for searchers that update best from a whole batch).
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False) -> None:
        if isinstance(searcher, ConcurrencyLimiter):
            raise ConfigError(
                "the searcher is already a ConcurrencyLimiter; set its `max_concurrent` "
                "instead of wrapping it again (TuneConfig(max_concurrent_trials=...) "
                "wraps the searcher itself)"
            )
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise ConfigTypeError(f"`max_concurrent` must be an int, got {max_concurrent!r}")
        if max_concurrent < 1:
            raise ConfigError(f"`max_concurrent` must be >= 1, got {max_concurrent}")
        super().__init__(searcher)
        self.max_concurrent = max_concurrent
        self.batch = bool(batch)
        self._live: set[str] = set()
        self._held: list[tuple[str, dict[str, Any] | None, bool]] = []  # batch mode

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self._live) >= self.max_concurrent:
            return None
        if self.batch and self._held:
            return None  # the batch is not finished yet
        config = await super().suggest(trial_id)
        if isinstance(config, dict):
            self._live.add(trial_id)
        return config

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id not in self._live:
            return await super().on_trial_complete(trial_id, result, error)
        if not self.batch:
            self._live.discard(trial_id)
            return await super().on_trial_complete(trial_id, result, error)
        self._held.append((trial_id, result, error))
        if len(self._held) == len(self._live):  # the whole batch is done
            held, self._held = self._held, []
            self._live.clear()
            for tid, res, err in held:
                await super().on_trial_complete(tid, res, err)
        return None


class Repeater(_Wrapper):
    """Run each config ``repeat`` times and tell the searcher the mean result.

    Each suggestion of ``searcher`` becomes ``repeat`` trials (with
    ``config["__trial_index__"] = 0 .. repeat-1`` when ``set_index``, usable as a
    seed). When all of them completed, the searcher gets one ``on_trial_complete``
    for the first of them, with the searcher's metric averaged over the repeats that
    reported it (``error=True`` if none did). Don't combine it with an early-stopping
    scheduler: stopped repeats bias the mean.
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ConfigError(f"`repeat` must be an int >= 1, got {repeat!r}")
        super().__init__(searcher)
        self.repeat = repeat
        self.set_index = bool(set_index)
        self._current: tuple[str, dict[str, Any]] | None = None  # (first trial id, config)
        self._given = 0
        self._groups: dict[str, str] = {}  # trial id -> first trial id of its group
        self._results: dict[str, list[dict[str, Any] | None]] = {}

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._current is None or self._given >= self.repeat:
            config = await super().suggest(trial_id)
            if not isinstance(config, dict):
                return config
            self._current, self._given = (trial_id, config), 0
            self._results[trial_id] = []
        first, config = self._current
        out = dict(config)
        if self.set_index:
            out[TRIAL_INDEX] = self._given
        self._given += 1
        self._groups[trial_id] = first
        return out

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        first = self._groups.pop(trial_id, None)
        if first is None:
            return
        collected = self._results[first]
        collected.append(None if error else result)
        if len(collected) < self.repeat:
            return
        del self._results[first]
        metric = self.searcher.metric
        values = [
            r[metric]
            for r in collected
            if r is not None and metric is not None and isinstance(r.get(metric), (int, float))
        ]
        if not values:
            await super().on_trial_complete(first, None, error=True)
            return
        merged = dict(next(r for r in collected if r is not None))
        merged[metric] = sum(values) / len(values)  # type: ignore[index]
        await super().on_trial_complete(first, merged, error=False)
