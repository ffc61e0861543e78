"""Population Based Bandits (PB2): PBT whose explore step is a GP bandit.

PB2 (Parker-Holder et al., NeurIPS 2020) keeps PBT's exploit step (the bottom trials
restart from the checkpoints of top trials) but picks the new continuous
hyperparameters with GP-UCB instead of random perturbation: a Gaussian process models
the reward change per unit of time as a function of (time, reward, hyperparameters),
and the new values maximise its upper confidence bound at the cloned trial's time and
reward. It needs fewer trials than PBT (the paper uses populations of 4).

Needs scikit-learn: ``pip install "atune[pb2]"``.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from atune import result as R
from atune._util import lookup
from atune.errors import AtuneError, ConfigError, ConfigTypeError
from atune.schedulers.pbt import PopulationBasedTraining, _TrialState
from atune.search.sample import uniform

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["PB2"]

log = logging.getLogger("atune")

#: Observations kept for the GP data; older ones are dropped (the GP uses the latest
#: ``_pb2_gp.MAX_GP_POINTS`` anyway, this bounds memory over very long runs).
MAX_RECORDS = 10_000

_Path = tuple[str, ...]


def _require_sklearn() -> None:
    if importlib.util.find_spec("sklearn") is None:
        raise ImportError(
            "PB2 needs scikit-learn for its Gaussian process; install it with "
            'pip install "atune[pb2]"'
        )


def _flat_bounds(bounds: Mapping[str, Any], prefix: _Path = ()) -> dict[_Path, tuple[float, float]]:
    """``{("a", "b"): (low, high)}`` of a nested ``hyperparam_bounds``, validated."""
    out: dict[_Path, tuple[float, float]] = {}
    for key, value in bounds.items():
        path = (*prefix, str(key))
        name = "/".join(path)
        if isinstance(value, Mapping):
            if not value:
                raise ConfigError(f"`hyperparam_bounds[{name!r}]` is an empty dict")
            out.update(_flat_bounds(value, path))
            continue
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(
                f"`hyperparam_bounds[{name!r}]` must be a [low, high] pair, got {value!r}"
            )
        low, high = value
        for v in (low, high):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(
                    f"`hyperparam_bounds[{name!r}]` must hold two finite numbers, got {value!r}"
                )
        if not low < high:
            raise ConfigError(
                f"`hyperparam_bounds[{name!r}]` must be [low, high] with low < high, got "
                f"{value!r}" + (f" (write [{high}, {low}])" if low > high else "")
            )
        out[path] = (float(low), float(high))
    return out


def _as_domains(bounds: Mapping[str, Any]) -> dict[str, Any]:
    """The bounds as uniform domains: PBT samples missing keys and tags from them."""
    return {
        k: _as_domains(v) if isinstance(v, Mapping) else uniform(float(v[0]), float(v[1]))
        for k, v in bounds.items()
    }


def _set(config: dict[str, Any], path: _Path, value: Any) -> None:
    for key in path[:-1]:
        config = config.setdefault(key, {})
    config[path[-1]] = value


@dataclass(frozen=True)
class _Record:
    """One observation: a trial's reward at a time, under some hyperparameters."""

    trial_id: str
    time: float
    values: tuple[float, ...]
    reward: float


def reward_changes(
    records: list[_Record], clone_id: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, _Record | None]:
    """The GP's data from the observations.

    For consecutive observations of one trial under the same hyperparameters, one row
    ``[time, reward before, *values]`` with target ``(reward - reward before) / (time
    change)``. Also returns ``[time, reward before]`` of the clone's latest row (the
    point the new hyperparameters are chosen for; None if the clone has no row) and
    the clone's latest observation.
    """
    ordered = sorted(records, key=lambda r: r.time)  # stable
    last: dict[tuple[str, tuple[float, ...]], _Record] = {}
    rows: list[list[float]] = []
    ys: list[float] = []
    newpoint = None
    clone_last = None
    for rec in ordered:
        key = (rec.trial_id, rec.values)
        prev = last.get(key)
        last[key] = rec
        if rec.trial_id == clone_id:
            clone_last = rec
        if prev is None or rec.time - prev.time <= 0:
            continue
        change = (rec.reward - prev.reward) / (rec.time - prev.time)
        if not math.isfinite(change):
            continue
        rows.append([rec.time, prev.reward, *rec.values])
        ys.append(change)
        if rec.trial_id == clone_id:
            newpoint = np.array([rec.time, prev.reward])
    X = np.array(rows, dtype=float) if rows else np.empty((0, 0))
    return X, np.array(ys, dtype=float), newpoint, clone_last


