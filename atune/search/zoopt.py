"""Derivative-free search with ZOOpt's (A)SRacos (``pip install "atune[zoopt]"``).

`ZOOpt <https://github.com/polixir/ZOOpt>`__ implements Racos, a classification-based
zeroth-order optimiser: it samples a few configs, learns a region around the best ones
and samples inside it. :class:`ZOOptSearch` drives ``SRacosTune``, the asynchronous
sequential variant ZOOpt ships for tuning services (Ray Tune's ``"asracos"``).

Two ZOOpt habits are contained here: it draws from the global ``np.random`` state and
keeps the float precisions of the last built space in a module global. Each
:class:`ZOOptSearch` keeps its own random state and precisions and swaps them in only
around its calls into ZOOpt, so the user's ``np.random`` state is left as it was,
searchers do not disturb each other, and a restored searcher continues exactly.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from atune._metric import metric_number
from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import FINISHED
from atune.search._domain import _q_snap, _q_value
from atune.search._flat import describe, flatten_point, python_value, split_space, unflatten
from atune.search._library import LibrarySearcher, import_library, own_global_rng
from atune.search.sample import Domain, _category_index, _fresh

__all__ = ["ZOOptSearch"]

logger = logging.getLogger(__name__)

#: Accepted values of ``algo`` (both run ZOOpt's ``SRacosTune``, as in Ray Tune).
ALGOS = ("asracos", "sracos")
#: Extra keyword arguments handed to ``zoopt.Parameter``.
PARAMETER_KWARGS = ("exploration_rate", "uncertain_bits")
#: ``float_precision`` of converted continuous dimensions (values keep 12 decimals; Ray's).
PRECISION = 1e-12
# zoopt.ValueType is a plain class of int constants, not an Enum.
_DISCRETE, _CONTINUOUS, _GRID = 0, 1, 2
_TYPE_NAMES = {_DISCRETE: "DISCRETE", _CONTINUOUS: "CONTINUOUS", _GRID: "GRID"}


def _import_zoopt() -> Any:
    return import_library("zoopt", "ZOOptSearch", "zoopt")


def _no_isolation(x: Any) -> int:
    """Stands in for ``zoopt.Parameter``'s default isolation lambda, which cannot pickle."""
    return 0


def _is_real(value: Any) -> bool:
    return metric_number(value) is not None


@dataclass(frozen=True)
class _Dim:
    """One searched parameter: its ZOOpt dimension and the map between both sides.

    ``kind`` is ``"float"`` (uniform), ``"log"`` (searched as the natural log of the
    value), ``"int"`` (a DISCRETE range), ``"q"`` (a DISCRETE range of multipliers k
    of ``q``), ``"grid"`` (a GRID over category indices) or ``"native"`` (a ZOOpt
    CONTINUOUS/DISCRETE dimension used as given).
    """

    kind: str
    dim: tuple[Any, ...]
    domain: Domain | None = None
    lower: Any = None
    upper: Any = None
    q: Any = None
    integer: bool = False
    categories: tuple[Any, ...] = ()

    def value(self, x: Any) -> Any:
        """ZOOpt's coordinate ``x`` as the config value."""
        x = python_value(x)
        if self.kind == "grid":
            return _fresh(self.categories[int(x)])
        if self.kind == "int":
            return int(x)
        if self.kind == "q":
            return int(x) * self.q if self.integer else _q_value(int(x), self.q)
        if self.kind == "native":
            if self.dim[0] == _DISCRETE:
                return int(x)
            return float(min(max(x, self.lower), self.upper))
        if self.kind == "log":
            v = math.exp(x)
            if self.q is not None:
                return _q_snap(v, self.lower, self.upper, self.q, self.integer)
            if self.integer:
                return int(min(max(math.floor(v + 1e-9), self.lower), self.upper - 1))
            return float(min(max(v, self.lower), self.upper))
        return float(min(max(x, self.lower), self.upper))  # "float"

    def internal(self, value: Any) -> Any:
        """A config value (of ``points_to_evaluate``) as ZOOpt's coordinate."""
        if self.kind == "grid":
            return _category_index(self.categories, value)
        if self.kind == "log":
            return math.log(value)
        if self.kind == "q":
            return round(value / self.q)
        if self.kind == "int" or (self.kind == "native" and self.dim[0] == _DISCRETE):
            return int(value)
        return float(value)

    def is_valid(self, value: Any) -> bool:
        if self.domain is not None:
            return self.domain.is_valid(value)
        if self.kind == "grid":
            return _category_index(self.categories, value) is not None
        if not _is_real(value):
            return False
        if self.dim[0] == _DISCRETE and not float(value).is_integer():
            return False
        return self.lower <= value <= self.upper


