"""A stopper that never stops anything."""

from __future__ import annotations

from typing import Any

from atune.stopper._base import Stopper

__all__ = ["NoopStopper"]


class NoopStopper(Stopper):
    """Never stops a trial nor the experiment."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NoopStopper()"
