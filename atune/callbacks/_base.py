"""Callbacks: hooks the controller calls as an experiment unfolds.

Hooks are plain methods (as in Ray Tune) or coroutines; the controller awaits the
ones that are coroutines. Hooks run on the controller's event loop, so they must be
quick: a callback that writes files buffers in memory and writes in :meth:`flush`,
which is called about every half second and when the experiment ends, and which
does its I/O off the loop. A :class:`Callback`'s hooks run where Ray Tune runs them
(``on_trial_result`` after the scheduler and the searcher, before the trial's next
result); a :class:`LoggerCallback`'s are fed from the experiment's event bus, by a
task of their own, and may run behind (see docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atune._trial import Trial
    from atune.checkpoint import Checkpoint

__all__ = ["Callback", "LoggerCallback"]


class Callback:
    """Base class of experiment callbacks; override the hooks you need.

    Every hook takes ``**info`` so that new keyword arguments never break a callback.
    ``iteration`` counts the controller's steps; ``trials`` is the list of all trials.
    """

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Called once before the first trial starts."""

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Called at the start of each controller step."""

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        """Called at the end of each controller step."""

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Called after a trial's worker started."""

    def on_trial_restore(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Called after a trial was restored from a checkpoint."""

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """Called after a checkpoint of a trial was recorded."""

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        """Called for each recorded result, after the scheduler and searcher saw it."""

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Called when a trial ended without error (finished or stopped)."""

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Called when a trial failed and will be retried."""

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Called when a trial failed for good."""

    def on_checkpoint(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        checkpoint: Checkpoint,
        **info: Any,
    ) -> None:
        """Called when a trial saved a checkpoint."""

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Called once after every trial has ended."""

    async def flush(self) -> None:
        """Write buffered output, off the event loop. Default: nothing to write."""

    def get_state(self) -> dict[str, Any] | None:
        """State to save with the experiment (None: nothing)."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore state returned by :meth:`get_state`."""


class LoggerCallback(Callback):
    """Base class of per-trial loggers.

    Override :meth:`log_trial_start`, :meth:`log_trial_result` and
    :meth:`log_trial_end`; the trial hooks of :class:`Callback` route to them.
    """

    def log_trial_start(self, trial: Trial) -> None:
        """A trial started (its directory ``trial.local_path`` exists)."""

    def log_trial_restore(self, trial: Trial) -> None:
        """A trial was restored."""

    def log_trial_save(self, trial: Trial) -> None:
        """A trial saved a checkpoint."""

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        """Record one result (``iteration`` is the trial's ``training_iteration``)."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """A trial ended; release what was opened for it."""

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_start(trial)

    def on_trial_restore(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_restore(trial)

    def on_trial_save(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.log_trial_save(trial)

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.log_trial_end(trial, failed=True)
