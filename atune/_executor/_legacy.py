"""Ray Tune 0.7's function API: ``def train(config, reporter)``, ``reporter(**metrics)``."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["LegacyReporter"]


class _Sink(Protocol):
    def _put(self, metrics: dict[str, Any], checkpoint: None) -> None: ...


class LegacyReporter:
    """The 0.7 ``reporter(**metrics)`` callable: each call is one ``report()``."""

    def __init__(self, worker: _Sink) -> None:
        self._worker = worker

    def __call__(self, **metrics: Any) -> None:
        self._worker._put(metrics, None)
