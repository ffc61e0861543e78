"""Population Based Training: the population trains, the weak copy the strong.

Every ``perturbation_interval`` units of ``time_attr`` a trial's score is recorded and
the live trials are ranked. A trial in the top ``quantile_fraction`` is checkpointed;
a trial in the bottom one *exploits* a random top trial (restarts from its checkpoint)
and *explores* (takes that trial's config, perturbed). The result is a schedule of
hyperparameters per trial rather than one fixed config.

The pure parts (explore, quantiles, tags) are plain functions in
:mod:`atune.schedulers._pbt_explore`, the policy log format is in
:mod:`atune.schedulers._pbt_policy`; the scheduler here is the async shell that
checkpoints and resets trials through the controller.
"""

from __future__ import annotations

import logging
import math
import os
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from atune import result as R
from atune._metric import legacy_metric_mode, metric_number
from atune._util import flatten_dict
from atune.errors import ConfigError, ConfigTypeError
from atune.schedulers._base import TrialScheduler
from atune.schedulers._pbt_explore import (
    Sampler,
    explore,
    fill_config,
    filter_mutated,
    make_experiment_tag,
    quantiles,
    validate_mutations,
)
from atune.schedulers._pbt_policy import encode_row, write_policy
from atune.schedulers.fifo import FIFOScheduler

# Replay lives in its own module; re-exported here, where Ray Tune has it.
from atune.schedulers.pbt_replay import PopulationBasedTrainingReplay

if TYPE_CHECKING:
    from atune._trial import Trial
    from atune.checkpoint import Checkpoint

__all__ = [
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "explore",
    "quantiles",
]

log = logging.getLogger("atune")

#: ``CheckpointConfig.num_to_keep`` at or below this may delete a checkpoint before
#: another trial copies it (Ray Tune warns at the same bound).
_FEW_CHECKPOINTS_KEPT = 2

_WAITING = ("PENDING", "PAUSED")


@dataclass
class _TrialState:
    """What PBT remembers about one trial."""

    orig_tag: str
    last_score: float | None = None  # signed: higher is better
    last_checkpoint: Checkpoint | None = None  # set while the trial is a top trial
    last_perturbation_time: float = 0.0
    last_train_time: float = 0.0
    last_result: dict[str, Any] | None = None


