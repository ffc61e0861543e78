"""Search-space domains: the distributions a param space is built from.

A *domain* says where a hyperparameter's value comes from: a float range, an integer
range, a list of categories, or a user function. The public helpers (``uniform``,
``randint``, ``choice``, ``sample_from``...) build domains with Ray Tune's semantics;
the variant generator (:mod:`atune.search.variant_generator`) resolves them into
concrete configs.

Example:
    >>> import atune as tune
    >>> space = {
    ...     "lr": tune.loguniform(1e-4, 1e-1),
    ...     "layers": tune.randint(1, 5),
    ...     "act": tune.choice(["relu", "tanh"]),
    ... }

Every sampled integer is a Python ``int`` and every float a Python ``float``, so configs
serialise to JSON as they are.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import (
    Domain,
    Grid,
    LogUniform,
    Normal,
    Quantized,
    RandomStateLike,
    Sampler,
    Uniform,
    _as_generator,
    _check_categories,
    _check_float,
    _check_integer,
    _check_size,
    _ordered_values,
    _positive,
    _q_float_range,
    _q_int_range,
    _q_value,
    _seeded_globals,
    _unwrap,
)
from atune.search._spec import SampleSpec, _as_spec

__all__ = [
    "Categorical",
    "Domain",
    "Float",
    "Function",
    "Grid",
    "Integer",
    "LogUniform",
    "Normal",
    "Quantized",
    "Sampler",
    "Uniform",
    "choice",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "sample_from",
    "uniform",
]


# --------------------------------------------------------------------------- domains


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not math.isnan(float(value))
    )


def _is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    return abs(ratio - round(ratio)) <= 1e-6 * max(1.0, abs(ratio))


def _log_draw(rng: np.random.Generator, lower: float, upper: float, size: int):
    # Uniform in log space is the same distribution for every base, so use e.
    return np.exp(rng.uniform(math.log(lower), math.log(upper), size))


_R = TypeVar("_R", bound="_Range")


def _log_text(base: Any) -> str:
    if not isinstance(base, LogUniform):
        return ""
    return " (log)" if base.base == 10 else f" (log base {base.base!r})"


class _Range(Domain):
    """What :class:`Float` and :class:`Integer` share: checked bounds and the sampler chain."""

    lower: Any
    upper: Any
    #: Checks ``(api, lower, upper, sampler)`` and returns them normalised.
    _check: ClassVar[Callable[..., tuple[Any, Any, Any]]]

    def __post_init__(self) -> None:
        lower, upper, sampler = type(self)._check(self._api(), self.lower, self.upper, self.sampler)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "sampler", sampler)

    def uniform(self: _R) -> _R:
        """Sample uniformly between the bounds."""
        return self._with(Uniform())  # type: ignore[no-any-return]

    def loguniform(self: _R, base: float = 10) -> _R:
        """Sample uniformly in log space (needs ``lower > 0``)."""
        return self._with(LogUniform(base))  # type: ignore[no-any-return]

    def quantized(self: _R, q: Any) -> _R:
        """Round samples to multiples of ``q``, kept inside the bounds.

        A quantized :class:`Integer` includes its upper bound.
        """
        if isinstance(self.sampler, Quantized):
            raise ConfigError(f"{self!r} is already quantized")
        return replace(self, sampler=Quantized(self.sampler or Uniform(), q))  # type: ignore[type-var]

    def _bounds_str(self, base: Sampler | None, q: Any) -> str:
        """The range part of :attr:`domain_str`, e.g. ``[1, 10)``."""
        raise NotImplementedError

    def _call(self, base: Sampler) -> tuple[str, list[str]]:
        """The public function that builds this domain, and its arguments but ``q``."""
        raise NotImplementedError

    @property
    def domain_str(self) -> str:
        base, q = _unwrap(self.sampler)
        text = self._bounds_str(base, q) + _log_text(base)
        return text if q is None else f"{text} q={q!r}"

    def __repr__(self) -> str:
        base, q = _unwrap(self.sampler)
        if base is None:
            return f"{type(self).__name__}({self.lower!r}, {self.upper!r})"
        name, args = self._call(base)
        if q is not None:
            name, args = "q" + name, [*args, repr(q)]
        if isinstance(base, LogUniform):
            args.append(f"base={base.base!r}")
        return f"{name}({', '.join(args)})"


@dataclass(frozen=True, repr=False)
class Float(_Range):
    """A float range. ``None`` bounds are unbounded (only valid for ``normal()``).

    Example:
        >>> Float(1e-4, 1e-1).loguniform().quantized(1e-4)
        qloguniform(0.0001, 0.1, 0.0001, base=10)
    """

    lower: float | None
    upper: float | None
    sampler: Sampler | None = None
    _check = staticmethod(_check_float)

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> Float:
        """Sample from a normal distribution (the domain must be unbounded)."""
        return self._with(Normal(mean, sd))  # type: ignore[no-any-return]

    def _draw(self, rng: np.random.Generator, size: int) -> list[Any]:
        base, q = _unwrap(self.get_sampler())
        lo, hi = self.lower, self.upper
        if isinstance(base, Normal):
            raw = rng.normal(base.mean, base.sd, size)
            if q is None:
                return [float(v) for v in raw]
            return [_q_value(int(np.round(v / q)), q) for v in raw]
        if lo is None or hi is None or not math.isfinite(hi - lo):
            raise ConfigError(
                f"`{self._api()}` needs finite bounds to sample, got lower={lo!r}, upper={hi!r}"
            )
        if isinstance(base, LogUniform):
            raw = _log_draw(rng, lo, hi, size)
        else:
            raw = rng.uniform(lo, hi, size)
        if q is None:
            return [float(min(max(v, lo), hi)) for v in raw]
        k_lo, k_hi = _q_float_range(lo, hi, q)  # type: ignore[misc]
        return [_q_value(min(max(int(np.round(v / q)), k_lo), k_hi), q) for v in raw]

    def is_valid(self, value: Any) -> bool:
        if not _is_real(value):
            return False
        if self.lower is not None and value < self.lower:
            return False
        if self.upper is not None and value > self.upper:
            return False
        _, q = _unwrap(self.sampler)
        return q is None or _is_multiple(value, q)

    def _bounds_str(self, base: Sampler | None, q: Any) -> str:
        if isinstance(base, Normal):
            return f"N({base.mean!r}, {base.sd!r})"
        return f"[{self.lower!r}, {self.upper!r}]"

    def _call(self, base: Sampler) -> tuple[str, list[str]]:
        if isinstance(base, Normal):
            return "randn", [repr(base.mean), repr(base.sd)]
        name = "loguniform" if isinstance(base, LogUniform) else "uniform"
        return name, [repr(self.lower), repr(self.upper)]


@dataclass(frozen=True, repr=False)
class Integer(_Range):
    """An integer range ``[lower, upper)``; quantized integers include ``upper``.

    Example:
        >>> Integer(1, 10).loguniform()
        lograndint(1, 10, base=10)
    """

    lower: int
    upper: int
    sampler: Sampler | None = None
    _check = staticmethod(_check_integer)

    def _draw(self, rng: np.random.Generator, size: int) -> list[Any]:
        base, q = _unwrap(self.get_sampler())
        lo, hi = self.lower, self.upper
        if q is None:
            if isinstance(base, LogUniform):
                raw = _log_draw(rng, lo, hi, size)
                return [min(max(math.floor(v), lo), hi - 1) for v in raw]
            return [int(v) for v in rng.integers(lo, hi, size)]
        k_lo, k_hi = _q_int_range(lo, hi, q)
        if isinstance(base, LogUniform):
            raw = _log_draw(rng, lo, hi, size)
            ks = [min(max(int(np.round(v / q)), k_lo), k_hi) for v in raw]
        else:
            ks = [int(k) for k in rng.integers(k_lo, k_hi + 1, size)]
        return [k * q for k in ks]

    def is_valid(self, value: Any) -> bool:
        if not _is_real(value) or not float(value).is_integer():
            return False
        _, q = _unwrap(self.sampler)
        if q is None:
            return self.lower <= value < self.upper
        return self.lower <= value <= self.upper and int(value) % q == 0

    def _bounds_str(self, base: Sampler | None, q: Any) -> str:
        return f"[{self.lower}, {self.upper}{')' if q is None else ']'}"

    def _call(self, base: Sampler) -> tuple[str, list[str]]:
        name = "lograndint" if isinstance(base, LogUniform) else "randint"
        return name, [repr(self.lower), repr(self.upper)]


def _fresh(value: Any) -> Any:
    """A private copy of a mutable category, so trials never share one object."""
    return copy.deepcopy(value) if isinstance(value, (list, dict, set)) else value


@dataclass(frozen=True, repr=False)
class Categorical(Domain):
    """A list of categories, sampled uniformly or enumerated as a grid.

    Example:
        >>> Categorical(["relu", "tanh"]).uniform()
        choice(['relu', 'tanh'])
    """

    categories: Sequence[Any]
    sampler: Sampler | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", _check_categories(self._api(), self.categories))
        if not isinstance(self.sampler, (type(None), Uniform, Grid)):
            raise ConfigError(
                f"`{self._api()}` cannot use sampler {self.sampler!r} on a Categorical domain"
            )

    def uniform(self) -> Categorical:
        """Sample one category uniformly."""
        return self._with(Uniform())

    def grid(self) -> Categorical:
        """Enumerate every category (same as ``grid_search(categories)``)."""
        return self._with(Grid())

    def _draw(self, rng: np.random.Generator, size: int) -> list[Any]:
        if self.is_grid():
            raise ConfigError(
                f"{self!r} is a grid axis: the variant generator enumerates it, it is not sampled"
            )
        return [
            _fresh(self.categories[int(i)]) for i in rng.integers(0, len(self.categories), size)
        ]

    def is_valid(self, value: Any) -> bool:
        return _category_index(self.categories, value) is not None

    @property
    def domain_str(self) -> str:
        return repr(list(self.categories))

    def __repr__(self) -> str:
        if self.is_grid():
            return f"Categorical({list(self.categories)!r}).grid()"
        return f"choice({list(self.categories)!r})"


def _safe_eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays: ambiguous truth value
        return False


def _category_index(categories: Sequence[Any], value: Any) -> int | None:
    """The index of the first category that is or equals ``value``, else None."""
    for i, category in enumerate(categories):
        if value is category or _safe_eq(value, category):
            return i
    return None


def _accepts_spec(func: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature: pass the spec
        return True
    try:
        signature.bind(None)
        return True
    except TypeError:
        pass
    try:
        signature.bind()
        return False
    except TypeError:
        raise ConfigError(
            f"`sample_from` needs a function taking one argument (spec) or none, got {func!r}"
        ) from None


@dataclass(frozen=True, repr=False)
class Function(Domain):
    """A user function called once per trial; it may read other values of the config.

    ``func(spec)`` reads the config resolved so far as ``spec.config.<name>`` (nested:
    ``spec.config.a.b``; also ``spec["config"]["a"]``). A function with no parameters is
    called without ``spec``. Numpy scalars it returns are converted to Python numbers.
    """

    func: Callable[..., Any]
    pass_spec: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise ConfigTypeError(f"`sample_from` needs a callable, got {self.func!r}")
        object.__setattr__(self, "pass_spec", _accepts_spec(self.func))

    def is_function(self) -> bool:
        return True

    def grid(self) -> Function:
        """Always raises: ``sample_from`` values cannot be grid searched."""
        raise ConfigError(f"{self!r} cannot be grid searched; use grid_search(values) instead")

    def sample(self, spec: Any = None, size: int = 1, random_state: RandomStateLike = None) -> Any:
        """Call the function ``size`` times.

        Args:
            spec: The config resolved so far (a dict) or the spec object the variant
                generator passes.
            size: How many values to produce.
            random_state: When given, ``np.random`` and ``random`` are seeded from it for
                the duration of the calls (and restored afterwards), so functions that
                use the global generators become reproducible.
        """
        size = _check_size(size)
        spec = _as_spec(spec)
        seeded = random_state is not None
        with _seeded_globals(_as_generator(random_state)) if seeded else nullcontext():
            values = [self._call(spec) for _ in range(size)]
        return values[0] if size == 1 else values

    def _call(self, spec: SampleSpec) -> Any:
        value = self.func(spec) if self.pass_spec else self.func()
        return value.item() if isinstance(value, np.generic) else value

    def is_valid(self, value: Any) -> bool:
        return True

    @property
    def domain_str(self) -> str:
        return f"{_func_name(self.func)}()"

    def __repr__(self) -> str:
        return f"sample_from({_func_name(self.func)})"


def _func_name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


# --------------------------------------------------------------------------- public API


def uniform(lower: float, upper: float) -> Float:
    """A float drawn uniformly from ``[lower, upper]``.

    Example:
        >>> uniform(-5, -1)
        uniform(-5, -1)
    """
    _check_float("uniform", lower, upper, Uniform())
    return Float(lower, upper).uniform()


def quniform(lower: float, upper: float, q: float) -> Float:
    """A uniform float in ``[lower, upper]`` rounded to a multiple of ``q``.

    Rounded values never leave ``[lower, upper]``; ``quniform(3.2, 5.4, 0.2)`` gives
    3.2, 3.4, ..., 5.4.
    """
    _check_float("quniform", lower, upper, Quantized(Uniform(), q))
    return Float(lower, upper).uniform().quantized(q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    """A float in ``[lower, upper]`` drawn uniformly in log space (needs ``lower > 0``)."""
    _check_float("loguniform", lower, upper, LogUniform(base))
    return Float(lower, upper).loguniform(base)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    """A log-uniform float in ``[lower, upper]`` rounded to a multiple of ``q``."""
    _check_float("qloguniform", lower, upper, Quantized(LogUniform(base), q))
    return Float(lower, upper).loguniform(base).quantized(q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    """A float from a normal distribution with mean ``mean`` and standard deviation ``sd``."""
    _check_float("randn", None, None, Normal(mean, sd))
    return Float(None, None).normal(mean, sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    """A normal float rounded to a multiple of ``q``."""
    _check_float("qrandn", None, None, Quantized(Normal(mean, sd), q))
    return Float(None, None).normal(mean, sd).quantized(q)


def randint(lower: int, upper: int) -> Integer:
    """An integer drawn uniformly from ``[lower, upper)`` (upper bound excluded)."""
    _check_integer("randint", lower, upper, Uniform())
    return Integer(lower, upper).uniform()


def _quantized_integer(api: str, lower: int, upper: int, q: int, sampler: Sampler) -> Integer:
    """``Integer(lower, upper)`` drawn by ``sampler`` and quantized to ``q``; ``q == 1`` is
    the unquantized domain (upper bound excluded), as in Ray Tune."""
    if _positive(api, "q", q) == 1:
        _check_integer(api, lower, upper, sampler)
        return Integer(lower, upper)._with(sampler)  # type: ignore[no-any-return]
    _check_integer(api, lower, upper, Quantized(sampler, q))
    return Integer(lower, upper)._with(sampler).quantized(q)  # type: ignore[no-any-return]


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """An integer multiple of ``q`` drawn uniformly from ``[lower, upper]`` (upper included).

    With ``q == 1`` this is :func:`randint`, whose upper bound is excluded.
    ``qrandint(-21, 12, 3)`` can give -21, -18, ..., 9, 12.
    """
    return _quantized_integer("qrandint", lower, upper, q, Uniform())


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """An integer in ``[lower, upper)`` drawn uniformly in log space (upper excluded)."""
    _check_integer("lograndint", lower, upper, LogUniform(base))
    return Integer(lower, upper).loguniform(base)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    """A log-space integer in ``[lower, upper]`` rounded to a multiple of ``q`` (upper included).

    With ``q == 1`` this is :func:`lograndint`, whose upper bound is excluded.
    """
    return _quantized_integer("qlograndint", lower, upper, q, LogUniform(base))


def choice(categories: Sequence[Any]) -> Categorical:
    """One of ``categories``, chosen uniformly.

    Example:
        >>> choice(["a", "b", "c"])
        choice(['a', 'b', 'c'])
    """
    return Categorical(_check_categories("choice", categories)).uniform()


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed by ``func(spec)`` once per trial.

    ``spec.config`` holds the rest of the config, so values may depend on each other:

    Example:
        >>> space = {
        ...     "alpha": sample_from(lambda spec: np.random.uniform(100)),
        ...     "beta": sample_from(lambda spec: spec.config.alpha * np.random.normal()),
        ... }
    """
    if not callable(func):
        raise ConfigTypeError(f"`sample_from` needs a callable, got {func!r}")
    return Function(func)


def grid_search(values: Any) -> dict[str, list[Any]]:
    """Every value in ``values`` is tried; several grids form their cartesian product.

    Returns ``{"grid_search": list(values)}``, so a dict written by hand works the same.

    Example:
        >>> grid_search([16, 64])
        {'grid_search': [16, 64]}
    """
    values = _ordered_values("grid_search", values, "values")
    if not values:
        raise ConfigError("`grid_search` needs at least one value, got []")
    return {"grid_search": values}
