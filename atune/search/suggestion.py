"""The 0.7 suggestion-based searcher base class, on top of the modern protocol.

Ray Tune 0.7's custom search algorithms derived from ``SuggestionAlgorithm`` and
overrode ``_suggest(trial_id)``; returning None paused the queries until a trial
completed, and ``max_concurrent`` bounded the trials in flight. Such a class runs in
atune unchanged (import it from :mod:`atune.suggest` or :mod:`atune.search`).
"""

from __future__ import annotations

import functools
from typing import Any

from atune._metric import legacy_metric_mode
from atune.errors import ConfigError
from atune.search._base import SyncSearcher

__all__ = ["SuggestionAlgorithm"]


class SuggestionAlgorithm(SyncSearcher):
    """Base class of 0.7-style searchers: override :meth:`_suggest`.

    ``_suggest(trial_id)`` returns a config dict, or None for "nothing now" (atune asks
    again after the next trial completes). The handlers are plain methods and run as
    those of a :class:`~atune.search.SyncSearcher` (``_suggest`` in a worker thread, one
    call at a time).

    Args:
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        max_concurrent: At most this many of the searcher's trials unfinished at once;
            ``_suggest`` is not called while that many run. None: no limit.
        use_early_stopped_trials: Kept for 0.7 compatibility: whether trials stopped
            early by a scheduler are reported (they always are; this only sets
            :attr:`use_early_stopped_trials` for subclasses that look at it).
        reward_attr: 0.7 name of a metric that is maximised (``metric=reward_attr,
            mode="max"``).

    Example:
        >>> class Halving(SuggestionAlgorithm):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.x = 1.0
        ...
        ...     def _suggest(self, trial_id):
        ...         self.x /= 2
        ...         return {"x": self.x}
        >>> suggester = Halving(max_concurrent=1, metric="loss", mode="min")
        >>> suggester.suggest("t1")
        {'x': 0.5}
        >>> suggester.suggest("t2") is None  # one trial in flight already
        True
        >>> suggester.on_trial_complete("t1", {"loss": 0.25})
        >>> suggester.suggest("t2")
        {'x': 0.25}
    """

    def __init__(
        self,
        metric: str | None = None,
        mode: str | None = None,
        max_concurrent: int | None = None,
        use_early_stopped_trials: bool = True,
        reward_attr: str | None = None,
    ) -> None:
        metric, mode = legacy_metric_mode(metric, mode, reward_attr)
        super().__init__(metric, mode)
        if max_concurrent is not None and (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise ConfigError(
                f"`max_concurrent` must be None or an int >= 1, got {max_concurrent!r}"
            )
        self.max_concurrent = max_concurrent
        self.use_early_stopped_trials = bool(use_early_stopped_trials)
        self._live_trials: set[str] = set()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Keep the in-flight count right when a subclass overrides on_trial_complete.

        0.7 subclasses override ``on_trial_complete`` without calling the base, so the
        count is updated by a wrapper around the override.
        """
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("on_trial_complete")
        if own is None or getattr(own, "_counts_live_trials", False):
            return

        @functools.wraps(own)
        def on_trial_complete(self: SuggestionAlgorithm, trial_id: str, *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
            self._live_trials.discard(trial_id)
            return own(self, trial_id, *args, **kw)

        on_trial_complete._counts_live_trials = True  # type: ignore[attr-defined]
        cls.on_trial_complete = on_trial_complete  # type: ignore[method-assign]

    def _suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Return the config of a new trial, or None for "nothing now"."""
        raise NotImplementedError

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        """Call :meth:`_suggest` unless ``max_concurrent`` trials are unfinished."""
        if self.max_concurrent is not None and len(self._live_trials) >= self.max_concurrent:
            return None
        config = self._suggest(trial_id)
        if isinstance(config, dict):
            self._live_trials.add(trial_id)
        return config

    def on_trial_complete(  # type: ignore[override]
        self,
        trial_id: str,
        result: dict[str, Any] | None = None,
        error: bool = False,
        early_terminated: bool = False,
    ) -> None:
        """Called once when a trial ends (``early_terminated`` is kept for 0.7 code)."""
        self._live_trials.discard(trial_id)