class PopulationBasedTraining(FIFOScheduler):
    """Population Based Training (Jaderberg et al., 2017), as Ray Tune implements it.

    All trials form one population. When a trial reaches
    ``last_perturbation_time + perturbation_interval`` (in ``time_attr`` units, and not
    before ``burn_in_period``), its score is recorded and the live trials with a score
    are ranked. A trial in the top ``quantile_fraction`` is checkpointed; a trial in the
    bottom one restarts from the checkpoint of a random top trial (exploit) with that
    trial's config perturbed (explore, see :func:`explore`). With more trials than
    resources, trials are time-multiplexed: each pauses at its perturbation point while
    others wait, and the one with the least progress runs next.

    Needs trainables that checkpoint: class trainables with ``save_checkpoint`` /
    ``load_checkpoint`` (and ``reset_config`` returning True to switch configs in the
    same worker), or function trainables that report a checkpoint with their results.
    Cannot be combined with a model-based searcher.

    Args:
        time_attr: The result field measuring progress; it must only grow.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        perturbation_interval: Perturb every this many ``time_attr`` units (each costs
            a checkpoint).
        burn_in_period: No perturbation before ``time_attr`` reaches this.
        hyperparam_mutations: Per key: a list of values, a search-space domain
            (``tune.uniform(0, 1)``), a function without arguments, or a dict of these.
            Keys missing from a trial's config are sampled from here.
        quantile_fraction: Fraction of the population in each of the top and bottom
            quantiles, in ``[0, 0.5]`` (0: never exploit).
        resample_probability: Probability of drawing a fresh value instead of
            perturbing the current one.
        perturbation_factors: Continuous values are multiplied by one of these.
        custom_explore_fn: ``f(config) -> config``, applied after the built-in rules.
        log_config: Write the policy logs ``pbt_global.txt`` and
            ``pbt_policy_<trial_id>.txt`` into the experiment directory.
        require_attrs: Raise when a result lacks ``time_attr`` or ``metric`` (else
            warn once and ignore the result).
        synch: Perturb only when every live trial has reached the perturbation time;
            trials that get there first pause and wait.
        reward_attr: The 0.7 name: ``reward_attr="x"`` means ``metric="x", mode="max"``.
        seed: Seed of the scheduler's random choices (and of mutation draws). Without
            one they come from a generator seeded by the global ``random`` state at
            construction.

    Example:
        >>> import random
        >>> from atune.search.sample import uniform
        >>> pbt = PopulationBasedTraining(
        ...     time_attr="training_iteration", metric="mean_accuracy", mode="max",
        ...     perturbation_interval=5,
        ...     hyperparam_mutations={
        ...         "lr": uniform(1e-4, 1e-1),
        ...         "momentum": lambda: random.uniform(0.8, 0.99),
        ...         "batch_size": [16, 32, 64, 128],
        ...     })
    """

    def __init__(
        self,
        time_attr: str = R.TIME_TOTAL_S,
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: Mapping[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        *,
        reward_attr: str | None = None,
        seed: int | None = None,
    ) -> None:
        metric, mode = legacy_metric_mode(metric, mode, reward_attr)
        super().__init__(metric, mode)
        mutations = dict(hyperparam_mutations or {})
        if not isinstance(hyperparam_mutations, (Mapping, type(None))):
            raise ConfigTypeError(
                f"`hyperparam_mutations` must be a dict, got {hyperparam_mutations!r}"
            )
        validate_mutations(mutations)
        if not mutations and custom_explore_fn is None:
            raise ConfigError(
                "give at least one of `hyperparam_mutations` or `custom_explore_fn` to "
                "PopulationBasedTraining, got neither"
            )
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise ConfigTypeError(
                f"`custom_explore_fn` must be callable, got {custom_explore_fn!r}"
            )
        if metric_number(quantile_fraction) is None or not 0 <= quantile_fraction <= 0.5:
            raise ConfigError(
                f"`quantile_fraction` must be between 0 and 0.5, got {quantile_fraction!r}"
            )
        if metric_number(perturbation_interval) is None or not perturbation_interval > 0:
            raise ConfigError(f"`perturbation_interval` must be > 0, got {perturbation_interval!r}")
        if metric_number(burn_in_period) is None or burn_in_period < 0:
            raise ConfigError(f"`burn_in_period` must be >= 0, got {burn_in_period!r}")
        if metric_number(resample_probability) is None or not 0 <= resample_probability <= 1:
            raise ConfigError(
                f"`resample_probability` must be between 0 and 1, got {resample_probability!r}"
            )
        factors = tuple(perturbation_factors) if isinstance(perturbation_factors, Sequence) else ()
        if not factors or any(metric_number(f) is None for f in factors):
            raise ConfigError(
                "`perturbation_factors` must be a non-empty sequence of numbers, "
                f"got {perturbation_factors!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"`seed` must be None or an int >= 0, got {seed!r}")

        self._time_attr = time_attr
        self._perturbation_interval = float(perturbation_interval)
        self._burn_in_period = float(burn_in_period)
        self._hyperparam_mutations = mutations
        self._quantile_fraction = float(quantile_fraction)
        self._resample_probability = float(resample_probability)
        self._perturbation_factors = factors
        self._custom_explore_fn = custom_explore_fn
        self._log_config = bool(log_config)
        self._require_attrs = bool(require_attrs)
        self._synch = bool(synch)
        self._seed = seed
        rng = random.Random(seed if seed is not None else random.getrandbits(64))
        np_rng = np.random.default_rng(rng.getrandbits(64))
        self._sampler = Sampler(rng, np_rng, seeded=seed is not None)
        self._state: dict[str, _TrialState] = {}
        self._gone: set[str] = set()  # completed, failed or removed trials
        self._next_perturbation_sync = max(self._perturbation_interval, self._burn_in_period)
        self._num_checkpoints = 0
        self._num_perturbations = 0
        self._warned: set[str] = set()
        self._lock: anyio.Lock | None = None

    # ------------------------------------------------------------------ protocol
    def sync_point(self, trial: Trial) -> tuple[str, float] | None:
        """The next perturbation time of ``trial`` (the trainable waits there)."""
        state = self._state.get(trial.trial_id)
        if state is None:
            return None
        if self._synch:
            return self._time_attr, self._next_perturbation_sync
        point = max(
            state.last_perturbation_time + self._perturbation_interval, self._burn_in_period
        )
        return self._time_attr, point

    async def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        """Check the setup; sample the mutated keys missing from the trial's config."""
        if self.metric is None or self.mode is None:
            raise ConfigError(
                f"{type(self).__name__} needs `metric` and `mode` (got metric="
                f"{self.metric!r}, mode={self.mode!r}); pass them to the scheduler or to "
                "TuneConfig(metric=..., mode=...)"
            )
        self._check_controller(tune_controller)
        if trial.trial_id not in self._state:
            self._state[trial.trial_id] = _TrialState(orig_tag=trial.experiment_tag)
        self._fill(trial)

    def _fill(self, trial: Trial) -> None:
        fill_config(trial.config, self._hyperparam_mutations, self._sampler)
        # The mutated keys are the trial's parameters: show them in the status table.
        mutated = filter_mutated(trial.config, self._hyperparam_mutations)
        trial.evaluated_params.update(flatten_dict(mutated))

    def _check_controller(self, tune_controller: Any) -> None:
        from atune.search.basic_variant import BasicVariantGenerator

        searcher = getattr(tune_controller, "searcher", None)
        if searcher is not None and not isinstance(searcher, BasicVariantGenerator):
            raise ConfigError(
                f"{type(self).__name__} chooses the configs itself and cannot be combined "
                f"with the searcher {type(searcher).__name__}; remove `search_alg`"
            )
        keep = getattr(getattr(tune_controller, "checkpoint_config", None), "num_to_keep", None)
        if keep is not None and keep <= _FEW_CHECKPOINTS_KEPT and "num_to_keep" not in self._warned:
            self._warned.add("num_to_keep")
            warnings.warn(
                f"CheckpointConfig(num_to_keep={keep}) with {type(self).__name__} may delete "
                "a checkpoint before another trial copies it (that exploit is then "
                "skipped); keep more checkpoints.",
                stacklevel=2,
            )

    async def on_trial_result(
        self, tune_controller: Any, trial: Trial, result: dict[str, Any]
    ) -> str:
        if not self._has_attrs(result):
            return TrialScheduler.CONTINUE
        time = float(result[self._time_attr])
        state = self._state.get(trial.trial_id)
        if state is None:  # added before this scheduler saw it
            state = self._state[trial.trial_id] = _TrialState(orig_tag=trial.experiment_tag)
        if time < self._burn_in_period:
            return TrialScheduler.CONTINUE
        if self._synch:
            if time < self._next_perturbation_sync:
                return TrialScheduler.CONTINUE
        elif time - state.last_perturbation_time < self._perturbation_interval:
            return TrialScheduler.CONTINUE
        if self._lock is None:
            self._lock = anyio.Lock()
        # Decisions await the controller (saves, copies, the GP in PB2); one at a time,
        # so no other trial ranks or clones a trial whose decision is half made.
        async with self._lock:
            self._save_trial_state(state, time, result, trial)
            if not self._synch:
                state.last_perturbation_time = time
                lower, upper = self._quantiles(tune_controller)
                waiting = any(
                    t.status in _WAITING and self._is_live(t) for t in tune_controller.get_trials()
                )
                exploited = await self._checkpoint_or_exploit(tune_controller, trial, upper, lower)
                if exploited or waiting:
                    return TrialScheduler.PAUSE
                return TrialScheduler.CONTINUE
            if not self._all_synced(tune_controller, but=trial):
                log.debug("PBT: %s waits for the others to reach %s", trial, time)
                return TrialScheduler.PAUSE
            await self._perturb_all(tune_controller, time)
            # As Ray Tune: every trial pauses at a synchronous perturbation, and
            # choose_trial_to_run restarts them.
            return TrialScheduler.PAUSE

    async def on_trial_complete(
        self, tune_controller: Any, trial: Trial, result: dict[str, Any]
    ) -> None:
        await self._trial_gone(tune_controller, trial)

    async def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        await self._trial_gone(tune_controller, trial)

    async def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        await self._trial_gone(tune_controller, trial)

    async def _trial_gone(self, tune_controller: Any, trial: Trial) -> None:
        # In synchronous mode the others may all be waiting for this trial now; the
        # round then runs in choose_trial_to_run, once none of them is still pausing.
        self._gone.add(trial.trial_id)

    async def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """The PENDING or PAUSED trial with the least progress that fits.

        In synchronous mode only trials that have not reached the perturbation time
        are candidates.
        """
        if self._synch:
            await self._run_stalled_round(tune_controller)
        candidates = []
        for trial in tune_controller.get_trials():
            if trial.status not in _WAITING:
                continue
            progress = self._progress(trial)
            if self._synch and progress >= self._next_perturbation_sync:
                continue
            candidates.append((progress, trial))
        candidates.sort(key=lambda item: item[0])  # stable: creation order on ties
        for _, trial in candidates:
            if tune_controller.has_resources_for_trial(trial):
                return trial
        return None

    async def _run_stalled_round(self, tune_controller: Any) -> None:
        """Synchronous mode: perturb when every live trial waits and none can trigger it.

        That happens when a trial ends before reaching the perturbation time while all
        the others wait for it there.
        """
        if not self._stalled(tune_controller):
            return
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._stalled(tune_controller):
                live = [t for t in tune_controller.get_trials() if self._is_live(t)]
                await self._perturb_all(tune_controller, max(map(self._progress, live)))

    def _stalled(self, tune_controller: Any) -> bool:
        live = [t for t in tune_controller.get_trials() if self._is_live(t)]
        return (
            bool(live)
            and all(t.status in _WAITING for t in live)
            and self._all_synced(tune_controller, but=None)
        )

    def debug_string(self) -> str:
        return (
            f"PopulationBasedTraining: {self._num_checkpoints} checkpoints, "
            f"{self._num_perturbations} perturbs"
        )

    def get_state(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"] = None
        return state

    # ------------------------------------------------------------------ internals
    def _progress(self, trial: Trial) -> float:
        state = self._state.get(trial.trial_id)
        return state.last_train_time if state is not None else 0.0

    def _is_live(self, trial: Trial) -> bool:
        return not trial.is_finished and trial.trial_id not in self._gone

    def _has_attrs(self, result: dict[str, Any]) -> bool:
        for what, key in (("time_attr", self._time_attr), ("metric", self.metric)):
            if key in result:
                continue
            message = (
                f"{type(self).__name__}: {what} {key!r} is not in the trial's result "
                f"(it has {sorted(result)}); report it with every result"
            )
            if self._require_attrs:
                raise ConfigError(message + ", or pass require_attrs=False to ignore such results")
            if what not in self._warned:
                self._warned.add(what)
                log.warning("%s; results without it are ignored.", message)
            return False
        return True

    def _score(self, result: dict[str, Any]) -> float:
        value = float(result[self.metric])  # type: ignore[index]
        if math.isnan(value):
            return -math.inf
        return value if self.mode == "max" else -value

    def _save_trial_state(
        self, state: _TrialState, time: float, result: dict[str, Any], trial: Trial
    ) -> float:
        """Record the trial's score at its perturbation time; returns the score."""
        score = self._score(result)
        state.last_score = score
        state.last_train_time = time
        state.last_result = dict(result)
        return score

    def _quantiles(self, tune_controller: Any) -> tuple[list[Trial], list[Trial]]:
        ranked = []
        for trial in tune_controller.get_trials():
            state = self._state.get(trial.trial_id)
            if state is not None and state.last_score is not None and self._is_live(trial):
                ranked.append((state.last_score, trial))
        ranked.sort(key=lambda item: item[0])  # stable: creation order on ties
        return quantiles([t for _, t in ranked], self._quantile_fraction)

    def _all_synced(self, tune_controller: Any, but: Trial | None) -> bool:
        """True when every live trial except ``but`` reached the synchronous time."""
        for t in tune_controller.get_trials():
            if t is but or not self._is_live(t):
                continue
            if self._progress(t) < self._next_perturbation_sync:
                return False
        return True

    async def _perturb_all(self, tune_controller: Any, time: float) -> None:
        """The synchronous step: checkpoint the top trials, then exploit with the bottom."""
        lower, upper = self._quantiles(tune_controller)
        live = [t for t in tune_controller.get_trials() if self._is_live(t)]
        middle = [t for t in live if t not in lower and t not in upper]
        for t in upper + middle + lower:  # top trials save before the bottom ones clone
            state = self._state.setdefault(t.trial_id, _TrialState(orig_tag=t.experiment_tag))
            state.last_perturbation_time = time
            await self._checkpoint_or_exploit(tune_controller, t, upper, lower)
        latest = max((self._progress(t) for t in live), default=time)
        self._next_perturbation_sync = max(
            self._next_perturbation_sync + self._perturbation_interval, latest
        )

    async def _checkpoint_or_exploit(
        self, tune_controller: Any, trial: Trial, upper: list[Trial], lower: list[Trial]
    ) -> bool:
        """Checkpoint a top trial; make a bottom trial clone a top one. True if cloned."""
        state = self._state[trial.trial_id]
        if trial in upper:
            state.last_checkpoint = await tune_controller.save_trial(trial)
            if state.last_checkpoint is not None:
                self._num_checkpoints += 1
        else:
            state.last_checkpoint = None  # only top trials may be cloned
        if trial not in lower:
            return False
        donors = [t for t in upper if self._clonable(t)]
        if not donors:
            log.info("[pbt] no top trial has a checkpoint to copy; %s keeps its weights", trial)
            return False
        clone = self._sampler.rng.choice(donors)
        await self._exploit(tune_controller, trial, clone)
        return True

    def _clonable(self, trial: Trial) -> bool:
        """The trial's remembered checkpoint exists and is still on disk."""
        ckpt = self._state[trial.trial_id].last_checkpoint
        if ckpt is None:
            return False
        if trial.checkpoint is not None and trial.checkpoint.path == ckpt.path:
            return True
        if not trial.checkpoints:
            return True  # nothing recorded to check against
        return any(c.path == ckpt.path for c, _ in trial.checkpoints)

    async def _get_new_config(self, trial: Trial, clone: Trial) -> tuple[dict[str, Any], dict]:
        """The explored config for ``trial``, from ``clone``'s config."""
        return explore(
            clone.config,
            self._hyperparam_mutations,
            self._resample_probability,
            self._perturbation_factors,
            self._custom_explore_fn,
            self._sampler,
        )

    async def _exploit(self, tune_controller: Any, trial: Trial, clone: Trial) -> None:
        """Give ``trial`` the weights of ``clone`` and a perturbed copy of its config."""
        state = self._state[trial.trial_id]
        clone_state = self._state[clone.trial_id]
        new_config, operations = await self._get_new_config(trial, clone)
        log.info(
            "[explore] perturbed config from %s -> %s",
            filter_mutated(clone.config, self._hyperparam_mutations),
            filter_mutated(new_config, self._hyperparam_mutations),
        )
        log.debug("[explore] operations: %s", operations)
        log.info(
            "[exploit] transferring weights from trial %s (score %s) -> %s (score %s)",
            clone,
            self._metric_value(clone_state),
            trial,
            self._metric_value(state),
        )
        if self._log_config:
            await self._log_config_on_step(trial, clone, state, clone_state, new_config)
        tag = make_experiment_tag(state.orig_tag, new_config, self._hyperparam_mutations)
        await tune_controller.reset_trial(
            trial, new_config, tag, checkpoint=clone_state.last_checkpoint
        )
        self._num_perturbations += 1
        # The trial now is where the clone was when it was checkpointed.
        state.last_perturbation_time = clone_state.last_perturbation_time
        state.last_train_time = clone_state.last_train_time

    def _metric_value(self, state: _TrialState) -> Any:
        if state.last_result is None:
            return None
        return state.last_result.get(self.metric)  # type: ignore[arg-type]

    async def _log_config_on_step(
        self,
        trial: Trial,
        clone: Trial,
        state: _TrialState,
        clone_state: _TrialState,
        new_config: dict[str, Any],
    ) -> None:
        """Append ``[target tag, clone tag, target iter, clone iter, old, new config]``."""
        row = [
            state.orig_tag,
            clone_state.orig_tag,
            (state.last_result or {}).get(R.TRAINING_ITERATION, 0),
            # The iteration of the copied checkpoint: the replay changes config there.
            (clone_state.last_result or {}).get(R.TRAINING_ITERATION, 0),
            clone.config,
            new_config,
        ]
        line = encode_row(row) + "\n"  # encoded now: the configs may change later
        exp_dir = os.path.dirname(os.path.abspath(trial.local_path))
        try:
            await anyio.to_thread.run_sync(
                write_policy, exp_dir, trial.trial_id, clone.trial_id, line
            )
        except OSError as exc:
            log.warning("PBT could not write its policy log in %s: %s", exp_dir, exc)
