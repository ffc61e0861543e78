"""Callbacks: experiment hooks, per-trial loggers and console progress reporters."""

from __future__ import annotations

from atune.callbacks._base import Callback, LoggerCallback
from atune.callbacks.loggers import (
    DEFAULT_LOGGERS,
    CSVLoggerCallback,
    JsonLoggerCallback,
    LegacyLoggerCallback,
    Logger,
    TBXLoggerCallback,
)
from atune.callbacks.progress import CLIReporter, ExperimentStatus, ProgressReporter

__all__ = [
    "DEFAULT_LOGGERS",
    "CLIReporter",
    "CSVLoggerCallback",
    "Callback",
    "ExperimentStatus",
    "JsonLoggerCallback",
    "LegacyLoggerCallback",
    "Logger",
    "LoggerCallback",
    "ProgressReporter",
    "TBXLoggerCallback",
]
