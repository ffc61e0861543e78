"""Bayesian optimisation with a Gaussian process, on the ``bayesian-optimization`` package.

Needs ``pip install "atune[bayesopt]"``. Works with both APIs of the package: 1.x
(``UtilityFunction``; the version Nevergrad pins) and 2.x/3.x (``acquisition`` objects).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections import Counter
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import FINISHED
from atune.search._flat import describe, flatten_point, python_value, split_space, unflatten
from atune.search._library import LibrarySearcher, import_library

__all__ = ["BayesOptSearch"]

logger = logging.getLogger(__name__)

#: Configs are compared after rounding to this many decimals to spot duplicates (Ray's value).
DUPLICATE_DECIMALS = 5
#: Default acquisition settings, as in Ray Tune.
_DEFAULT_UTILITY = {"kind": "ucb", "kappa": 2.576, "xi": 0.0}
_UTILITY_KEYS = {"kind", "kappa", "xi", "kappa_decay", "kappa_decay_delay"}


def _import_bayes_opt() -> Any:
    return import_library(
        "bayes_opt", "BayesOptSearch", "bayesopt", "the bayesian-optimization package"
    )


def _legacy_api(bo: Any) -> bool:
    """True for bayesian-optimization 1.x (``UtilityFunction``), False for 2.x/3.x."""
    return hasattr(bo, "UtilityFunction")


def _check_utility_kwargs(utility_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    if utility_kwargs is None:
        return dict(_DEFAULT_UTILITY)
    if not isinstance(utility_kwargs, dict):
        raise ConfigTypeError(f"`utility_kwargs` must be a dict, got {utility_kwargs!r}")
    unknown = set(utility_kwargs) - _UTILITY_KEYS
    if unknown:
        raise ConfigError(
            f"`utility_kwargs` accepts only {sorted(_UTILITY_KEYS)}, got {sorted(unknown)}"
        )
    kwargs = {**_DEFAULT_UTILITY, **utility_kwargs}
    if kwargs["kind"] not in ("ucb", "ei", "poi"):
        raise ConfigError(
            f"`utility_kwargs['kind']` must be 'ucb', 'ei' or 'poi', got {kwargs['kind']!r}"
        )
    return kwargs


def _make_acquisition(bo: Any, kwargs: dict[str, Any]) -> Any:
    """The acquisition for ``utility_kwargs``: a UtilityFunction (1.x) or an object (2.x+)."""
    if _legacy_api(bo):
        return bo.UtilityFunction(**kwargs)
    decay = kwargs.get("kappa_decay")
    extra = {
        "exploration_decay": None if decay in (None, 1) else decay,
        "exploration_decay_delay": kwargs.get("kappa_decay_delay") or None,
    }
    acq = bo.acquisition
    if kwargs["kind"] == "ucb":
        return acq.UpperConfidenceBound(kappa=kwargs["kappa"], **extra)
    if kwargs["kind"] == "ei":
        return acq.ExpectedImprovement(xi=kwargs["xi"], **extra)
    return acq.ProbabilityOfImprovement(xi=kwargs["xi"], **extra)


def _to_bounds(path: str, value: Any) -> tuple[float, float]:
    """One parameter of the space as BayesOpt's ``(lower, upper)``, or a ConfigError."""
    if isinstance(value, tuple):  # native bounds
        lower, upper = float(value[0]), float(value[1])
        if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
            raise ConfigError(
                f"BayesOptSearch needs finite bounds with lower < upper for {path!r}, got {value!r}"
            )
        return lower, upper
    spec = describe(value, path, "BayesOptSearch")
    if spec.kind in ("int", "categorical"):
        raise ConfigError(
            f"BayesOptSearch does not support parameters of type {type(value).__name__}: "
            f"{path!r} = {value!r}. BayesOpt searches continuous ranges only; use "
            "atune.uniform(lower, upper) (and round or index in the trainable), or a "
            "searcher that handles it, e.g. NevergradSearch."
        )
    if spec.q is not None:
        logger.warning("BayesOpt does not support quantization; dropped it for %r", path)
    if spec.kind == "normal":
        raise ConfigError(
            f"BayesOptSearch needs a bounded uniform range for {path!r}, got {value!r}; "
            "use atune.uniform(lower, upper)."
        )
    assert spec.lower is not None and spec.upper is not None  # checked by uniform/loguniform
    if spec.log:
        raise ConfigError(
            f"BayesOptSearch cannot search {path!r} = {value!r} in log space: BayesOpt "
            f"supports uniform ranges only. Use atune.uniform({spec.lower!r}, "
            f"{spec.upper!r}) to search it linearly, or search the exponent, e.g. "
            f"atune.uniform({math.log10(spec.lower):.4g}, {math.log10(spec.upper):.4g}) "
            "and use 10 ** value in the trainable."
        )
    return float(spec.lower), float(spec.upper)


