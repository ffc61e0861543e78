"""Executors, for ``TuneConfig(executor=...)``: where the trials of an experiment run.

``"ray"`` (the default) runs each trial in its own Ray actor; ``"local"`` runs every
trial in this process (see ``docs/executors.md``). Pass an instance to configure one::

    from atune.executors import LocalExecutor

    tune_config = atune.TuneConfig(executor=LocalExecutor({"CPU": 8, "GPU": 1}))

``RayExecutor`` is imported on first use: importing this module does not import Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atune._executor._base import Executor, TrialHandle
from atune._executor._local import LocalExecutor

if TYPE_CHECKING:
    from atune._executor._ray import RayExecutor

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "TrialHandle"]


def __getattr__(name: str) -> Any:
    if name == "RayExecutor":
        from atune._executor._ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
