"""What a scheduler may read and call on the experiment: the :class:`TuneController`.

Schedulers receive it as ``tune_controller`` in every hook (Ray Tune's name and
argument order). It is the whole contract: a scheduler that needs something else
from the engine asks for it here, instead of probing the controller with
``getattr``. The controller implements it; tests use small fakes of it.

Rules for its users:

* Hooks run on the event loop, one at a time, at result boundaries: what a hook
  reads is consistent, and a decision it makes applies exactly at that result.
* ``get_trials()`` returns the live list in scheduling order; read it, never change
  it. Trials are changed through the methods below only.
* ``stop_trial``/``pause_trial`` take effect at the current result of that trial (or
  at once for one that is not running); ``reset_trial`` and ``set_trial_resources``
  apply the next time the trial starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from atune._trial import Trial
    from atune.checkpoint import Checkpoint
    from atune.config import CheckpointConfig
    from atune.search._base import Searcher

__all__ = ["TuneController"]


@runtime_checkable
class TuneController(Protocol):
    """The experiment as a scheduler sees it."""

    def get_trials(self) -> list[Trial]:
        """All trials, in scheduling order (do not modify the list)."""
        ...

    def get_live_trials(self) -> list[Trial]:
        """The trials that are not TERMINATED or ERROR."""
        ...

    def total_resources(self) -> dict[str, float]:
        """All resources of the cluster, e.g. ``{"CPU": 8.0, "GPU": 0.0}``."""
        ...

    def has_resources_for_trial(self, trial: Trial) -> bool:
        """Could ``trial`` start now (free resources and ``max_concurrent_trials``)?"""
        ...

    def stop_all(self) -> None:
        """End the experiment: every trial stops after the result it is on."""
        ...

    def stop_trial(self, trial: Trial) -> None:
        """Stop a trial: at its current result if RUNNING, at once if PENDING/PAUSED."""
        ...

    def pause_trial(self, trial: Trial) -> None:
        """Pause a RUNNING trial at its current result; it resumes from a checkpoint."""
        ...

    async def save_trial(self, trial: Trial) -> Checkpoint | None:
        """Checkpoint a RUNNING trial at its current decision point; its latest checkpoint."""
        ...

    async def reset_trial(
        self,
        trial: Trial,
        config: dict[str, Any],
        experiment_tag: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Give a trial a new config and, optionally, another trial's checkpoint."""
        ...

    def set_trial_resources(self, trial: Trial, resources: dict[str, float]) -> None:
        """Change what a trial asks for; applies at its next start."""
        ...

    @property
    def searcher(self) -> Searcher:
        """The experiment's searcher (for schedulers that work with one, e.g. BOHB)."""
        ...

    @property
    def checkpoint_config(self) -> CheckpointConfig:
        """The experiment's :class:`~atune.CheckpointConfig`."""
        ...

    @property
    def stopping(self) -> bool:
        """True once the experiment is ending (time budget, stop_all, a failure)."""
        ...
