"""OptunaSearch: Optuna's samplers (TPE by default) as an atune searcher.

Optuna is driven through its ask-and-tell interface: :meth:`OptunaSearch.suggest` asks
the study for a trial, :meth:`OptunaSearch.on_trial_complete` tells it the outcome. The
model work (sampling, fitting) runs in a worker thread so the event loop stays free.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable, Mapping
from typing import Any

from atune._metric import validate_mode
from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import _q_value
from atune.search._flat import (
    DomainSpec,
    Path,
    build_config,
    deep_merge,
    describe,
    find_domains,
    flatten_point,
    has_domains,
    param_name,
    unflatten,
)
from atune.search._library import LibrarySearcher, import_library

__all__ = ["OptunaSearch"]

logger = logging.getLogger(__name__)

#: Category types Optuna stores as they are; other categories are passed as indices.
_OPTUNA_SCALARS = (type(None), bool, int, float, str)


def _import_optuna() -> Any:
    return import_library("optuna", "OptunaSearch", "optuna", "Optuna")


def _quietly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with Optuna's INFO lines ("A new study created ...") muted.

    The study is internal to the searcher and atune reports every trial itself, so
    Optuna's INFO lines are noise in an experiment's output. Only
    Optuna's default verbosity (INFO) is lowered; a user who set DEBUG or WARNING with
    ``optuna.logging.set_verbosity`` keeps it.
    """

    def run(*args: Any) -> Any:
        logging_ = _import_optuna().logging
        if logging_.get_verbosity() != logging_.INFO:
            return func(*args)
        logging_.set_verbosity(logging_.WARNING)
        try:
            return func(*args)
        finally:
            logging_.set_verbosity(logging_.INFO)

    return run


class _Param:
    """One atune domain as an Optuna distribution, plus how to map values back."""

    def __init__(
        self, path: Path, spec: DomainSpec, distribution: Any, decode: Callable[[Any], Any]
    ):
        self.path = path
        self.name = spec.name
        self.spec = spec
        self.distribution = distribution
        self.decode = decode  # Optuna value -> config value
        self.by_index = False  # categories passed to Optuna as indices

    def encode(self, value: Any, where: str) -> Any:
        """A config value (e.g. from ``points_to_evaluate``) as the Optuna value."""
        if not self.by_index:
            return value
        index = self.spec.index(value)
        if index is not None:
            return index
        raise ConfigError(
            f"`{where}` sets {self.name!r}={value!r}, which is not one of its categories "
            f"{list(self.spec.categories)!r}"
        )


def _convert_domain(ot: Any, path: Path, domain: Any) -> _Param:
    """The Optuna distribution for one atune domain (raises ConfigError if there is none)."""
    dists = ot.distributions
    spec = describe(domain, param_name(path), "OptunaSearch")
    q = spec.q
    if spec.kind == "normal":
        raise ConfigError(
            f"OptunaSearch cannot search parameter {spec.name!r}: {domain!r} is a normal "
            "distribution, which Optuna does not support; use tune.uniform/loguniform, "
            "or a define-by-run function"
        )
    if spec.kind == "float":
        lo, hi = float(spec.lower or 0.0), float(spec.upper or 0.0)  # bounded here
        if q is None:
            return _Param(path, spec, dists.FloatDistribution(lo, hi, log=spec.log), float)
        k_lo, k_hi = spec.q_range  # type: ignore[misc]
        if spec.log:
            # Optuna cannot combine log and step: sample in log space, then round to q.
            return _Param(path, spec, dists.FloatDistribution(lo, hi, log=True), spec.snap)
        # Low and high on the q grid, so Optuna's steps are exactly atune's multiples of q.
        dist = dists.FloatDistribution(spec.multiple(k_lo), spec.multiple(k_hi), step=q)
        return _Param(path, spec, dist, lambda v: _q_value(round(v / q), q))
    if spec.kind == "int":
        lo, hi = spec.lower, spec.upper
        if q is None:  # [lower, upper)
            dist = dists.IntDistribution(lo, spec.inclusive_upper, log=spec.log)
            return _Param(path, spec, dist, int)
        k_lo, k_hi = spec.q_range  # type: ignore[misc]  # quantized: upper inclusive
        if spec.log:
            return _Param(path, spec, dists.IntDistribution(lo, hi, log=True), spec.snap)
        return _Param(path, spec, dists.IntDistribution(k_lo * q, k_hi * q, step=q), int)
    for category in spec.categories:
        if isinstance(category, Mapping) and has_domains(category):
            raise ConfigError(
                f"OptunaSearch cannot search parameter {spec.name!r}: a choice among dicts "
                "holding search spaces (a conditional space) needs a define-by-run "
                "function as `space`"
            )
    categories = list(spec.categories)
    if all(isinstance(c, _OPTUNA_SCALARS) for c in categories):
        return _Param(path, spec, dists.CategoricalDistribution(categories), lambda v: v)
    indices = dists.CategoricalDistribution(list(range(len(categories))))
    param = _Param(path, spec, indices, lambda v: categories[v])
    param.by_index = True
    return param


