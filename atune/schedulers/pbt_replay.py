"""The replay of the hyperparameter schedule a PBT policy log holds.

PBT does not produce one config but a schedule: a config that changes at certain
iterations. With ``log_config=True`` (the default) it keeps each trial's lineage in
``pbt_policy_<trial_id>.txt`` (the format is in :mod:`atune.schedulers._pbt_policy`);
:class:`PopulationBasedTrainingReplay` reads such a file and trains one trial that
follows the schedule.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import TYPE_CHECKING, Any

from atune import result as R
from atune.errors import AtuneError, ConfigError
from atune.schedulers._base import TrialScheduler
from atune.schedulers._pbt_explore import perturbed_tag
from atune.schedulers._pbt_policy import POLICY_FILE_PREFIX, POLICY_GLOBAL_FILE, load_policy
from atune.schedulers.fifo import FIFOScheduler

if TYPE_CHECKING:
    from atune._engine.api import TuneController
    from atune._trial import Trial

__all__ = [
    "POLICY_FILE_PREFIX",
    "POLICY_GLOBAL_FILE",
    "PopulationBasedTrainingReplay",
    "load_policy",
]

log = logging.getLogger("atune")


class PopulationBasedTrainingReplay(FIFOScheduler):
    """Train one trial on the hyperparameter schedule of an earlier PBT run.

    The trial starts with the initial config of the lineage in ``policy_file`` and,
    when it reaches each recorded iteration, is checkpointed and restarted from that
    checkpoint with the next config (a class trainable gets ``reset_config``). Needs a
    checkpointing trainable, like PBT itself, and exactly one trial (``num_samples=1``,
    no grid search).

    Args:
        policy_file: A ``pbt_policy_<trial_id>.txt`` written by
            :class:`~atune.schedulers.PopulationBasedTraining` with ``log_config=True``.

    Example:
        >>> replay = PopulationBasedTrainingReplay(
        ...     "~/atune_results/pbt_test/pbt_policy_ab123_00003.txt")  # doctest: +SKIP
        >>> tune.Tuner(MyTrainable, tune_config=tune.TuneConfig(scheduler=replay))  # doctest: +SKIP
    """

    def __init__(self, policy_file: str | os.PathLike[str]) -> None:
        super().__init__()
        path = os.path.expanduser(os.fspath(policy_file))
        if not os.path.isfile(path):
            raise ConfigError(f"`policy_file` must be an existing PBT policy file, got {path!r}")
        # Read once, here, before any event loop runs.
        initial, schedule = load_policy(path)
        self.policy_file = path
        self.config = initial
        self.current_config = initial
        self.experiment_tag = f"replay_{os.path.basename(path)}"
        self._policy = schedule
        self._next = 0
        self._trial_id: str | None = None
        self._current_step = 0
        self._num_perturbations = 0

    def sync_point(self, trial: Trial) -> tuple[str, float] | None:
        """The iteration of the next config change (the trainable waits there)."""
        if self._next >= len(self._policy):
            return None
        return R.TRAINING_ITERATION, float(self._policy[self._next][0])

    async def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        if self._trial_id is not None and self._trial_id != trial.trial_id:
            raise ConfigError(
                "PopulationBasedTrainingReplay replays one schedule on one trial, but a "
                f"second trial ({trial.trial_id}) was added; use num_samples=1 and no "
                "grid_search in the param_space"
            )
        self._trial_id = trial.trial_id
        if self._policy:
            if trial.config and trial.config != self.config:
                log.warning(
                    "PopulationBasedTrainingReplay replaces the trial's config %s with the "
                    "schedule's initial config %s.",
                    trial.config,
                    self.config,
                )
            trial.config = copy.deepcopy(self.config or {})
        elif trial.config:
            self.config = self.current_config = trial.config  # nothing to replay
        else:
            raise ConfigError(
                f"the policy file {self.policy_file!r} holds no schedule and the trial has "
                "no config; give the Tuner a param_space, or do not use the replay"
            )

    async def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        if R.TRAINING_ITERATION not in result or self._next >= len(self._policy):
            return TrialScheduler.CONTINUE
        step = result[R.TRAINING_ITERATION]
        self._current_step = step
        change_at, new_config = self._policy[self._next]
        if step < change_at:
            return TrialScheduler.CONTINUE
        log.info(
            "Population Based Training replay is now at step %s. Configuration will be "
            "changed to %s.",
            step,
            new_config,
        )
        checkpoint = await tune_controller.save_trial(trial)
        if checkpoint is None:
            raise AtuneError(
                f"PopulationBasedTrainingReplay must restart trial {trial} from a checkpoint "
                f"at iteration {step} to change its config, but it has none; implement "
                "save_checkpoint (class trainables) or report a checkpoint with every result"
            )
        config = copy.deepcopy(new_config)
        tag = perturbed_tag(self.experiment_tag, config)
        await tune_controller.reset_trial(trial, config, tag, checkpoint=checkpoint)
        self.current_config = config
        self._num_perturbations += 1
        self._next += 1
        return TrialScheduler.PAUSE

    def debug_string(self) -> str:
        return (
            f"PopulationBasedTraining replay: Step {self._current_step}, "
            f"perturb {self._num_perturbations}"
        )
