"""Gradient-free optimisation with Nevergrad (``pip install "atune[nevergrad]"``)."""

from __future__ import annotations

import copy
import inspect
import logging
import math
from typing import Any

import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._flat import describe, flatten_point, python_value, split_space, unflatten
from atune.search._library import LibrarySearcher, import_library

__all__ = ["NevergradSearch"]

logger = logging.getLogger(__name__)


def _import_nevergrad() -> Any:
    return import_library("nevergrad", "NevergradSearch", "nevergrad")


def _to_parameter(ng: Any, path: str, value: Any) -> tuple[Any, Any]:
    """One atune domain as ``(nevergrad parameter, q or None)``; q rounds the values."""
    if isinstance(value, ng.p.Parameter):
        return value, None
    spec = describe(value, path, "NevergradSearch")
    if spec.kind == "categorical":
        return ng.p.Choice(list(spec.categories)), None
    if spec.kind == "normal":
        return ng.p.Scalar(init=spec.mean).set_mutation(sigma=spec.sd), spec.q
    # Integers: [lower, upper) unless quantized, where upper is inclusive.
    upper = spec.inclusive_upper
    if spec.kind == "int" and upper <= spec.lower:
        return ng.p.Choice([spec.lower]), None
    if spec.log:
        param = ng.p.Log(lower=spec.lower, upper=upper, exponent=math.e)
    else:
        param = ng.p.Scalar(lower=spec.lower, upper=upper)
    return (param.set_integer_casting() if spec.kind == "int" else param), spec.q


def _quantize(value: Any, q: Any, domain: Any) -> Any:
    """Round ``value`` to a multiple of ``q`` inside ``domain`` (Nevergrad has no q).

    Nevergrad's own rounding, kept as it was: the multipliers come from plain
    ``ceil``/``floor`` and floats keep 12 decimals (the other integrations use
    :meth:`DomainSpec.snap`, which is tolerant of float noise at the bounds).
    """
    spec = describe(domain)
    lo = math.ceil(spec.lower / q)
    hi = math.floor(spec.upper / q)
    k = min(max(round(value / q), lo), hi)
    return int(k * q) if spec.kind == "int" else float(round(k * q, 12))


class NevergradSearch(LibrarySearcher):
    """Nevergrad's gradient-free optimisers (evolution strategies, CMA-ES, DE, ...).

    Args:
        optimizer: A Nevergrad optimiser class or configured optimiser (e.g.
            ``ng.optimizers.OnePlusOne``, ``ng.optimizers.CMA``), built here with the
            converted space, or an optimiser instance that already holds its
            parametrization (then ``space`` must be None, or a list naming the entries
            of an array parametrization). None (atune extension; Ray Tune requires
            one): ``ng.optimizers.OnePlusOne``, a robust default that needs no budget.
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

        if optimizer is None:
            optimizer = ng.optimizers.OnePlusOne
        if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
            raise ConfigTypeError(f"`optimizer_kwargs` must be a dict, got {optimizer_kwargs!r}")
        self._factory: Any = None
        self._optimizer: Any = None
        self._names: list[str] | None = None  # entries of an array parametrization
        self._optimizer_kwargs = dict(optimizer_kwargs or {})
        self._seed_value = self._check_seed(seed)
        self._constants: dict[str, Any] = {}
        self._points = [
            flatten_point(p, where=f"points_to_evaluate[{i}]")
            for i, p in enumerate(self._check_points(points_to_evaluate))
        ]
        self._live: dict[str, Any] = {}
        self._quantized: dict[str, tuple[Any, Any]] = {}
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
            params, self._constants = split_space(
                space, where, native=(ng.p.Parameter,), searcher="NevergradSearch"
            )
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

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless one was given) param space."""
        self._fill_metric_mode(metric, mode)
        if self._optimizer is None:
            self._build(_import_nevergrad(), config or {}, "param_space")
            return True
        self._merge_tuner_constants(config)
        return True

    # ----------------------------------------------------------------- protocol

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
            flat = flatten_point(dict(candidate.kwargs), where="candidate")
        else:
            flat = dict(candidate.value)
        flat = {k: python_value(v) for k, v in flat.items()}
        for path, (q, domain) in self._quantized.items():
            flat[path] = _quantize(flat[path], q, domain)
        return unflatten({**copy.deepcopy(self._constants), **flat})

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """Ask the optimiser for a candidate (``points_to_evaluate`` first)."""
        self._require_ready(self._optimizer is not None)
        candidate = await self._run_model(self._ask)
        self._live[trial_id] = candidate
        return self._config(candidate)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tell the optimiser the trial's loss (``metric``, negated for ``"max"``)."""
        candidate = self._live.pop(trial_id, None)
        if candidate is None or error:
            return
        loss = self._loss(trial_id, result)
        if loss is not None:
            await self._run_model(self._optimizer.tell, candidate, loss)

    # ----------------------------------------------------------------- state

    #: The optimiser pickles with its parametrization and RNG.
    _STATE_FIELDS = (
        "factory",
        "optimizer_kwargs",
        "optimizer",
        "names",
        "seed_value",
        "constants",
        "points",
        "live",
        "quantized",
    )
