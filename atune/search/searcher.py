"""Ray Tune's ``ray.tune.search.searcher`` path: ``from atune.search.searcher import Searcher``."""

from __future__ import annotations

from atune.search._base import Searcher
from atune.search._wrappers import ConcurrencyLimiter

__all__ = ["ConcurrencyLimiter", "Searcher"]
