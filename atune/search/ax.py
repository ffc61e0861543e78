"""Bayesian optimisation with Meta's Ax platform (``pip install "atune[ax]"``).

Builds on Ax 1.x's supported API, :class:`ax.api.Client` (``configure_experiment``,
``configure_optimization``, ``get_next_trials``, ``complete_trial``, ...). The legacy
``ax.service.ax_client.AxClient`` that Ray Tune's AxSearch wraps is deprecated in
Ax 1.x and is refused with a message naming its replacement.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import FINISHED
from atune.search._domain import LogUniform, Normal, Quantized, Uniform, _q_float_range, _q_value
from atune.search._flat import flatten_point, python_value, split_space, unflatten
from atune.search._library import LibrarySearcher, ignore_warnings, import_library
from atune.search.sample import Categorical, Domain, Float, Integer

__all__ = ["AxSearch"]

logger = logging.getLogger(__name__)

#: Name the objective gets inside Ax when ``metric`` is not a plain identifier (Ax
#: parses objectives as expressions, so ``"val-loss"`` would read as ``val - loss``).
_OBJECTIVE_ALIAS = "atune_objective"
#: A quantized float becomes an ordered choice of its grid values; more is refused.
_MAX_GRID = 10_000
_RANGE_KEYS = {"name", "type", "bounds", "value_type", "log_scale", "digits", "is_fidelity"}
_CHOICE_KEYS = {"name", "type", "values", "value_type", "is_ordered", "sort_values"}
_FIXED_KEYS = {"name", "type", "value", "value_type"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_quieted = False


#: (category, message regex, module regex) of library warnings that only add noise: Ax's
#: own deprecations and pandas 3 deprecations raised inside Ax, and BoTorch's notices
#: that one acquisition optimisation restart failed (it retries by itself).
_IGNORED_WARNINGS = (
    (DeprecationWarning, "", r"ax\."),
    (RuntimeWarning, r"Optimization failed", r"botorch\."),
)


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


#: The Ax logger that announces its SQL storage at INFO when Ax is imported.
_IMPORT_TIME_LOGGER = "ax.storage.sqa_store.with_db_settings_base"


def _import_ax() -> Any:
    """Import ``ax.api``; keep Ax's INFO chatter off stderr unless the user set it up.

    Ax logs through its own non-propagating ``"ax"`` logger, whose stream handler it
    sets to INFO and whose module loggers it sets to INFO explicitly, so raising the
    ``"ax"`` logger's level (``quiet_logger``) has no effect; the handler is raised
    instead, and the one INFO line Ax logs while being imported is filtered out. A user
    who configured the ``"ax"`` logger before the import, or changed Ax's handler level
    afterwards, keeps their setting.
    """
    global _quieted
    first = "ax" not in sys.modules
    ax_root = logging.getLogger("ax")
    user_set = ax_root.level != logging.NOTSET or bool(ax_root.handlers)
    if first and not user_set:
        logging.getLogger(_IMPORT_TIME_LOGGER).addFilter(_BelowWarning())
    api = import_library("ax.api", "AxSearch", "ax", "ax-platform")
    ignore_warnings(*_IGNORED_WARNINGS)
    if not _quieted and not (first and user_set):
        _quieted = True
        from ax.utils.common import logger as ax_logger

        handler = getattr(ax_logger, "ROOT_STREAM_HANDLER", None)
        if handler is not None and handler.level == getattr(
            ax_logger, "DEFAULT_LOG_LEVEL", logging.INFO
        ):
            handler.setLevel(logging.WARNING)
    return api


def _legacy_client(obj: Any) -> bool:
    return any(
        cls.__name__ == "AxClient" and cls.__module__.startswith("ax.service")
        for cls in type(obj).__mro__
    )


def _value_type(values: Sequence[Any]) -> str | None:
    """Ax's ``parameter_type`` for ``values``, or None when Ax cannot hold them as-is."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, float) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "str"
    return None


