"""The two libraries behind one small interface, so a workload is written once.

Each workload builds its experiment through :class:`Lib`: the experiment is made with
``lib.tuner(...)``, and every setting a workload does not name is the library's own
default. ``storage_path`` is always given
(a fresh directory per run), so neither library writes to ``~/ray_results``.
"""

from __future__ import annotations

import os
import time
from typing import Any

LIBS = ("atune", "raytune")
LABELS = {"atune": "atune", "raytune": "Ray Tune"}


class Lib:
    """One library: its module and how to make a Tuner."""

    def __init__(self, name: str) -> None:
        if name not in LIBS:
            raise ValueError(f"unknown library {name!r}: one of {LIBS}")
        self.name = name
        if name == "atune":
            import atune as tune
        else:
            from ray import tune
        self.tune = tune

    @property
    def version(self) -> str:
        if self.name == "atune":
            import atune

            return getattr(atune, "__version__", "?")
        import ray

        return ray.__version__

    def tuner(
        self,
        trainable: Any,
        param_space: dict[str, Any],
        storage: str,
        *,
        tune_config: dict[str, Any] | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> Any:
        tune = self.tune
        return tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(**(tune_config or {})),
            run_config=tune.RunConfig(storage_path=storage, **(run_config or {})),
        )

    def fit(self, tuner: Any) -> Any:
        """Run ``fit()`` as a script would (atune: its sync facade)."""
        return tuner.fit_sync() if self.name == "atune" else tuner.fit()

    def callback_base(self) -> type:
        return self.tune.Callback


def rss_mb() -> float:
    """This process's resident memory, in MB (Linux ``/proc``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_files() -> int:
    """File descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


class Clock:
    """``with Clock() as c: ...`` then ``c.seconds``."""

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