class BayesOptSearch(LibrarySearcher):
    """Bayesian optimisation (Gaussian process + acquisition function) via ``bayes_opt``.

    Searches continuous ranges only: every parameter must be ``atune.uniform(...)``
    (quantization is dropped with a warning), or, in a native space, a
    ``(lower, upper)`` tuple. Nested dicts become parameters named ``"a/b"``; other
    values of the space are constants copied into every config.

    The first ``random_search_steps`` trials (``points_to_evaluate`` included) are
    random; their results are held back and given to the model together once all of
    them completed, so the GP does not overfit the first few points. Errored trials and
    results without a finite ``metric`` are not registered; an errored random trial is
    replaced by another one.

    Args:
        space: The search space (atune domains or ``{"x": (lower, upper)}``); None to
            take the Tuner's ``param_space``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"`` (BayesOpt maximises; ``"min"`` negates).
        points_to_evaluate: Configs to run first; each must set every parameter.
        utility_kwargs: The acquisition: ``kind`` (``"ucb"``, ``"ei"``, ``"poi"``),
            ``kappa``, ``xi`` and optionally ``kappa_decay``, ``kappa_decay_delay``.
            Default ``{"kind": "ucb", "kappa": 2.576, "xi": 0.0}``.
        random_state: Seed of the optimiser (default 42).
        random_search_steps: Number of initial random trials.
        verbose: ``bayes_opt`` verbosity.
        patience: Stop the search (``FINISHED``) once some config was suggested more
            than this many times; None never stops.
        skip_duplicate: Do not run a config that was already suggested.

    Example:
        >>> searcher = BayesOptSearch(metric="loss", mode="min", random_state=0)
        >>> tuner = atune.Tuner(  # doctest: +SKIP
        ...     objective,
        ...     param_space={"x": atune.uniform(-5, 5), "y": atune.uniform(-5, 5)},
        ...     tune_config=atune.TuneConfig(search_alg=searcher, num_samples=30),
        ... )
    """

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        utility_kwargs: dict[str, Any] | None = None,
        random_state: int = 42,
        random_search_steps: int = 10,
        verbose: int = 0,
        patience: int | None = 5,
        skip_duplicate: bool = True,
    ) -> None:
        bo = _import_bayes_opt()
        super().__init__(metric, mode)
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
        ):
            raise ConfigError(f"`patience` must be None or an int >= 1, got {patience!r}")
        if (
            isinstance(random_search_steps, bool)
            or not isinstance(random_search_steps, int)
            or random_search_steps < 0
        ):
            raise ConfigError(
                f"`random_search_steps` must be an int >= 0, got {random_search_steps!r}"
            )
        self._utility_kwargs = _check_utility_kwargs(utility_kwargs)
        _make_acquisition(bo, self._utility_kwargs)  # validates the values early
        self._points = [
            flatten_point(p, where=f"points_to_evaluate[{i}]")
            for i, p in enumerate(self._check_points(points_to_evaluate))
        ]
        self._random_state = random_state
        self._random_steps = random_search_steps
        self._verbose = verbose
        self._patience = patience
        self._skip_duplicate = bool(skip_duplicate)
        self._bounds: dict[str, tuple[float, float]] = {}
        self._constants: dict[str, Any] = {}
        self._optimizer: Any = None
        self._acquisition: Any = None
        self._live: dict[str, dict[str, float]] = {}
        self._buffer: list[tuple[dict[str, float], float]] = []
        self._random_given = 0
        self._seen: Counter[tuple[float, ...]] = Counter()
        if space:
            self._set_space(space, "space")

    # ----------------------------------------------------------------- setup

    def _set_space(self, space: dict[str, Any], where: str) -> None:
        params, constants = split_space(space, where, searcher="BayesOptSearch")
        if not params:
            raise ConfigError(f"BayesOptSearch needs at least one parameter to search in `{where}`")
        bounds = {path: _to_bounds(path, value) for path, value in params.items()}
        for i, point in enumerate(self._points):
            missing = sorted(set(bounds) - set(point))
            extra = sorted(set(point) - set(bounds) - set(constants))
            if missing or extra:
                raise ConfigError(
                    f"`points_to_evaluate[{i}]` must set exactly the searched parameters "
                    f"{sorted(bounds)}; missing {missing}, unknown {extra}"
                )
        self._bounds, self._constants = bounds, constants
        bo = _import_bayes_opt()
        self._acquisition = _make_acquisition(bo, self._utility_kwargs)
        kwargs: dict[str, Any] = {
            "f": None,
            "pbounds": dict(bounds),
            "random_state": self._random_state,
            "verbose": self._verbose,
            "allow_duplicate_points": True,  # duplicates are our business (skip_duplicate)
        }
        if not _legacy_api(bo):
            kwargs["acquisition_function"] = self._acquisition
        self._optimizer = bo.BayesianOptimization(**kwargs)

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless one was given) param space."""
        self._fill_metric_mode(metric, mode)
        if self._optimizer is None:
            self._set_space(config or {}, "param_space")
            return True
        self._merge_tuner_constants(config, native=(tuple,))  # (lower, upper) bounds too
        return True

    # ----------------------------------------------------------------- protocol

    def _suggest_sync(self) -> dict[str, float]:
        """Fit the GP and maximise the acquisition (runs in a worker thread)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's GP convergence chatter
            if _legacy_api(_import_bayes_opt()):
                params = self._optimizer.suggest(self._acquisition)
            else:
                params = self._optimizer.suggest()
        return {
            k: min(max(float(python_value(params[k])), lo), hi)
            for k, (lo, hi) in self._bounds.items()
        }

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config; None while random trials are still running; or ``FINISHED``."""
        self._require_ready(self._optimizer is not None)
        in_random_phase = len(self._buffer) < self._random_steps
        if in_random_phase and self._random_given >= self._random_steps:
            return None  # wait for the random trials before fitting the model
        while True:
            if self._points:
                flat = self._points.pop(0)
            else:
                flat = await self._run_model(self._suggest_sync)
            key = tuple(round(float(flat[k]), DUPLICATE_DECIMALS) for k in sorted(self._bounds))
            seen = key in self._seen
            self._seen[key] += 1
            if self._patience is not None and self._seen[key] > self._patience:
                logger.info("BayesOptSearch suggested %s more than patience times; done", flat)
                return FINISHED
            if not (seen and self._skip_duplicate):
                break
            logger.info("BayesOptSearch skips the duplicate config %s", flat)
            if self._patience is None:
                return None  # no bound on retries: wait for new data instead
        if in_random_phase:
            self._random_given += 1
        self._live[trial_id] = flat
        return self._config(flat)

    def _config(self, flat: dict[str, Any]) -> dict[str, Any]:
        return unflatten({**copy.deepcopy(self._constants), **flat})

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Register the trial's final ``metric`` (negated for ``"min"``) with the model."""
        flat = self._live.pop(trial_id, None)
        if flat is None:
            return  # not one of ours
        in_random_phase = len(self._buffer) < self._random_steps
        loss = None if error else self._loss(trial_id, result)
        if loss is None:
            if in_random_phase:
                self._random_given -= 1  # let another random trial take its place
            return
        target = -loss  # BayesOpt maximises
        if in_random_phase:
            self._buffer.append((flat, target))
            if len(self._buffer) < self._random_steps:
                return
            pending = list(self._buffer)
        else:
            pending = [(flat, target)]

        def register() -> None:
            for params, y in pending:
                self._optimizer.register(params=params, target=y)

        await self._run_model(register)

    # ----------------------------------------------------------------- state

    #: The fitted optimiser pickles with its GP and RNG.
    _STATE_FIELDS = (
        "utility_kwargs",
        "points",
        "random_state",
        "random_steps",
        "verbose",
        "patience",
        "skip_duplicate",
        "bounds",
        "constants",
        "optimizer",
        "acquisition",
        "live",
        "buffer",
        "random_given",
        "seen",
    )
