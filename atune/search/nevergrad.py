"""Gradient-free optimisation with Nevergrad (``pip install "atune[nevergrad]"``)."""

from __future__ import annotations

import copy
import inspect
import logging
import math
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import Searcher
from atune.search._domain import LogUniform, Normal, Quantized
from atune.search._flat import flatten_point, python_value, split_space, unflatten
from atune.search.sample import Categorical, Domain, Float, Integer

__all__ = ["NevergradSearch"]

logger = logging.getLogger(__name__)

_STATE_VERSION = 1
_INSTALL_HINT = 'NevergradSearch needs the nevergrad package: pip install "atune[nevergrad]"'


def _import_nevergrad() -> Any:
    try:
        import nevergrad
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return nevergrad


def _to_parameter(ng: Any, path: str, value: Any) -> tuple[Any, Any]:
    """One atune domain as ``(nevergrad parameter, q or None)``; q rounds the values."""
    if isinstance(value, ng.p.Parameter):
        return value, None
    if isinstance(value, dict):  # grid_search
        raise ConfigError(
            f"NevergradSearch cannot search the grid_search parameter {path!r}; use "
            "atune.choice([...]) instead"
        )
    if not isinstance(value, (Float, Integer, Categorical)):
        assert isinstance(value, Domain)
        raise ConfigError(
            f"NevergradSearch does not support parameters of type {type(value).__name__}: "
            f"{path!r} = {value!r}; use uniform/loguniform/randint/choice domains"
        )
    if isinstance(value, Categorical):
        return ng.p.Choice(list(value.categories)), None
    sampler = value.get_sampler()
    q: Any = None
    if isinstance(sampler, Quantized):
        q = sampler.q
        sampler = sampler.sampler
    if isinstance(value, Float):
        if isinstance(sampler, Normal):
            return ng.p.Scalar(init=sampler.mean).set_mutation(sigma=sampler.sd), q
        if isinstance(sampler, LogUniform):
            return ng.p.Log(lower=value.lower, upper=value.upper, exponent=math.e), q
        return ng.p.Scalar(lower=value.lower, upper=value.upper), q
    # Integer: [lower, upper) unless quantized, where upper is inclusive.
    upper = value.upper if q is not None else value.upper - 1
    if upper <= value.lower:
        return ng.p.Choice([value.lower]), None
    if isinstance(sampler, LogUniform):
        param = ng.p.Log(lower=value.lower, upper=upper, exponent=math.e)
    else:
        param = ng.p.Scalar(lower=value.lower, upper=upper)
    return param.set_integer_casting(), q


def _quantize(value: Any, q: Any, domain: Any) -> Any:
    """Round ``value`` to a multiple of ``q`` inside ``domain`` (Nevergrad has no q)."""
    lo = math.ceil(domain.lower / q)
    hi = math.floor(domain.upper / q)
    k = min(max(round(value / q), lo), hi)
    return int(k * q) if isinstance(domain, Integer) else float(round(k * q, 12))


