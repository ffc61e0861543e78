"""Ray Tune 0.7's per-trial :class:`Logger` classes and the callback that runs them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from atune.callbacks._base import Callback, LoggerCallback
from atune.errors import ConfigTypeError

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["LegacyLoggerCallback", "Logger", "loggers_to_callbacks"]


class Logger:
    """Per-trial logger of the Ray Tune 0.7 API (deprecated there, kept for porting).

    One instance is created per trial by :class:`LegacyLoggerCallback`. Its methods
    are called from a worker thread, so they may do blocking I/O. Subclasses override
    :meth:`on_result` and, when they hold resources, :meth:`flush` and :meth:`close`;
    :meth:`_init` is the 0.7 hook for setup code.

    Args:
        config: The trial config.
        logdir: The trial directory.
        trial: The trial itself.

    Example:
        >>> class PrintLogger(Logger):
        ...     def on_result(self, result):
        ...         print("PrintLogger", result["training_iteration"])
    """

    def __init__(self, config: dict[str, Any], logdir: str, trial: Trial | None = None) -> None:
        self.config = config
        self.logdir = logdir
        self.trial = trial
        self._init()

    def _init(self) -> None:
        """Setup hook for subclasses (0.7 API)."""

    def on_result(self, result: dict[str, Any]) -> None:
        """Records one result."""
        raise NotImplementedError

    def update_config(self, config: dict[str, Any]) -> None:
        """The trial restarted with ``config`` (e.g. after a PBT exploit)."""
        self.config = config

    def flush(self) -> None:
        """Writes what was recorded to disk."""

    def close(self) -> None:
        """Releases resources; the logger is not used afterwards."""


class LegacyLoggerCallback(LoggerCallback):
    """Runs 0.7-style :class:`Logger` classes, one instance per class and trial.

    The hooks only record what happened, in order; :meth:`flush` replays it in ONE
    worker-thread job: create the loggers of a started trial (or call their
    ``update_config`` on a restart), ``on_result`` for each result, ``flush`` for each
    logger that got results, and ``close`` for the loggers of ended trials. Exceptions
    raised by a logger propagate out of :meth:`flush`.

    Args:
        logger_classes: The :class:`Logger` subclasses to instantiate per trial.
    """

    def __init__(self, logger_classes: Iterable[type[Logger]]) -> None:
        self.logger_classes = tuple(logger_classes)
        # (trial, op, payload) in hook order; swapped out by flush.
        self._ops: list[tuple[Trial, str, Any]] = []
        self._lock: anyio.Lock | None = None
        # Loggers per trial; touched only by the writer thread.
        self._loggers: dict[Trial, list[Logger]] = {}

    def log_trial_start(self, trial: Trial) -> None:
        self._ops.append((trial, "start", trial.config))

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        self._ops.append((trial, "result", dict(result)))

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        self._ops.append((trial, "end", failed))

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for trial in trials:
            self._ops.append((trial, "end", False))

    async def flush(self) -> None:
        """Replays the recorded hooks on the loggers, in one worker-thread job."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            ops, self._ops = self._ops, []
            if ops:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._replay, ops)

    def _trial_loggers(self, trial: Trial) -> list[Logger]:
        loggers = self._loggers.get(trial)
        if loggers is None:
            loggers = [
                cls(config=trial.config, logdir=trial.local_path, trial=trial)
                for cls in self.logger_classes
            ]
            self._loggers[trial] = loggers
        return loggers

    def _replay(self, ops: list[tuple[Trial, str, Any]]) -> None:
        to_flush: dict[Trial, list[Logger]] = {}
        for trial, op, payload in ops:
            if op == "start":
                if trial in self._loggers:
                    for logger in self._loggers[trial]:
                        logger.update_config(payload)
                else:
                    self._trial_loggers(trial)
            elif op == "result":
                loggers = self._trial_loggers(trial)
                for logger in loggers:
                    logger.on_result(payload)
                to_flush[trial] = loggers
            else:  # "end"
                to_flush.pop(trial, None)
                for logger in self._loggers.pop(trial, []):
                    logger.flush()
                    logger.close()
        for loggers in to_flush.values():
            for logger in loggers:
                logger.flush()


def loggers_to_callbacks(loggers: Iterable[type]) -> list[Callback]:
    """Turns a 0.7-style ``loggers=`` sequence into callbacks.

    Callback classes (such as those of :data:`~atune.callbacks.DEFAULT_LOGGERS`) are instantiated;
    :class:`Logger` subclasses are gathered into one :class:`LegacyLoggerCallback`.
    So ``loggers=DEFAULT_LOGGERS + (MyLogger,)`` keeps the default files and adds
    ``MyLogger``.

    Args:
        loggers: Classes, each a :class:`Callback` or a :class:`Logger` subclass.

    Returns:
        The callbacks, in the order given, the legacy adapter last.

    Raises:
        ConfigTypeError: An entry is neither.
    """
    callbacks: list[Callback] = []
    legacy: list[type[Logger]] = []
    for cls in loggers:
        if isinstance(cls, type) and issubclass(cls, Callback):
            callbacks.append(cls())
        elif isinstance(cls, type) and issubclass(cls, Logger):
            legacy.append(cls)
        else:
            raise ConfigTypeError(
                f"`loggers` entries must be Logger or LoggerCallback classes, got {cls!r}"
            )
    if legacy:
        callbacks.append(LegacyLoggerCallback(legacy))
    return callbacks