def _check_metric_mode(metric: Any, mode: Any) -> tuple[Any, Any]:
    if isinstance(metric, (list, tuple)) or isinstance(mode, (list, tuple)):
        metrics = list(metric) if isinstance(metric, (list, tuple)) else None
        modes = list(mode) if isinstance(mode, (list, tuple)) else None
        if metrics is None or modes is None or len(metrics) != len(modes):
            raise ConfigError(
                "multi-objective OptunaSearch needs `metric` and `mode` lists of the same "
                f"length, got metric={metric!r}, mode={mode!r}"
            )
        if any(m not in ("min", "max") for m in modes):
            raise ConfigError(f"every `mode` must be 'min' or 'max', got mode={mode!r}")
        return metrics, modes
    return metric, validate_mode(mode)


class OptunaSearch(LibrarySearcher):
    """Search with an Optuna sampler (TPE by default), like Ray Tune's ``OptunaSearch``.

    The search space comes from the Tuner's ``param_space`` or from ``space``, which may
    be an atune param space, a dict of Optuna distributions (``{"x":
    optuna.distributions.FloatDistribution(0, 1)}``) or a define-by-run function
    ``space(trial)`` that calls ``trial.suggest_*`` and may return a dict of constants.
    Nested params are flattened to names joined by ``/`` for Optuna and nested again in
    the suggested configs.

    Args:
        space: The search space (see above); None to take the Tuner's ``param_space``.
        metric: The result field to optimise, or a list of fields (multi-objective).
        mode: ``"min"``/``"max"``, or a list of them matching ``metric``.
        points_to_evaluate: Configs to try first (nested like the param space).
        sampler: An ``optuna.samplers.BaseSampler``; default ``TPESampler(seed=seed)``.
        seed: Seed of the default sampler (ignored when ``sampler`` is given).
        evaluated_rewards: The known results of ``points_to_evaluate`` (one value, or a
            list of values for multi-objective, per point): they are added to the study
            as finished trials instead of being run again.

    Example:
        >>> searcher = OptunaSearch(metric="loss", mode="min", seed=0)
        >>> tuner = atune.Tuner(
        ...     train, param_space={"lr": atune.loguniform(1e-4, 1e-1)},
        ...     tune_config=atune.TuneConfig(search_alg=searcher, num_samples=20),
        ... )  # doctest: +SKIP
    """

    def __init__(
        self,
        space: dict[str, Any] | Callable[[Any], dict[str, Any] | None] | None = None,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        sampler: Any = None,
        seed: int | None = None,
        evaluated_rewards: list[Any] | None = None,
    ) -> None:
        ot = _import_optuna()
        super().__init__()
        self._metric, self._mode = _check_metric_mode(metric, mode)
        self._points = self._check_points(points_to_evaluate)
        if evaluated_rewards is not None:
            if not self._points:
                raise ConfigError("`evaluated_rewards` needs `points_to_evaluate`")
            if len(evaluated_rewards) != len(self._points):
                raise ConfigError(
                    "`evaluated_rewards` must have one entry per point of `points_to_evaluate`,"
                    f" got {len(evaluated_rewards)} rewards for {len(self._points)} points"
                )
            if callable(space):
                raise ConfigError("`evaluated_rewards` cannot be used with a define-by-run `space`")
        self._rewards = list(evaluated_rewards) if evaluated_rewards is not None else None
        if sampler is not None and seed is not None:
            logger.warning("OptunaSearch: `seed` is ignored because a `sampler` was given")
        if sampler is not None and not isinstance(sampler, ot.samplers.BaseSampler):
            raise ConfigTypeError(
                f"`sampler` must be an optuna.samplers.BaseSampler, got {sampler!r}"
            )
        self._sampler = sampler
        self._seed = seed
        # The space: an atune param space (``_params``), a dict of Optuna distributions
        # (``_native``) or a define-by-run function (``_define_by_run``).
        self._param_space: dict[str, Any] = {}
        self._params: list[_Param] = []
        self._native: dict[str, Any] | None = None
        self._define_by_run: Callable[[Any], Any] | None = None
        self._constants: dict[str, Any] = {}  # the Tuner's param space, when it is all constant
        self._has_space = False
        if space is not None:
            self._set_space(ot, space)
        self._study: Any = None
        self._ot_trials: dict[str, Any] = {}  # trial_id -> live optuna Trial

    # ----------------------------------------------------------------- space

    def _set_space(self, ot: Any, space: Any) -> None:
        if callable(space):
            self._define_by_run = space
        elif isinstance(space, Mapping):
            if space and all(
                isinstance(v, ot.distributions.BaseDistribution) for v in space.values()
            ):
                self._native = dict(space)
            else:
                self._param_space = dict(space)
                self._params = [
                    _convert_domain(ot, path, domain)
                    for path, domain in find_domains(space, "OptunaSearch")
                ]
        else:
            raise ConfigTypeError(
                "`space` must be a dict (an atune param space or Optuna distributions) or a "
                f"define-by-run function, got {space!r}"
            )
        self._has_space = True

    def _distributions(self) -> dict[str, Any]:
        if self._native is not None:
            return self._native
        return {p.name: p.distribution for p in self._params}

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless one was given) param space."""
        ot = _import_optuna()
        self._set_metric_mode(metric, mode)
        return self._take_param_space(config, self._has_space, lambda c: self._set_space(ot, c))

    def _set_metric_mode(self, metric: Any, mode: Any) -> None:
        """Fill in metric and mode (lists for several objectives) where none were given."""
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = mode
        self._metric, self._mode = _check_metric_mode(self._metric, self._mode)

    # ----------------------------------------------------------------- study

    def _setup_study(self) -> None:
        ot = _import_optuna()
        sampler = self._sampler or ot.samplers.TPESampler(seed=self._seed)
        direction = {"min": "minimize", "max": "maximize"}
        if isinstance(self._mode, list):
            study = ot.create_study(sampler=sampler, directions=[direction[m] for m in self._mode])
        else:
            study = ot.create_study(sampler=sampler, direction=direction[str(self._mode)])
        names = None if self._define_by_run is not None else set(self._distributions())
        for i, point in enumerate(self._points):
            where = f"points_to_evaluate[{i}]"
            params = flatten_point(point, names, where=where)
            params = self._encode(params, where)
            if self._rewards is None:
                study.enqueue_trial(params)
                continue
            reward = self._rewards[i]
            dists = self._distributions()
            multi = isinstance(self._mode, list)
            study.add_trial(
                ot.trial.create_trial(
                    params=params,
                    distributions={n: dists[n] for n in params},
                    value=None if multi else reward,
                    values=list(reward) if multi else None,
                )
            )
        self._study = study

    def _encode(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        by_name = {p.name: p for p in self._params}
        return {
            name: by_name[name].encode(value, where) if name in by_name else value
            for name, value in params.items()
        }

    def _ask(self) -> tuple[Any, dict[str, Any]]:
        """Ask the study for a trial and build its config (runs in a worker thread)."""
        if self._study is None:
            self._setup_study()
        study = self._study
        if self._define_by_run is not None:
            ot_trial = study.ask()
            constants = self._define_by_run(ot_trial)
            if constants is not None and not isinstance(constants, Mapping):
                study.tell(ot_trial, state=_import_optuna().trial.TrialState.FAIL)
                raise ConfigTypeError(
                    "the define-by-run `space` function must return None or a dict of "
                    f"constants, got {constants!r}"
                )
            flat = {**ot_trial.params, **(constants or {})}
            return ot_trial, deep_merge(self._constants, unflatten(flat))
        ot_trial = study.ask(self._distributions())
        if self._native is not None:
            return ot_trial, deep_merge(self._constants, unflatten(ot_trial.params))
        values = {p.path: p.decode(ot_trial.params[p.name]) for p in self._params}
        return ot_trial, build_config(self._param_space, values)

    # ----------------------------------------------------------------- protocol

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """Ask Optuna for the next config."""
        self._require_ready(self._has_space)
        ot_trial, config = await self._run_model(_quietly(self._ask))
        self._ot_trials[trial_id] = ot_trial
        return config

    async def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Report the intermediate value to Optuna (single objective; used by pruners)."""
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or isinstance(self._metric, list) or self._metric not in result:
            return
        step = result.get("training_iteration")
        if isinstance(step, int):
            try:
                ot_trial.report(float(result[self._metric]), step)
            except Exception as exc:  # a pruner-only feature; never fail the run for it
                logger.debug("OptunaSearch: could not report an intermediate value: %s", exc)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tell Optuna the final value(s); errored or metric-less trials are told FAIL."""
        ot_trial = self._ot_trials.pop(trial_id, None)
        if ot_trial is None:
            return
        values = None if error else self._values(trial_id, result)
        ot = _import_optuna()

        def tell() -> None:
            if values is None:
                self._study.tell(ot_trial, state=ot.trial.TrialState.FAIL)
            else:
                self._study.tell(ot_trial, values)

        await self._run_model(_quietly(tell))

    def _values(self, trial_id: str, result: dict[str, Any] | None) -> Any:
        metrics: list[str] = self._metric if isinstance(self._metric, list) else [str(self._metric)]
        if not result or any(m not in result for m in metrics):
            logger.warning(
                "OptunaSearch: trial %s ended without reporting %s; told Optuna it failed",
                trial_id,
                metrics,
            )
            return None
        try:
            values = [float(result[m]) for m in metrics]
        except (TypeError, ValueError):
            logger.warning("OptunaSearch: trial %s reported a non-numeric metric", trial_id)
            return None
        if any(math.isnan(v) for v in values):
            return None
        return values if isinstance(self._metric, list) else values[0]

    # ----------------------------------------------------------------- state

    #: The study (with its sampler's random state), live trials and settings.
    _STATE_FIELDS = (
        "points",
        "rewards",
        "seed",
        "sampler",
        "param_space",
        "native",
        "define_by_run",
        "constants",
        "has_space",
        "study",
        "ot_trials",
    )

    def get_state(self) -> dict[str, Any]:
        """The study (with its sampler's random state), live trials and settings.

        A define-by-run function that cannot be pickled (a lambda) is left out; build the
        restored searcher with the same ``space`` before calling :meth:`restore`.
        """
        state = super().get_state()
        try:
            pickle.dumps(self._define_by_run)
        except Exception:
            state["define_by_run"] = None
        state["ot_trials"] = dict(self._ot_trials)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a state made by :meth:`get_state`."""
        if isinstance(state, dict) and state.get("define_by_run") is None:
            state = {**state, "define_by_run": self._define_by_run}  # this instance's own
        super().set_state(state)

    def _after_restore(self) -> None:
        ot = _import_optuna()
        self._params = [
            _convert_domain(ot, path, domain)
            for path, domain in find_domains(self._param_space, "OptunaSearch")
        ]
        no_space = self._native is None and not self._param_space
        if self._has_space and no_space and self._define_by_run is None:
            raise ConfigError(
                "the saved OptunaSearch used a define-by-run function that could not be "
                "saved; build the searcher with the same `space` before restoring"
            )
        self._ot_trials = dict(self._ot_trials)