# --------------------------------------------------------------------------- conversion


def _convert_domain(path: str, domain: Any) -> _Dim:
    """One atune domain as a ZOOpt dimension, or a ConfigError naming ``path``."""
    spec = describe(domain, path, "ZOOptSearch")
    if spec.kind == "categorical":
        categories = spec.categories
        return _Dim("grid", (_GRID, list(range(len(categories)))), domain, categories=categories)
    if spec.kind == "normal" or spec.lower is None or spec.upper is None:
        raise ConfigError(
            f"ZOOptSearch needs a bounded range for {path!r}, got {domain!r}: ZOOpt "
            "searches boxes. Use atune.uniform(lower, upper) (e.g. mean +- 3 sd) instead"
        )
    lo, hi, q = spec.lower, spec.upper, spec.q
    integer = spec.kind == "int"
    k_range = spec.q_range if q is not None else None
    if q is not None and k_range is None:
        raise ConfigError(f"{path!r} = {domain!r} holds no multiple of q={q!r}")
    if spec.log:
        region = [math.log(lo), math.log(max(spec.inclusive_upper, lo))]
        return _Dim("log", (_CONTINUOUS, region, PRECISION), domain, lo, hi, q, integer)
    if k_range is not None:
        k_lo, k_hi = int(k_range[0]), int(k_range[1])
        return _Dim("q", (_DISCRETE, [k_lo, k_hi], True), domain, lo, hi, q, integer)
    if integer:
        dim = (_DISCRETE, [lo, spec.inclusive_upper], True)
        return _Dim("int", dim, domain, lo, hi, None, True)
    return _Dim("float", (_CONTINUOUS, [float(lo), float(hi)], PRECISION), domain, lo, hi)


def _looks_native(value: Any) -> bool:
    """A ZOOpt dimension tuple: ``(ValueType.X, ...)`` (ValueType members are ints)."""
    return (
        isinstance(value, tuple)
        and len(value) >= 1
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and value[0] in _TYPE_NAMES
    )


def _convert_native(path: str, value: tuple[Any, ...]) -> _Dim:
    """A ZOOpt ``dim_dict`` entry, checked; GRID values are searched by index."""
    kind = value[0]
    where = f"`dim_dict[{path!r}]`"
    if kind == _GRID:
        if len(value) != 2 or not isinstance(value[1], (list, tuple)) or not value[1]:
            raise ConfigError(
                f"{where} must be (ValueType.GRID, [value, ...]) with at least one value, "
                f"got {value!r}"
            )
        categories = tuple(value[1])
        return _Dim("grid", (_GRID, list(range(len(categories)))), categories=categories)
    name = _TYPE_NAMES[kind]
    third = "float_precision" if kind == _CONTINUOUS else "has_order"
    usage = f"(ValueType.{name}, [lower, upper], {third})"
    if len(value) not in (2, 3) or (kind == _CONTINUOUS and len(value) != 3):
        raise ConfigError(f"{where} must be {usage}, got {value!r}")
    region = value[1]
    if (
        not isinstance(region, (list, tuple))
        or len(region) != 2
        or not all(_is_real(v) and math.isfinite(v) for v in region)
        or region[0] > region[1]
    ):
        raise ConfigError(
            f"{where} needs a region [lower, upper] of two finite numbers with lower <= upper, "
            f"got {region!r}; write it as {usage}"
        )
    lo, hi = python_value(region[0]), python_value(region[1])
    if kind == _CONTINUOUS:
        precision = value[2]
        if not _is_real(precision) or not precision > 0:
            raise ConfigError(
                f"{where} needs a float_precision > 0 (e.g. 1e-6: values keep 6 decimals), "
                f"got {precision!r}"
            )
        return _Dim("native", (_CONTINUOUS, [lo, hi], precision), lower=lo, upper=hi)
    if not all(float(v).is_integer() for v in (lo, hi)):
        raise ConfigError(f"{where} is DISCRETE and needs integer bounds, got {region!r}")
    has_order = value[2] if len(value) == 3 else False
    if not isinstance(has_order, bool):
        raise ConfigTypeError(f"{where} needs has_order True or False, got {has_order!r}")
    return _Dim("native", (_DISCRETE, [int(lo), int(hi)], has_order), lower=lo, upper=hi)


