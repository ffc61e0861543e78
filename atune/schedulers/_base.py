"""The trial scheduler protocol: an async event handler that steers running trials.

What a scheduler can ask of the experiment is its ``tune_controller`` argument, a
:class:`~atune.schedulers.TuneController` (see ``atune/_engine/api.py``), in short:

* ``get_trials()``, ``get_live_trials()``, ``has_resources_for_trial(trial)``,
  ``total_resources()``, ``searcher``, ``checkpoint_config``, ``stopping``;
* ``stop_trial(trial)`` / ``pause_trial(trial)``: for trials other than the one whose
  result is being handled (for that one, return STOP or PAUSE); ``stop_all()``;
* ``await save_trial(trial)``: checkpoint the trial whose result is being handled;
* ``await reset_trial(trial, config, experiment_tag, checkpoint)``: new config and,
  optionally, another trial's checkpoint to restore from (PBT's exploit);
* ``set_trial_resources(trial, resources)``: resources for the trial's next start.

For every recorded result the controller awaits :meth:`TrialScheduler.on_trial_result`
and acts on the answer: ``CONTINUE``, ``PAUSE`` (release the worker, resume later
from a checkpoint) or ``STOP``. Once a result leads to ``STOP`` or ``PAUSE``,
nothing that trial reported after it is recorded.

Schedulers must measure time from result fields (``training_iteration``,
``time_total_s``), never from the wall clock, so their decisions are reproducible.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, ClassVar

from atune._metric import MetricMode
from atune.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from atune._engine.api import TuneController
    from atune._trial import Trial

__all__ = ["TrialScheduler"]


def real_number(name: str, value: Any) -> float:
    """``float(value)`` for the argument ``name`` if it is a real number (not a bool).

    Raises:
        ConfigTypeError: ``value`` is not a number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"`{name}` must be a number, got {value!r}")
    return float(value)


class TrialScheduler(MetricMode):
    """Base class of trial schedulers.

    Handlers receive the controller (``tune_controller``) as first argument, as in
    Ray Tune; it offers ``get_trials()`` and ``get_live_trials()``.
    """

    CONTINUE: ClassVar[str] = "CONTINUE"
    PAUSE: ClassVar[str] = "PAUSE"
    STOP: ClassVar[str] = "STOP"
    NOOP: ClassVar[str] = "NOOP"

    #: True when the scheduler needs trials to run in lockstep with its decisions
    #: (the trainable waits for the decision on each result before going on). A
    #: scheduler that returns PAUSE needs it, so that the trial is checkpointed at the
    #: pause point and not after it.
    requires_sync_point: ClassVar[bool] = False

    def sync_point(self, trial: Trial) -> tuple[str, float] | None:
        """The trial's next decision point: ``(result field, value)`` or None.

        The trainable waits after the first result whose field reaches the value
        until :meth:`on_trial_result` decided on it, so a PAUSE or an exploit there
        acts on exactly that state. Asked again after every decision.
        """
        return None

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Receive the Tuner's metric and mode; fills in what the scheduler lacks."""
        self._fill_metric_mode(metric, mode)
        return True

    def _metric_and_mode(self) -> tuple[str, str]:
        """The metric and mode; raise :class:`ConfigError` if one is still unset."""
        metric, mode = self.metric, self.mode
        if metric is None or mode is None:
            raise ConfigError(
                f"{type(self).__name__} needs a `metric` and a `mode` (got metric={metric!r}, "
                f"mode={mode!r}); pass them to the scheduler or to atune.TuneConfig"
            )
        return metric, mode

    async def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        """A new trial was created (PENDING)."""

    async def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        """A trial failed for good (it will not be retried)."""

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        """Decide what a running trial does after this result."""
        return TrialScheduler.CONTINUE

    async def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        """A trial finished on its own (its trainable returned) or was stopped."""

    async def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        """A trial was removed (stopped by a stopper or the user, not by this scheduler)."""

    async def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        """Pick the next PENDING or PAUSED trial to start, or None for none now."""
        for status in ("PENDING", "PAUSED"):
            for trial in tune_controller.get_trials():
                if trial.status == status and tune_controller.has_resources_for_trial(trial):
                    return trial
        return None

    def debug_string(self) -> str:
        """One line for the status table."""
        return f"Using {type(self).__name__} scheduling algorithm."

    def get_state(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