def _is_unique(values: Sequence[Any]) -> bool:
    return len(set(values)) == len(values)


class _Converted:
    """An atune or native space as Ax parameter configs plus what maps values back."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.constants: dict[str, Any] = {}
        self.choices: dict[str, list[Any]] = {}  # index-encoded categories


def _from_domain(api: Any, out: _Converted, name: str, domain: Any) -> None:
    """Add the atune domain ``domain`` named ``name`` to ``out``."""
    if not isinstance(domain, (Float, Integer, Categorical)):
        assert isinstance(domain, Domain)
        raise ConfigError(
            f"AxSearch does not support parameters of type {type(domain).__name__}: "
            f"{name!r} = {domain!r}; use uniform/loguniform/randint/lograndint/choice "
            "(or their quantized forms)"
        )
    if isinstance(domain, Categorical):
        values = list(domain.categories)
        if len(values) == 1:
            out.constants[name] = copy.deepcopy(values[0])
            return
        kind = _value_type(values)
        if kind is None or not _is_unique(values):
            out.choices[name] = values  # Ax sees the indices 0..n-1
            values, kind = list(range(len(values))), "int"
        out.params.append(api.ChoiceParameterConfig(name, values, kind, is_ordered=False))
        return
    sampler: Any = domain.get_sampler()
    q: Any = None
    if isinstance(sampler, Quantized):
        q = sampler.q
        sampler = sampler.sampler
    if isinstance(sampler, Normal):
        raise ConfigError(
            f"AxSearch cannot search {name!r} = {domain!r}: Ax needs bounded ranges, and a "
            "normal distribution has none; use atune.uniform(lower, upper) around the mean"
        )
    log = isinstance(sampler, LogUniform)
    if not log and not isinstance(sampler, Uniform):
        raise ConfigError(f"AxSearch does not support the sampler of {name!r} = {domain!r}")
    if q is not None and log:
        raise ConfigError(
            f"AxSearch cannot search {name!r} = {domain!r}: Ax does not combine a log scale "
            "with a step size; drop the quantization (qloguniform -> loguniform, "
            "qlograndint -> lograndint) and round in the trainable, or use a linear "
            "quantized domain (quniform/qrandint)"
        )
    scaling = "log" if log else None
    if isinstance(domain, Integer):
        if q is None:
            lower, upper = int(domain.lower), int(domain.upper) - 1  # atune: upper excluded
            step = None
        else:  # quantized integers include the upper bound
            step = int(q) if float(q).is_integer() else None
            if step is None:
                raise ConfigError(
                    f"AxSearch needs an integer step for {name!r} = {domain!r}, got q={q!r}"
                )
            lower = math.ceil(domain.lower / step) * step
            upper = math.floor(domain.upper / step) * step
        if upper <= lower:
            out.constants[name] = int(lower)
            return
        out.params.append(
            api.RangeParameterConfig(name, (lower, upper), "int", step_size=step, scaling=scaling)
        )
        return
    assert domain.lower is not None and domain.upper is not None  # bounded: not Normal
    if q is None:
        out.params.append(
            api.RangeParameterConfig(
                name, (float(domain.lower), float(domain.upper)), "float", scaling=scaling
            )
        )
        return
    ks = _q_float_range(float(domain.lower), float(domain.upper), float(q))
    if ks is None:  # atune's quantized constructors refuse this already
        raise ConfigError(f"{name!r} = {domain!r} holds no multiple of q={q!r}")
    count = ks[1] - ks[0] + 1
    if count > _MAX_GRID:
        raise ConfigError(
            f"AxSearch maps {name!r} = {domain!r} to an ordered choice of its {count} values, "
            f"more than {_MAX_GRID}; use a larger q, or atune.uniform and round in the trainable"
        )
    grid = [_q_value(k, float(q)) for k in range(ks[0], ks[1] + 1)]
    if len(grid) == 1:
        out.constants[name] = grid[0]
        return
    out.params.append(api.ChoiceParameterConfig(name, grid, "float", is_ordered=True))


def _from_native(api: Any, out: _Converted, index: int, param: Any) -> None:
    """Add one entry of a native (list) space: an Ax config or a Ray-style dict."""
    where = f"space[{index}]"
    if isinstance(param, (api.RangeParameterConfig, api.ChoiceParameterConfig)):
        out.params.append(param)
        return
    if not isinstance(param, Mapping):
        raise ConfigTypeError(
            f"AxSearch: `{where}` must be an ax.api RangeParameterConfig / "
            f"ChoiceParameterConfig or a parameter dict, got {param!r}"
        )
    kind, name = param.get("type"), param.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"AxSearch: `{where}` needs a string 'name', got {param!r}")
    kinds = {"range": _RANGE_KEYS, "choice": _CHOICE_KEYS, "fixed": _FIXED_KEYS}
    allowed = kinds.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise ConfigError(
            f"AxSearch: `{where}` ({name!r}) has type {kind!r}; use 'range', 'choice' or 'fixed'"
        )
    unknown = sorted(set(param) - allowed)
    if unknown:
        raise ConfigError(
            f"AxSearch: `{where}` ({name!r}) has keys {unknown} that a {kind} parameter "
            f"does not take (allowed: {sorted(allowed)})"
        )
    value_type = param.get("value_type")
    if kind == "fixed":
        if "value" not in param:
            raise ConfigError(f"AxSearch: `{where}` ({name!r}) is 'fixed' but has no 'value'")
        out.constants[name] = copy.deepcopy(param["value"])
    elif kind == "range":
        bounds = param.get("bounds")
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise ConfigError(
                f"AxSearch: `{where}` ({name!r}) needs 'bounds' [lower, upper], got {bounds!r}"
            )
        if value_type is None:
            value_type = "int" if _value_type(list(bounds)) == "int" else "float"
        scaling = "log" if param.get("log_scale") else None
        out.params.append(
            api.RangeParameterConfig(name, tuple(bounds), value_type, scaling=scaling)
        )
    else:
        values = param.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(
                f"AxSearch: `{where}` ({name!r}) needs a non-empty list 'values', got {values!r}"
            )
        value_type = value_type or _value_type(list(values))
        if value_type is None:
            raise ConfigError(
                f"AxSearch: `{where}` ({name!r}) mixes value types {values!r}; Ax choices hold "
                "one of int, float, str or bool (an atune.choice in a dict space holds any "
                "values)"
            )
        out.params.append(
            api.ChoiceParameterConfig(
                name, list(values), value_type, is_ordered=param.get("is_ordered")
            )
        )


def _check_strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigTypeError(
            f"AxSearch: `{name}` must be a list of strings such as "
            f"{'x1 + x2 <= 1' if name == 'parameter_constraints' else 'acc >= 0.9'!r}, "
            f"got {value!r}"
        )
    if not all(isinstance(v, str) for v in value):
        raise ConfigTypeError(f"AxSearch: every entry of `{name}` must be a string, got {value!r}")
    return list(value)


class AxSearch(LibrarySearcher):
    """Bayesian optimisation (a GP fitted by BoTorch) via Meta's Ax, on ``ax.api.Client``.

    Ax starts with a few quasi-random (Sobol) trials, the centre of the space first,
    then fits a Gaussian process to the results and proposes each next config by
    optimising an acquisition function. While Ax waits for the results of its Sobol
    trials it cannot propose more, and :meth:`suggest` answers None ("not now").

    atune domains are converted (``uniform`` → float range, ``loguniform`` → float
    range on a log scale, ``randint(lo, hi)`` → int range ``[lo, hi - 1]``,
    ``lograndint`` → int range on a log scale, ``choice`` → choice parameter,
    ``quniform``/``qrandint`` → the grid of their values); nested dicts become
    parameters named ``"a/b"``; other values are constants copied into every config.

    Args:
        space: The search space: a dict of atune domains (nested dicts allowed), or
            Ax's native form, a list of ``ax.api.RangeParameterConfig`` /
            ``ChoiceParameterConfig`` or of Ray-style parameter dicts
            (``{"name": "x", "type": "range", "bounds": [0, 1]}``, ``"choice"`` with
            ``"values"``, ``"fixed"`` with ``"value"``). None: take the Tuner's
            ``param_space``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: Configs to run first; each is attached to the Ax
            experiment as a trial and must set every searched parameter.
        parameter_constraints: Ax parameter constraints, e.g. ``["x1 + x2 <= 1.5"]``
            (linear, on range parameters; names must be plain identifiers).
        outcome_constraints: Ax outcome constraints on other reported metrics, e.g.
            ``["accuracy >= 0.9"]``; each metric named is read from the trial's final
            result.
        ax_client: A configured ``ax.api.Client`` (``configure_experiment`` called;
            ``configure_optimization`` too, or ``metric`` and ``mode`` given here).
            Then ``space``, the constraints and ``ax_kwargs`` must be None. The
            deprecated ``ax.service.ax_client.AxClient`` is refused.
        seed: atune extension: Ax's random seed (the Sobol points and the model's
            random restarts), so that the suggestions reproduce. None: unseeded.
        **ax_kwargs: Passed on to Ax: ``storage_config`` to ``ax.api.Client``;
            ``method``, ``initialization_budget``, ``initialize_with_center``,
            ``min_observed_initialization_trials``, ``torch_device`` (and the other
            arguments of ``Client.configure_generation_strategy``) to that method;
            ``random_seed`` is another name for ``seed``.

    Example:
        >>> searcher = AxSearch(metric="loss", mode="min", seed=0)
        >>> tuner = atune.Tuner(  # doctest: +SKIP
        ...     objective,
        ...     param_space={"x": atune.uniform(-5, 5), "lr": atune.loguniform(1e-4, 1e-1)},
        ...     tune_config=atune.TuneConfig(search_alg=searcher, num_samples=30),
        ... )
    """

    _STATE_FIELDS = (
        "snapshot",
        "params",
        "parameter_constraints",
        "outcome_constraints",
        "gs_kwargs",
        "configured",
        "seed",
        "constants",
        "choices",
        "raw_points",
        "points",
        "live",
        "metric_names",
    )

    def __init__(
        self,
        space: dict[str, Any] | list[Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        parameter_constraints: list[str] | None = None,
        outcome_constraints: list[str] | None = None,
        ax_client: Any = None,
        *,
        seed: int | None = None,
        **ax_kwargs: Any,
    ) -> None:
        api = _import_ax()
        super().__init__(metric, mode)
        self._seed = self._check_seed(seed)
        self._raw_points = self._check_points(points_to_evaluate)
        self._parameter_constraints = _check_strings(parameter_constraints, "parameter_constraints")
        self._outcome_constraints = _check_strings(outcome_constraints, "outcome_constraints")
        self._client_kwargs, self._gs_kwargs = self._split_ax_kwargs(api, ax_kwargs)
        self._client: Any = None
        self._sync = threading.Lock()  # the client is used from worker threads
        self._snapshot: str | None = None
        self._params: list[Any] = []
        self._configured = False  # the optimization config is set
        self._constants: dict[str, Any] = {}
        self._choices: dict[str, list[Any]] = {}
        self._points: list[dict[str, Any]] = []
        self._live: dict[str, int] = {}
        self._metric_names: dict[str, str] = {}  # Ax metric name -> result key
        if ax_client is not None:
            self._adopt_client(api, ax_client, space, ax_kwargs)
        elif space is not None:
            if not space:
                raise ConfigError("AxSearch: `space` is empty; pass parameters or None")
            self._set_space(api, space, "space")

    # ----------------------------------------------------------------- arguments

    def _split_ax_kwargs(
        self, api: Any, ax_kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        import inspect

        client_keys = set(inspect.signature(api.Client.__init__).parameters) - {"self"}
        gs_keys = set(inspect.signature(api.Client.configure_generation_strategy).parameters)
        gs_keys.discard("self")
        client_kwargs: dict[str, Any] = {}
        gs_kwargs: dict[str, Any] = {}
        for key, value in ax_kwargs.items():
            if key == "random_seed":
                seed = self._check_seed(value, "random_seed")
                if self._seed is not None and seed != self._seed:
                    raise ConfigError(
                        f"AxSearch got seed={self._seed!r} and random_seed={seed!r}; pass one"
                    )
                self._seed = seed
            elif key in client_keys:
                client_kwargs[key] = value
            elif key in gs_keys:
                gs_kwargs[key] = value
            else:
                raise ConfigError(
                    f"AxSearch got the unknown Ax argument `{key}`; Ax 1.x's ax.api.Client "
                    f"takes {sorted(client_keys)} and configure_generation_strategy takes "
                    f"{sorted(gs_keys)} (options of the deprecated AxClient such as "
                    "enforce_sequential_optimization are gone; use ConcurrencyLimiter or "
                    "max_concurrent_trials to bound parallelism)"
                )
        return client_kwargs, gs_kwargs

    def _adopt_client(self, api: Any, client: Any, space: Any, ax_kwargs: dict[str, Any]) -> None:
        if _legacy_client(client):
            raise ConfigError(
                "AxSearch builds on Ax 1.x's ax.api.Client; `ax_client` is the legacy "
                "ax.service.ax_client.AxClient, deprecated in Ax 1.x. Build the experiment "
                "with `client = ax.api.Client()`, `client.configure_experiment(parameters=[...])`"
                " and `client.configure_optimization('-loss')`, and pass that client (or let "
                "AxSearch build one: pass `space`, `metric` and `mode`)"
            )
        if not isinstance(client, api.Client):
            raise ConfigTypeError(
                f"AxSearch: `ax_client` must be an ax.api.Client, got {type(client).__name__}"
            )
        given = [
            name
            for name, value in (
                ("space", space),
                ("parameter_constraints", self._parameter_constraints),
                ("outcome_constraints", self._outcome_constraints),
                ("ax_kwargs", ax_kwargs),
            )
            if value
        ]
        if given:
            raise ConfigError(
                f"AxSearch was given `ax_client`, which holds the experiment; do not pass "
                f"{given} too (configure them on the client)"
            )
        experiment = getattr(client, "_maybe_experiment", None)
        if experiment is None:
            raise ConfigError(
                "AxSearch: `ax_client` has no experiment; call "
                "client.configure_experiment(parameters=[...]) first"
            )
        if self._seed is None:
            self._seed = getattr(client, "_random_seed", None)
        self._client = client
        self._params = []
        self._encode_points()
        config = experiment.optimization_config
        if config is not None:
            objective = config.objective
            if not objective.is_single_objective or len(objective.metric_names) != 1:
                raise ConfigError(
                    f"AxSearch optimises one metric, but `ax_client`'s objective is "
                    f"{objective!r}; configure a single objective such as '-loss'"
                )
            name = objective.metric_names[0]
            mode = "min" if objective.minimize else "max"
            if (self._metric, self._mode) not in ((None, None), (name, mode)):
                raise ConfigError(
                    f"AxSearch: `ax_client` optimises {name!r} ({mode}), but metric="
                    f"{self._metric!r}, mode={self._mode!r} were given; pass neither"
                )
            self._metric, self._mode = name, mode
            self._metric_names = {m: m for m in config.metric_names}
            self._configured = True

    def _set_space(self, api: Any, space: Any, where: str) -> None:
        out = _Converted()
        if isinstance(space, (list, tuple)):
            for i, param in enumerate(space):
                _from_native(api, out, i, param)
        elif isinstance(space, dict):
            params, constants = split_space(space, where, native=(), searcher="AxSearch")
            for name, domain in params.items():
                _from_domain(api, out, name, domain)
            out.constants.update(constants)
        else:
            raise ConfigTypeError(
                f"AxSearch: `{where}` must be a dict of atune domains or a list of Ax "
                f"parameters, got {type(space).__name__}"
            )
        if not out.params:
            raise ConfigError(f"AxSearch needs at least one parameter to search in `{where}`")
        client = api.Client(**self._client_kwargs)
        try:
            client.configure_experiment(
                parameters=out.params, parameter_constraints=self._parameter_constraints or None
            )
        except (ValueError, TypeError, AssertionError, _ax_error()) as exc:
            what = "`parameter_constraints`" if self._parameter_constraints else f"`{where}`"
            raise ConfigError(f"AxSearch: Ax refused {what}: {exc}") from exc
        self._client, self._params = client, out.params
        self._constants, self._choices = out.constants, out.choices
        self._encode_points()

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless a space or client was given) space."""
        self._fill_metric_mode(metric, mode)
        if self._client is None:
            if config:
                self._set_space(_import_ax(), config, "param_space")
            return True
        params, constants = split_space(config or {}, "param_space", native=())
        self._reject_second_space(params)
        self._constants = {**constants, **self._constants}
        return True

    # ----------------------------------------------------------------- setup

    def _configure(self) -> None:
        """Set the objective (and outcome constraints) once metric and mode are known."""
        if self._configured:
            return
        from ax.api.utils.instantiation.from_string import optimization_config_from_string

        metric = str(self._metric)
        name = metric
        try:  # Ax reads objectives as sympy expressions: "val-loss", "1st", "E" fail
            ok = optimization_config_from_string(metric).objective.metric_names == [metric]
        except Exception:
            ok = False
        if not ok or not _IDENTIFIER.match(metric):
            name = _OBJECTIVE_ALIAS
        objective = f"-{name}" if self._mode == "min" else name
        constraints = self._outcome_constraints or None
        try:
            parsed = optimization_config_from_string(objective, constraints)
            self._client.configure_optimization(objective, outcome_constraints=constraints)
        except Exception as exc:
            raise ConfigError(
                f"AxSearch: Ax refused the objective {metric!r} or the `outcome_constraints` "
                f"{self._outcome_constraints}: {exc}"
            ) from exc
        self._metric_names = {m: m for m in parsed.metric_names}
        self._metric_names[name] = metric
        if self._gs_kwargs:
            try:
                self._client.configure_generation_strategy(**self._gs_kwargs)
            except Exception as exc:
                raise ConfigError(
                    f"AxSearch: Ax refused the generation strategy arguments "
                    f"{self._gs_kwargs}: {exc}"
                ) from exc
        self._configured = True

    def _encode_points(self) -> None:
        """``points_to_evaluate`` as flat Ax parameterizations (choices as indices)."""
        names = {p.name for p in self._params}
        if not names:  # a user client: its experiment knows the parameters
            names = set(self._client._experiment.parameters)
        for i, point in enumerate(self._raw_points):
            where = f"points_to_evaluate[{i}]"
            flat = flatten_point(point, names | set(self._constants), where=where)
            flat = {k: v for k, v in flat.items() if k in names}
            for name, categories in self._choices.items():
                if name in flat:
                    matches = [j for j, c in enumerate(categories) if c == flat[name]]
                    if not matches:
                        raise ConfigError(
                            f"`{where}` sets {name!r} to {flat[name]!r}, which is not one of "
                            f"its choices {categories!r}"
                        )
                    flat[name] = matches[0]
            self._points.append(flat)
        self._raw_points = []

    # ----------------------------------------------------------------- protocol

    def _next(self) -> dict[int, Any] | str | None:
        """Attach the next point or ask Ax for a trial (runs in a worker thread)."""
        from ax.exceptions.core import DataRequiredError, OptimizationComplete
        from ax.exceptions.generation_strategy import MaxParallelismReachedException
        from ax.utils.common.random import with_rng_seed

        with self._sync:
            self._configure()
            if self._points:
                point = self._points[0]
                try:
                    # Ax would attach a point outside the space as out-of-design data.
                    self._client._experiment.search_space.validate_membership(point)
                    index = self._client.attach_trial(parameters=point)
                except Exception as exc:
                    raise ConfigError(
                        f"`points_to_evaluate` entry {point} does not fit the search space: {exc}"
                    ) from exc
                self._points.pop(0)
                return {index: point}
            try:
                with with_rng_seed(self._seed):
                    return self._client.get_next_trials(max_trials=1) or None
            except (DataRequiredError, MaxParallelismReachedException):
                return None  # Ax waits for results before it proposes more
            except OptimizationComplete as exc:
                logger.info("AxSearch: Ax ended the search: %s", exc)
                return FINISHED

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config (``points_to_evaluate`` first); None while Ax waits for data."""
        self._require_ready(self._client is not None)
        trials = await self._run_model(self._next)
        if trials is None or trials == FINISHED:
            return trials  # type: ignore[return-value]
        assert isinstance(trials, dict)
        ((index, params),) = trials.items()
        self._live[trial_id] = index
        return self._config(params)

    def _config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        flat = {name: python_value(value) for name, value in params.items()}
        for name, categories in self._choices.items():
            if name in flat:
                flat[name] = copy.deepcopy(categories[int(flat[name])])
        return unflatten({**copy.deepcopy(self._constants), **flat})

    def _tell(self, index: int, data: dict[str, float] | None, reason: str) -> None:
        with self._sync:
            if data is None:
                self._client.mark_trial_failed(index, failed_reason=reason)
            else:
                self._client.complete_trial(index, raw_data=data)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Complete the Ax trial with the final ``metric``; mark it failed on an error.

        A trial that errored or reported no finite ``metric`` is marked FAILED in Ax
        (so Ax may propose its point again); metrics named in ``outcome_constraints``
        are attached when the result holds them as finite numbers.
        """
        index = self._live.pop(trial_id, None)
        if index is None:
            return  # not one of ours
        value = None if error else self._objective(trial_id, result)
        data: dict[str, float] | None = None
        if value is not None:
            data = {}
            for ax_name, key in self._metric_names.items():
                extra = value if key == self._metric else (result or {}).get(key)
                if isinstance(extra, (int, float)) and math.isfinite(extra):
                    data[ax_name] = float(extra)
        reason = "the trial errored" if error else f"no finite {self._metric!r} was reported"
        await self._run_model(self._tell, index, data, reason)

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """The Ax experiment and generation strategy as JSON, plus atune's bookkeeping.

        The live client is replaced by one read back from the same JSON, so that this
        searcher and one restored from the state continue identically (a fitted GP is
        not part of Ax's JSON, and Ax warm-starts the next fit from it).
        """
        with self._sync:
            if self._client is not None:
                self._snapshot = self._dump(self._client)
                self._client = self._load(self._snapshot)
            state = super().get_state()
            self._snapshot = None
        return state

    async def _snapshot_between_model_calls(self) -> dict[str, Any]:
        # Writing and reading back Ax's JSON takes ~0.1 s: do it off the event loop.
        return await anyio.to_thread.run_sync(self.get_state)

    def _after_restore(self) -> None:
        self._client = self._load(self._snapshot) if self._snapshot is not None else None
        if self._client is None and self._params:
            self._client = _import_ax().Client(**self._client_kwargs)
            self._client.configure_experiment(
                parameters=self._params,
                parameter_constraints=self._parameter_constraints or None,
            )
        self._snapshot = None

    @staticmethod
    def _dump(client: Any) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ax_client.json")
            client.save_to_json_file(path)
            with open(path) as f:
                return f.read()

    def _load(self, snapshot: str) -> Any:
        api = _import_ax()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ax_client.json")
            with open(path, "w") as f:
                f.write(snapshot)
            return api.Client.load_from_json_file(
                path, storage_config=self._client_kwargs.get("storage_config")
            )


def _ax_error() -> type[Exception]:
    from ax.exceptions.core import AxError

    return AxError