# --------------------------------------------------------------------------- searcher


class ZOOptSearch(LibrarySearcher):
    """ZOOpt's ASRacos: classification-based derivative-free search.

    The space comes from the Tuner's ``param_space`` or from ``dim_dict``, and holds
    atune domains (``uniform`` → CONTINUOUS; ``loguniform`` → CONTINUOUS over the log of
    the value; ``randint`` → DISCRETE; ``quniform``/``qrandint`` → DISCRETE over the
    multiples of ``q``; ``choice`` → GRID) or, in ``dim_dict``, ZOOpt's own dimensions
    ``(ValueType.CONTINUOUS, [lo, hi], precision)``, ``(ValueType.DISCRETE, [lo, hi],
    has_order)`` and ``(ValueType.GRID, [values])``. Nested dicts become parameters
    named ``"a/b"``; other values are constants copied into every config.

    ZOOpt first runs a few initial configs (4 for a budget up to 50, 6 up to 100, then
    12 and 22; ``points_to_evaluate`` first among them), waits until all of them are
    done, then samples from its learnt region, with at most ``parallel_num`` trials
    outstanding: :meth:`suggest` answers None ("not now") while it waits. Errored
    trials and results without a finite ``metric`` are told to ZOOpt as the worst
    possible value (``+inf``), so the search goes on and avoids that region.

    Args:
        algo: ``"asracos"`` (default) or ``"sracos"``; both run ZOOpt's ``SRacosTune``.
        budget: The number of configs to suggest; :meth:`suggest` returns ``FINISHED``
            afterwards. None: ``TuneConfig(num_samples=...)``.
        dim_dict: The search space, as ZOOpt dimensions and/or atune domains. None:
            the Tuner's ``param_space``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"`` (ZOOpt minimises; ``"max"`` negates).
        points_to_evaluate: Configs to run first (each must set every parameter); they
            are part of ZOOpt's initial sample.
        parallel_num: How many suggested trials may be unfinished at once (>= 1).
        seed: atune extension: seed of this searcher's private ``np.random`` state.
            None draws one from the global ``np.random`` state, so
            ``np.random.seed(...)`` at the top of a script makes the search repeatable.
        **kwargs: Passed to ``zoopt.Parameter``: ``exploration_rate`` (chance of a
            uniformly random config after the initial phase, default 0.01) and
            ``uncertain_bits`` (how many coordinates each new sample changes).

    Example:
        >>> searcher = ZOOptSearch(metric="loss", mode="min", parallel_num=4, seed=0)
        >>> tuner = atune.Tuner(  # doctest: +SKIP
        ...     objective,
        ...     param_space={"x": atune.uniform(-5, 5), "n": atune.randint(1, 10)},
        ...     tune_config=atune.TuneConfig(search_alg=searcher, num_samples=40),
        ... )
    """

    _SPACE_ARG = "dim_dict"
    _STATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "algo",
        "budget",
        "parallel_num",
        "parameter_kwargs",
        "own_space",
        "dims",
        "constants",
        "raw_points",
        "points",
        "points_given",
        "optimizer",
        "precisions",
        "rng_state",
        "live",
        "suggested",
        "finished",
    )

    def __init__(
        self,
        algo: str = "asracos",
        budget: int | None = None,
        dim_dict: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        parallel_num: int = 1,
        *,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        _import_zoopt()
        super().__init__(metric, mode)
        if not isinstance(algo, str) or algo.lower() not in ALGOS:
            raise ConfigError(
                f"ZOOptSearch: `algo` must be one of {list(ALGOS)} (both run ZOOpt's "
                f"SRacosTune), got {algo!r}"
            )
        self._algo = algo.lower()
        self._budget = None if budget is None else self._check_int(budget, "budget", 1)
        self._parallel_num = self._check_int(parallel_num, "parallel_num", 1)
        seed = self._check_seed(seed)
        self._parameter_kwargs = self._check_parameter_kwargs(kwargs)
        self._raw_points = self._check_points(points_to_evaluate)
        if seed is None:  # from the global state: np.random.seed(...) makes runs repeatable
            seed = int(np.random.randint(0, 2**31 - 1))
        self._rng_state: Any = np.random.RandomState(seed).get_state()
        self._own_space = False
        self._dims: dict[str, _Dim] = {}
        self._constants: dict[str, Any] = {}
        self._points: list[tuple[dict[str, Any], list[Any]]] = []  # (flat values, zoopt x)
        self._points_given = 0
        self._optimizer: Any = None
        self._precisions: list[Any] = []
        self._live: dict[str, Any] = {}  # trial id -> zoopt Solution
        self._suggested = 0
        self._finished = False
        if dim_dict is not None:
            if not isinstance(dim_dict, dict):
                raise ConfigTypeError(
                    "ZOOptSearch: `dim_dict` must be a dict of parameter name -> ZOOpt "
                    f"dimension or atune domain, got {dim_dict!r}"
                )
            if dim_dict:
                # Ray Tune's dim_dict names nested parameters "a/b": nest them.
                self._set_space(unflatten(copy.deepcopy(dim_dict)), "dim_dict")
                self._own_space = True

    # ----------------------------------------------------------------- arguments

    def _check_parameter_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(kwargs) - set(PARAMETER_KWARGS))
        if unknown:
            raise ConfigError(
                f"ZOOptSearch got unknown arguments {unknown}: extra keyword arguments go to "
                f"zoopt.Parameter, which takes here only {list(PARAMETER_KWARGS)} (budget, "
                "parallel_num and seed are ZOOptSearch arguments)"
            )
        rate = kwargs.get("exploration_rate")
        if rate is not None and not (_is_real(rate) and 0 <= rate <= 1):
            raise ConfigError(
                f"ZOOptSearch: `exploration_rate` must be a number in [0, 1], got {rate!r}"
            )
        if kwargs.get("uncertain_bits") is not None:
            self._check_int(kwargs["uncertain_bits"], "uncertain_bits", 1)
        return {k: v for k, v in kwargs.items() if v is not None}

    # ----------------------------------------------------------------- setup

    def _set_space(self, space: dict[str, Any], where: str) -> None:
        params, constants = split_space(space, where, native=(), searcher="ZOOptSearch")
        if where == "dim_dict":  # ZOOpt's own tuples are no constants there
            params.update({k: v for k, v in constants.items() if _looks_native(v)})
            constants = {k: v for k, v in constants.items() if k not in params}
        if not params:
            raise ConfigError(f"ZOOptSearch needs at least one parameter to search in `{where}`")
        dims = {
            path: _convert_native(path, value)
            if isinstance(value, tuple)
            else _convert_domain(path, value)
            for path, value in params.items()
        }
        self._points = [
            self._resolve_point(i, point, dims, constants)
            for i, point in enumerate(self._raw_points)
        ]
        self._dims, self._constants = dims, constants

    @staticmethod
    def _resolve_point(
        i: int, point: dict[str, Any], dims: dict[str, _Dim], constants: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        where = f"points_to_evaluate[{i}]"
        flat = flatten_point(point, set(dims) | set(constants), where=where)
        missing = sorted(set(dims) - set(flat))
        if missing:
            raise ConfigError(
                f"`{where}` must set every searched parameter; it lacks {missing} "
                "(ZOOpt needs complete configs)"
            )
        for name, dim in dims.items():
            if not dim.is_valid(flat[name]):
                raise ConfigError(
                    f"`{where}` sets {name!r} to {flat[name]!r}, which lies outside its "
                    f"search space {dim.domain if dim.domain is not None else dim.dim!r}"
                )
        values = {name: flat[name] for name in dims}
        return values, [dim.internal(values[name]) for name, dim in dims.items()]

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode, ``num_samples`` and (without dim_dict) space."""
        self._fill_metric_mode(metric, mode)
        num_samples = spec.get("num_samples")
        if isinstance(num_samples, int) and num_samples > 0:
            if self._budget is None:
                self._budget = num_samples
            elif num_samples != self._budget:
                logger.warning(
                    "ZOOptSearch: budget=%d differs from num_samples=%d; the search stops "
                    "after the smaller of both",
                    self._budget,
                    num_samples,
                )
        if self._own_space or self._optimizer is not None:
            self._merge_tuner_constants(config)
            return True
        self._set_space(config or {}, "param_space")
        return True

    def _check_ready(self) -> None:
        self._require_ready(bool(self._dims))
        if self._budget is None:
            raise ConfigError(
                "ZOOptSearch needs a `budget` (the number of trials): pass budget=N to "
                "ZOOptSearch or set TuneConfig(num_samples=N)"
            )

    @contextmanager
    def _zoopt_globals(self) -> Iterator[Any]:
        """Swap this searcher's random state and precisions into ZOOpt's globals."""
        from zoopt.utils.zoo_global import gl

        with own_global_rng(self):
            user_precisions = gl.float_precisions
            gl.float_precisions = list(self._precisions)
            try:
                yield gl
            finally:
                gl.float_precisions = user_precisions

    def _build(self) -> None:
        zoopt = _import_zoopt()
        from zoopt.algos.opt_algorithms.racos.sracos import SRacosTune

        assert self._budget is not None
        init = [zoopt.Solution(x=list(x)) for _, x in self._points]
        # ZOOpt's Parameter exits the process for a budget below 3; the budget itself is
        # counted here, Parameter only derives the sizes of the initial sample from it.
        parameter = zoopt.Parameter(
            budget=max(self._budget, 3), init_samples=init or None, **self._parameter_kwargs
        )
        parameter.set_isolationFunc(_no_isolation)
        if len(init) > parameter.get_train_size():  # run every point in the initial phase
            parameter.set_train_size(len(init))
        with self._zoopt_globals() as gl:
            dimension = zoopt.Dimension2([dim.dim for dim in self._dims.values()])
            self._precisions = list(gl.float_precisions)
            self._optimizer = SRacosTune(
                dimension=dimension, parameter=parameter, parallel_num=self._parallel_num
            )

    # ----------------------------------------------------------------- protocol

    def _ask(self) -> Any:
        """The optimiser's next Solution, None ("not now") or FINISHED (worker thread)."""
        optimizer = self._optimizer
        with self._zoopt_globals():
            live = optimizer.live_num
            solution = optimizer.suggest()
            train_size = optimizer._parameter.get_train_size()
            # SRacosTune closes its initial phase one call late: when every initial trial
            # has completed already, nothing would ever reopen it.
            if (
                solution is None
                and optimizer.semaphore == 0
                and optimizer.complete_num >= train_size
            ):
                optimizer.semaphore = 1
                live = optimizer.live_num
                solution = optimizer.suggest()
        if solution is None and optimizer.live_num > live:
            # ZOOpt found the space fully enumerated but counted a trial anyway.
            optimizer.live_num = live
            return FINISHED
        return solution

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config; None while ZOOpt waits for results; FINISHED after ``budget``."""
        self._check_ready()
        assert self._budget is not None
        if self._finished or self._suggested >= self._budget:
            self._finished = True
            return FINISHED
        if len(self._live) >= self._parallel_num:
            return None
        if self._optimizer is None:
            self._build()
        solution = await self._run_model(self._ask)
        if isinstance(solution, str):  # zoopt's "FINISHED": no distinct config is left
            logger.info("ZOOptSearch: ZOOpt found no new config to try; the search is done")
            self._finished = True
            return FINISHED
        if solution is None:
            return None
        if self._points_given < len(self._points):  # the initial samples come first, in order
            flat = copy.deepcopy(self._points[self._points_given][0])
            self._points_given += 1
        else:
            flat = {
                name: dim.value(x)
                for (name, dim), x in zip(self._dims.items(), solution.get_x(), strict=True)
            }
        self._live[trial_id] = solution
        self._suggested += 1
        return unflatten({**copy.deepcopy(self._constants), **flat})

    def _tell(self, solution: Any, loss: float) -> None:
        with self._zoopt_globals():
            self._optimizer.complete(solution, loss)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Tell ZOOpt the trial's loss (``metric``, negated for ``"max"``; failures: +inf)."""
        solution = self._live.pop(trial_id, None)
        if solution is None:
            return  # not one of ours
        loss = None if error else self._loss(trial_id, result)
        if loss is None:
            logger.info("ZOOptSearch: trial %s failed; ZOOpt is told +inf for it", trial_id)
            loss = math.inf
        await self._run_model(self._tell, solution, loss)

    def is_finished(self) -> bool:
        return self._finished
