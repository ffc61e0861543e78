"""Ray Tune's ``ray.tune.progress_reporter`` path for the console reporters.

``from atune.progress_reporter import CLIReporter`` works like Ray Tune's import; the
reporters live in :mod:`atune.callbacks.progress`.
"""

from __future__ import annotations

from atune.callbacks.progress import CLIReporter, ProgressReporter

__all__ = ["CLIReporter", "ProgressReporter"]