class NevergradSearch(Searcher):
    """Nevergrad's gradient-free optimisers (evolution strategies, CMA-ES, DE, ...).

    Args:
        optimizer: A Nevergrad optimiser class or configured optimiser (e.g.
            ``ng.optimizers.OnePlusOne``, ``ng.optimizers.CMA``), built here with the
            converted space, or an optimiser instance that already holds its
            parametrization (then ``space`` must be None, or a list naming the entries
            of an array parametrization).
        optimizer_kwargs: Extra arguments for building ``optimizer`` (e.g. ``budget``,
            ``num_workers``); only with a class.
        space: atune domains (``uniform`` → ``Scalar``, ``loguniform`` → ``Log``,
            ``randint`` → integer ``Scalar``, ``choice`` → ``Choice``; quantized values
            are rounded to ``q``), Nevergrad parameters, or a whole ``ng.p.Dict`` /
            ``ng.p.Instrumentation``. None: take the Tuner's ``param_space``. Nested
            dicts become parameters named ``"a/b"``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"`` (Nevergrad minimises; ``"max"`` negates).
        points_to_evaluate: Configs to run first (given to ``optimizer.suggest``).
        seed: atune extension: an int seed for the parametrization's
            ``random_state``. None leaves Nevergrad's default (seeded from the global
            ``np.random`` state).

    Example:
        >>> import nevergrad as ng
        >>> searcher = NevergradSearch(
        ...     optimizer=ng.optimizers.OnePlusOne, metric="loss", mode="min", seed=0
        ... )
    """

    def __init__(
        self,
        optimizer: Any = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        space: dict[str, Any] | list[str] | Any = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        ng = _import_nevergrad()
        super().__init__(metric, mode)
        from nevergrad.optimization.base import ConfiguredOptimizer, Optimizer

        if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
            raise ConfigTypeError(f"`optimizer_kwargs` must be a dict, got {optimizer_kwargs!r}")
        if points_to_evaluate is not None and not isinstance(points_to_evaluate, (list, tuple)):
            raise ConfigTypeError(
                f"`points_to_evaluate` must be a list of dicts, got {points_to_evaluate!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"`seed` must be None or an int >= 0, got {seed!r}")
        self._factory: Any = None
        self._optimizer: Any = None
        self._names: list[str] | None = None  # entries of an array parametrization
        self._optimizer_kwargs = dict(optimizer_kwargs or {})
        self._seed_value = seed
        self._constants: dict[str, Any] = {}
        self._points = [
            flatten_point(p, f"points_to_evaluate[{i}]")
            for i, p in enumerate(points_to_evaluate or [])
        ]
        self._live: dict[str, Any] = {}
        self._quantized: dict[str, tuple[Any, Any]] = {}
        self._lock: anyio.Lock | None = None
        if isinstance(optimizer, Optimizer):
            if space is not None and not isinstance(space, list):
                raise ConfigError(
                    "NevergradSearch was given an optimizer instance, which holds its own "
                    "parametrization: pass `space` as None or as a list of parameter names, "
                    f"got {type(space).__name__}"
                )
            if optimizer_kwargs:
                raise ConfigError(
                    "`optimizer_kwargs` need an optimizer class or ConfiguredOptimizer to "
                    "build; the optimizer instance given is already built"
                )
            if space is not None and optimizer.dimension != len(space):
                raise ConfigError(
                    f"`space` names {len(space)} parameters, but the optimizer's "
                    f"parametrization has dimension {optimizer.dimension}"
                )
            self._names = list(space) if space is not None else None
            self._optimizer = optimizer
            self._seed(optimizer.parametrization)
        elif (inspect.isclass(optimizer) and issubclass(optimizer, Optimizer)) or isinstance(
            optimizer, ConfiguredOptimizer
        ):
            self._factory = optimizer
            if space:
                self._build(ng, space, "space")
        else:
            raise ConfigTypeError(
                "`optimizer` must be a Nevergrad optimizer class (e.g. "
                "ng.optimizers.OnePlusOne), a ConfiguredOptimizer or an optimizer "
                f"instance, got {optimizer!r}"
            )

    # ----------------------------------------------------------------- setup

    def _seed(self, parametrization: Any) -> None:
        if self._seed_value is not None:
            parametrization.random_state = np.random.RandomState(self._seed_value)

    def _build(self, ng: Any, space: Any, where: str) -> None:
        if isinstance(space, ng.p.Parameter):
            parametrization = space
        else:
            params, self._constants = split_space(space, where, native=(ng.p.Parameter,))
            if not params:
                raise ConfigError(f"NevergradSearch needs at least one parameter in `{where}`")
            converted = {}
            for path, value in params.items():
                converted[path], q = _to_parameter(ng, path, value)
                if q is not None:
                    self._quantized[path] = (q, value)
            parametrization = ng.p.Dict(**converted)
        self._seed(parametrization)
        try:
            self._optimizer = self._factory(
                parametrization=parametrization, **self._optimizer_kwargs
            )
        except TypeError as exc:
            raise ConfigError(f"cannot build the Nevergrad optimizer: {exc}") from exc

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless one was given) param space."""
        self._fill_metric_mode(metric, mode)
        if self._optimizer is None:
            self._build(_import_nevergrad(), config or {}, "param_space")
            return True
        params, constants = split_space(config or {}, "param_space", native=())
        if params:
            raise ConfigError(
                "NevergradSearch was given its own space, so the Tuner's param_space must "
                f"not define search parameters too (it defines {sorted(params)}); put them "
                "in one place"
            )
        self._constants = {**constants, **self._constants}
        return True

    def _check_ready(self) -> None:
        if self._optimizer is None:
            raise ConfigError(
                "NevergradSearch has no search space: pass `space` or the Tuner's param_space"
            )
        if self._metric is None or self._mode is None:
            raise ConfigError(
                "NevergradSearch needs `metric` and `mode`: pass them to NevergradSearch or "
                f"to TuneConfig, got metric={self._metric!r}, mode={self._mode!r}"
            )

    # ----------------------------------------------------------------- protocol

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _suggest_point(self, point: dict[str, Any], index: int) -> None:
        ng = _import_nevergrad()
        try:
            if self._names is not None:
                self._optimizer.suggest(np.array([point[n] for n in self._names], dtype=float))
            elif isinstance(self._optimizer.parametrization, ng.p.Instrumentation):
                self._optimizer.suggest(**unflatten(point))
            else:
                self._optimizer.suggest(point)
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"`points_to_evaluate[{index}]` does not fit the search space: {exc!r}"
            ) from exc

    def _ask(self) -> Any:
        if self._points:
            index = len(self._points)  # for the message only
            self._suggest_point(self._points.pop(0), index)
        return self._optimizer.ask()

    def _config(self, candidate: Any) -> dict[str, Any]:
        if self._names is not None:
            flat = dict(zip(self._names, np.asarray(candidate.args[0]).tolist(), strict=True))
        elif candidate.kwargs:
            flat = flatten_point(dict(candidate.kwargs), "candidate")
        else:
            flat = dict(candidate.value)
        flat = {k: python_value(v) for k, v in flat.items()}
        for path, (q, domain) in self._quantized.items():
            flat[path] = _quantize(flat[path], q, domain)
        return unflatten({**copy.deepcopy(self._constants), **flat})

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """Ask the optimiser for a candidate (``points_to_evaluate`` first)."""
        self._check_ready()
        async with self._get_lock():
            candidate = await anyio.to_thread.run_sync(self._ask)
        self._live[trial_id] = candidate
        return self._config(candidate)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tell the optimiser the trial's loss (``metric``, negated for ``"max"``)."""
        candidate = self._live.pop(trial_id, None)
        if candidate is None or error or not result:
            return
        value = result.get(self._metric)  # type: ignore[arg-type]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        loss = float(value) if self._mode == "min" else -float(value)
        async with self._get_lock():
            await anyio.to_thread.run_sync(self._optimizer.tell, candidate, loss)

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """The optimiser (pickled with its parametrization and RNG) and the live trials."""
        return {
            "version": _STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "factory": self._factory,
            "optimizer_kwargs": self._optimizer_kwargs,
            "optimizer": self._optimizer,
            "names": self._names,
            "seed": self._seed_value,
            "constants": self._constants,
            "points": self._points,
            "live": self._live,
            "quantized": self._quantized,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a state made by :meth:`get_state`."""
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(
                f"NevergradSearch state version must be {_STATE_VERSION}, "
                f"got {state.get('version')!r}"
            )
        self._metric, self._mode = state["metric"], state["mode"]
        self._factory = state["factory"]
        self._optimizer_kwargs = state["optimizer_kwargs"]
        self._optimizer = state["optimizer"]
        self._names = state["names"]
        self._seed_value = state["seed"]
        self._constants = state["constants"]
        self._points = state["points"]
        self._live = state["live"]
        self._quantized = state["quantized"]
        self._lock = None
