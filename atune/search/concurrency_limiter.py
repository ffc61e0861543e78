"""Ray Tune's ``ray.tune.search.concurrency_limiter`` path for :class:`ConcurrencyLimiter`."""

from __future__ import annotations

from atune.search._wrappers import ConcurrencyLimiter

__all__ = ["ConcurrencyLimiter"]
