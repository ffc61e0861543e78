"""Ray Tune's ``ray.tune.callback`` path: ``from atune.callback import Callback``."""

from __future__ import annotations

from atune.callbacks._base import Callback

__all__ = ["Callback"]
