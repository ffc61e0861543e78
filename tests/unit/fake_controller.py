"""A stand-in for the controller, for unit tests of schedulers (no Ray, no loop sleeps).

It offers what schedulers may call on ``tune_controller`` and records every action.
"""

from __future__ import annotations

from typing import Any

from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.config import CheckpointConfig


def make_trial(index: int, config: dict[str, Any] | None = None, **kwargs: Any) -> Trial:
    """A PENDING trial with id ``t_<index>``."""
    return Trial(
        trial_id=f"t_{index:05d}",
        trainable_name="train",
        config=dict(config or {}),
        experiment_tag=str(index),
        local_path=f"/tmp/fake/t_{index:05d}",
        **kwargs,
    )


class FakeController:
    """Holds trials; records stop/pause/save/reset calls instead of acting on workers."""

    def __init__(
        self,
        trials: list[Trial] | None = None,
        *,
        slots: int | None = None,
        total: dict[str, float] | None = None,
    ) -> None:
        self.trials: list[Trial] = list(trials or [])
        self.slots = slots  # None: resources never run out
        self.total = dict(total or {"CPU": 8.0, "GPU": 0.0})
        self.stopping = False  # True once the experiment is ending
        self.searcher: Any = None
        self.checkpoint_config = CheckpointConfig()
        self.stopped_all = False
        self.stopped: list[str] = []
        self.paused: list[str] = []
        self.saved: list[str] = []
        self.resets: list[tuple[str, dict[str, Any], Checkpoint | None]] = []
        self.resources: dict[str, dict[str, float]] = {}

    def add(self, trial: Trial) -> Trial:
        self.trials.append(trial)
        return trial

    def get_trials(self) -> list[Trial]:
        return self.trials

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self.trials if not t.is_finished]

    def total_resources(self) -> dict[str, float]:
        return dict(self.total)

    def has_resources_for_trial(self, trial: Trial) -> bool:
        if self.slots is None:
            return True
        return sum(1 for t in self.trials if t.status == Trial.RUNNING) < self.slots

    def stop_all(self) -> None:
        self.stopped_all = True
        self.stopping = True

    def stop_trial(self, trial: Trial) -> None:
        self.stopped.append(trial.trial_id)
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            trial.status = Trial.TERMINATED

    def pause_trial(self, trial: Trial) -> None:
        self.paused.append(trial.trial_id)

    async def save_trial(self, trial: Trial) -> Checkpoint:
        self.saved.append(trial.trial_id)
        trial.checkpoint = Checkpoint(f"{trial.local_path}/checkpoint_{len(self.saved):06d}")
        return trial.checkpoint

    async def reset_trial(
        self,
        trial: Trial,
        config: dict[str, Any],
        experiment_tag: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        trial.config = config
        if experiment_tag is not None:
            trial.experiment_tag = experiment_tag
        if checkpoint is not None:
            trial.restore_from = checkpoint
        self.resets.append((trial.trial_id, config, checkpoint))

    def set_trial_resources(self, trial: Trial, resources: dict[str, float]) -> None:
        self.resources[trial.trial_id] = dict(resources)
        trial.resources = dict(resources)
