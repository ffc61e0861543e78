"""Per-trial result files: JSON lines, CSV and TensorBoard event files.

The three default logger callbacks write, in each trial directory:

* ``params.json``: the trial config (rewritten whenever the trial (re)starts);
* ``result.json``: one JSON object per line, one line per result;
* ``progress.csv``: one row per result, header from the first result;
* ``events.out.tfevents.<time>.<host>``: one TensorBoard event per result.

Each buffers results on the event loop and writes them in one worker-thread job per
flush (see :mod:`atune.callbacks._buffered`). Legacy (Ray Tune 0.7) per-trial
:class:`Logger` classes run through :class:`LegacyLoggerCallback`, which calls them
from the same kind of thread job.

This module is the public face of the loggers; each lives in its own module:

* :mod:`atune.callbacks._buffered`: the buffer-then-write base class;
* :mod:`atune.callbacks._json_logger`, :mod:`atune.callbacks._csv_logger`,
  :mod:`atune.callbacks._tbx_logger` (with :mod:`atune.callbacks._tfrecord`): the
  three file formats;
* :mod:`atune.callbacks._legacy_logger`: :class:`Logger`, :class:`LegacyLoggerCallback`
  and :func:`loggers_to_callbacks`.
"""

from __future__ import annotations

from atune.callbacks._base import LoggerCallback
from atune.callbacks._csv_logger import CSVLoggerCallback
from atune.callbacks._json_logger import JsonLoggerCallback
from atune.callbacks._legacy_logger import LegacyLoggerCallback, Logger, loggers_to_callbacks
from atune.callbacks._tbx_logger import TBXLoggerCallback

__all__ = [
    "DEFAULT_LOGGERS",
    "CSVLoggerCallback",
    "JsonLoggerCallback",
    "LegacyLoggerCallback",
    "Logger",
    "TBXLoggerCallback",
    "loggers_to_callbacks",
]

#: The logger callbacks created when none are given: JSON, CSV and TensorBoard.
DEFAULT_LOGGERS: tuple[type[LoggerCallback], ...] = (
    JsonLoggerCallback,
    CSVLoggerCallback,
    TBXLoggerCallback,
)