class PB2(PopulationBasedTraining):
    """Population Based Bandits: PBT with GP-UCB choosing the explored values.

    As :class:`PopulationBasedTraining`, every ``perturbation_interval`` the bottom
    ``quantile_fraction`` of the trials restart from checkpoints of the top ones. The
    cloned config's ``hyperparam_bounds`` keys are then set by a GP bandit fitted on
    the reward changes the population observed per interval: inputs are normalised to
    ``[0, 1]`` (hyperparameters by their bounds), the GP (time-varying squared
    exponential kernel) predicts the reward change, and the values maximising its
    upper confidence bound at the cloned checkpoint's time and reward are chosen.
    Values chosen for other trials at the same time step lower the bound near them,
    so a batch spreads out. Until the clone has two observations under one config,
    its config is copied unchanged. Ints stay ints (truncated).

    Args:
        time_attr, metric, mode, perturbation_interval, quantile_fraction, log_config,
        require_attrs, synch, custom_explore_fn, seed: As for
            :class:`PopulationBasedTraining`.
        hyperparam_bounds: Per key a ``[low, high]`` pair (``low < high``), or a dict
            of these for nested configs. Keys missing from a trial's config are drawn
            uniformly within the bounds.

    Raises:
        ImportError: scikit-learn is not installed (``pip install "atune[pb2]"``).

    Example:
        >>> pb2 = PB2(time_attr="training_iteration", metric="mean_accuracy",
        ...           mode="max", perturbation_interval=5,
        ...           hyperparam_bounds={"lr": [1e-5, 1e-3], "alpha": [0.0, 1.0]})
    """

    def __init__(
        self,
        time_attr: str = R.TIME_TOTAL_S,
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        hyperparam_bounds: Mapping[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        _require_sklearn()
        if hyperparam_bounds is not None and not isinstance(hyperparam_bounds, Mapping):
            raise ConfigTypeError(f"`hyperparam_bounds` must be a dict, got {hyperparam_bounds!r}")
        if not hyperparam_bounds:
            raise ConfigError(
                "PB2 needs `hyperparam_bounds`, e.g. {'lr': [1e-5, 1e-2]}, got "
                f"{hyperparam_bounds!r}"
            )
        flat = _flat_bounds(hyperparam_bounds)
        super().__init__(
            time_attr=time_attr,
            metric=metric,
            mode=mode,
            perturbation_interval=perturbation_interval,
            hyperparam_mutations=_as_domains(hyperparam_bounds),
            quantile_fraction=quantile_fraction,
            resample_probability=0.0,
            custom_explore_fn=custom_explore_fn,
            log_config=log_config,
            require_attrs=require_attrs,
            synch=synch,
            seed=seed,
        )
        self._hyperparam_bounds = copy.deepcopy(dict(hyperparam_bounds))
        self._paths = list(flat)
        self._bounds = np.array([flat[p] for p in self._paths], dtype=float).T  # (2, n)
        self._records: list[_Record] = []
        self._current: np.ndarray | None = None  # values chosen at the latest time step
        self._last_exploration_time = -math.inf

    def _save_trial_state(
        self, state: _TrialState, time: float, result: dict[str, Any], trial: Trial
    ) -> float:
        score = super()._save_trial_state(state, time, result, trial)
        self._add_record(_Record(trial.trial_id, time, self._values(trial.config), score))
        return score

    def _add_record(self, record: _Record) -> None:
        self._records.append(record)
        if len(self._records) > MAX_RECORDS:
            del self._records[: len(self._records) - MAX_RECORDS]

    def _values(self, config: Mapping[str, Any]) -> tuple[float, ...]:
        values = []
        for path in self._paths:
            try:
                values.append(float(lookup(config, path)))
            except (TypeError, ValueError) as exc:  # absent (None) or not a number
                raise ConfigError(
                    f"PB2 needs a number at config[{'/'.join(path)!r}] (it is in "
                    f"`hyperparam_bounds`), got config {config!r}"
                ) from exc
        return tuple(values)

    async def _get_new_config(self, trial: Trial, clone: Trial) -> tuple[dict[str, Any], dict]:
        latest = max((r.time for r in self._records), default=-math.inf)
        if latest > self._last_exploration_time:
            self._current = None  # a new time step: earlier choices do not count
        X, y, newpoint, clone_last = reward_changes(self._records, clone.trial_id)
        new_config = copy.deepcopy(clone.config)
        operations: dict[str, Any] = {}
        if newpoint is not None and clone_last is not None and len(y) > 0:
            from atune.schedulers import _pb2_gp

            seed = self._sampler.rng.getrandbits(31)
            current = None if self._current is None else self._current.copy()
            chosen = await anyio.to_thread.run_sync(
                _pb2_gp.select_config, X, y, current, newpoint, self._bounds, seed
            )
            values = []
            for path, value in zip(self._paths, chosen, strict=True):
                old = lookup(clone.config, path)
                is_int = isinstance(old, (int, np.integer)) and not isinstance(old, bool)
                cast = int(value) if is_int else float(value)  # ints stay ints
                _set(new_config, path, cast)
                values.append(float(cast))
                operations["/".join(path)] = "gp-ucb"
            # The trial continues from the clone's checkpoint: its next reward change
            # is measured from there, under the new values.
            self._add_record(
                _Record(trial.trial_id, clone_last.time, tuple(values), clone_last.reward)
            )
        chosen_row = np.array([self._values(new_config)])
        if latest > self._last_exploration_time:
            self._last_exploration_time = latest
            self._current = chosen_row
        else:
            self._current = (
                chosen_row if self._current is None else np.vstack([self._current, chosen_row])
            )
        if self._custom_explore_fn is not None:
            out = self._custom_explore_fn(new_config)
            if not isinstance(out, dict):
                raise AtuneError(
                    f"`custom_explore_fn` must return the new config dict, got {out!r}"
                )
            new_config = out
        return new_config, operations

    def debug_string(self) -> str:
        return f"PB2: {self._num_checkpoints} checkpoints, {self._num_perturbations} perturbs"
