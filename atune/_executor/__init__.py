"""Executors: where trials run. ``_base.py`` holds the protocol, ``_ray.py`` (the only
module importing ``ray``) and ``_local.py`` implement it, ``_worker.py`` is the trial
worker both run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from atune._executor._base import Executor

__all__ = ["EXECUTOR_NAMES", "create_executor"]

#: The executors ``TuneConfig(executor=...)`` names.
EXECUTOR_NAMES = ("ray", "local")


def create_executor(choice: Any) -> Executor:
    """The executor for ``TuneConfig.executor``: a new one for a name, else ``choice``.

    The Ray executor is imported only when chosen, so that the local one runs
    without importing ``ray``.
    """
    if choice == "ray":
        from atune._executor._ray import RayExecutor

        return RayExecutor()
    if choice == "local":
        from atune._executor._local import LocalExecutor

        return LocalExecutor()
    return cast("Executor", choice)  # validated by TuneConfig
