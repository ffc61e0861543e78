"""Building blocks of search-space domains: samplers, the ``Domain`` base class,
random-state handling and the argument checks shared by every domain constructor.

The public names are re-exported by :mod:`atune.search.sample`.
"""

from __future__ import annotations

import math
import numbers
import random as _pyrandom
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np

from atune.errors import ConfigError, ConfigTypeError

#: Anything accepted as ``random_state``.
RandomStateLike = int | np.random.Generator | np.random.RandomState | None

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _as_generator(random_state: RandomStateLike) -> np.random.Generator:
    """Return a numpy ``Generator`` for ``random_state``.

    ``None`` draws a seed from the global ``np.random`` state (so ``np.random.seed(...)``
    at the start of a script makes sampling reproducible), an int is a seed, a
    ``Generator`` is used as is and a ``RandomState`` seeds a new generator from itself.
    """
    if random_state is None:
        return np.random.default_rng(int(np.random.randint(0, _INT64_MAX, dtype=np.int64)))
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, _INT64_MAX, dtype=np.int64)))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ConfigError(f"`random_state` must be >= 0, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise ConfigTypeError(
        "`random_state` must be None, an int seed, a numpy Generator or a numpy "
        f"RandomState, got {random_state!r}"
    )


@contextmanager
def _seeded_globals(rng: np.random.Generator) -> Iterator[None]:
    """Seed ``np.random`` and ``random`` from ``rng`` for the block, then restore them."""
    np_state, py_state = np.random.get_state(), _pyrandom.getstate()
    seed = int(rng.integers(0, 2**32))
    np.random.seed(seed)
    _pyrandom.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        _pyrandom.setstate(py_state)


# --------------------------------------------------------------------------- checks


def _real(api: str, name: str, value: Any, *, allow_none: bool = False, finite: bool = True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"`{api}` needs a number for {name}, got {name}={value!r}")
    if isinstance(value, np.generic):
        value = value.item()
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ConfigError(f"`{api}` needs a finite {name}, got {name}={value!r}")
    return value


def _integer(api: str, name: str, value: Any) -> int:
    value = _real(api, name, value)
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"`{api}` needs an integer {name}, got {name}={value!r}")
    return int(value)


def _positive(api: str, name: str, value: Any):
    value = _real(api, name, value)
    if value <= 0:
        raise ConfigError(f"`{api}` needs {name} > 0, got {name}={value!r}")
    return value


def _check_base(api: str, base: Any):
    base = _real(api, "base", base)
    if base <= 0 or base == 1:
        raise ConfigError(f"`{api}` needs base > 0 and base != 1, got base={base!r}")
    return base


def _check_log(api: str, lower: Any, sampler: LogUniform) -> LogUniform:
    """``sampler`` with its base checked; log space needs ``lower > 0``."""
    if lower <= 0:
        raise ConfigError(f"`{api}` needs lower > 0 to sample in log space, got lower={lower!r}")
    return LogUniform(_check_base(api, sampler.base))


def _unwrap(sampler: Sampler | None) -> tuple[Sampler | None, Any]:
    """Split a sampler into (base sampler, q); q is None when not quantized."""
    if isinstance(sampler, Quantized):
        return (sampler.sampler or Uniform()), sampler.q
    return sampler, None


def _q_decimals(q: float) -> int:
    exponent = Decimal(repr(float(q))).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _q_value(k: int, q: float) -> float:
    """``k * q`` without float noise (rounded to the decimals ``q`` is written with)."""
    return float(round(k * q, _q_decimals(q)))


def _q_float_range(lower: float, upper: float, q: float) -> tuple[int, int] | None:
    """The multipliers k with ``lower <= k*q <= upper``, or None if there is none."""
    lo, hi = lower / q, upper / q
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    k_lo = math.ceil(lo - min(1e-9 * max(1.0, abs(lo)), 0.5))
    k_hi = math.floor(hi + min(1e-9 * max(1.0, abs(hi)), 0.5))
    if _q_value(k_lo, q) < lower:
        k_lo += 1
    if _q_value(k_hi, q) > upper:
        k_hi -= 1
    if k_lo > k_hi or _q_value(k_lo, q) < lower or _q_value(k_hi, q) > upper:
        return None
    return k_lo, k_hi


def _q_int_range(lower: int, upper: int, q: int) -> tuple[int, int]:
    """The multipliers k with ``lower <= k*q <= upper`` (none when ``k_lo > k_hi``)."""
    return -(-lower // q), upper // q


def _q_range(lower: Any, upper: Any, q: Any, integer: bool) -> tuple[int, int] | None:
    """The multipliers of ``q`` inside ``[lower, upper]``: exact for integers, noise-tolerant
    for floats (None when there is none)."""
    if integer:
        return _q_int_range(lower, upper, q)
    return _q_float_range(lower, upper, q)


def _q_snap(value: float, lower: Any, upper: Any, q: Any, integer: bool) -> Any:
    """``value`` rounded to the nearest multiple of ``q`` inside ``[lower, upper]``."""
    k_range = _q_range(lower, upper, q, integer)
    assert k_range is not None  # checked when the domain was made
    k = min(max(round(value / q), k_range[0]), k_range[1])
    return k * q if integer else _q_value(k, q)


def _check_float(api: str, lower: Any, upper: Any, sampler: Sampler | None):
    lower = _real(api, "lower", lower, allow_none=True, finite=False)
    upper = _real(api, "upper", upper, allow_none=True, finite=False)
    if lower is not None and upper is not None and not lower < upper:
        raise ConfigError(f"`{api}` needs lower < upper, got lower={lower!r}, upper={upper!r}")
    base, q = _unwrap(sampler)
    if isinstance(base, (Grid, Quantized)):
        raise ConfigError(f"`{api}` cannot use sampler {base!r} on a Float domain")
    if q is not None:
        q = _positive(api, "q", q)
    bounded = lower is not None and upper is not None and math.isfinite(lower - upper)
    if isinstance(base, (Uniform, LogUniform)) and not bounded:
        raise ConfigError(
            f"`{api}` needs finite lower and upper bounds, got lower={lower!r}, upper={upper!r}"
        )
    if isinstance(base, LogUniform):
        base = _check_log(api, lower, base)
    if isinstance(base, Normal):
        if any(b is not None and math.isfinite(b) for b in (lower, upper)):
            raise ConfigError(
                f"`{api}` samples an unbounded normal distribution, so the domain must have "
                f"no bounds, got lower={lower!r}, upper={upper!r}"
            )
        base = Normal(_real(api, "mean", base.mean), _positive(api, "sd", base.sd))
    if q is not None and bounded and _q_float_range(lower, upper, q) is None:
        raise ConfigError(
            f"`{api}` needs a multiple of q between lower and upper, "
            f"got lower={lower!r}, upper={upper!r}, q={q!r}"
        )
    return lower, upper, (Quantized(base or Uniform(), q) if q is not None else base)


def _check_integer(api: str, lower: Any, upper: Any, sampler: Sampler | None):
    lower, upper = _integer(api, "lower", lower), _integer(api, "upper", upper)
    if not lower < upper:
        raise ConfigError(f"`{api}` needs lower < upper, got lower={lower!r}, upper={upper!r}")
    if lower < _INT64_MIN or upper > _INT64_MAX:
        raise ConfigError(
            f"`{api}` needs bounds in the 64-bit integer range, got lower={lower}, upper={upper}"
        )
    base, q = _unwrap(sampler)
    if isinstance(base, (Grid, Normal, Quantized)):
        raise ConfigError(f"`{api}` cannot use sampler {base!r} on an Integer domain")
    if isinstance(base, LogUniform):
        base = _check_log(api, lower, base)
    if q is not None:
        q = _positive(api, "q", q)
        if isinstance(q, float) and not q.is_integer():
            raise ConfigError(f"`{api}` needs an integer q, got q={q!r}")
        q = int(q)
        k_lo, k_hi = _q_int_range(lower, upper, q)
        if k_lo > k_hi:
            raise ConfigError(
                f"`{api}` needs a multiple of q between lower and upper, "
                f"got lower={lower!r}, upper={upper!r}, q={q!r}"
            )
        return lower, upper, Quantized(base or Uniform(), q)
    return lower, upper, base


def _ordered_values(api: str, values: Any, what: str) -> list[Any]:
    """``values`` as a list (numpy scalars become Python numbers); rejects unordered input."""
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise ConfigTypeError(f"`{api}` needs a list of {what}, got {values!r}")
    if isinstance(values, (set, frozenset)):
        raise ConfigTypeError(
            f"`{api}` needs an ordered list of {what} (a set has no stable order), got {values!r}"
        )
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _check_categories(api: str, categories: Any) -> tuple[Any, ...]:
    result = tuple(_ordered_values(api, categories, "categories"))
    if not result:
        raise ConfigError(f"`{api}` needs at least one category, got []")
    return result


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ConfigError(f"`size` must be an int >= 1, got {size!r}")
    return int(size)


# --------------------------------------------------------------------------- samplers


class Sampler:
    """How a domain draws its values (uniformly, in log space, normally, on a grid)."""


@dataclass(frozen=True)
class Uniform(Sampler):
    """Draw uniformly from the domain's range or categories."""


@dataclass(frozen=True)
class LogUniform(Sampler):
    """Draw uniformly in log space.

    The distribution is the same for every ``base``; it is kept for Ray Tune parity.
    """

    base: float = 10


@dataclass(frozen=True)
class Normal(Sampler):
    """Draw from a normal distribution with mean ``mean`` and standard deviation ``sd``."""

    mean: float = 0.0
    sd: float = 1.0


@dataclass(frozen=True)
class Quantized(Sampler):
    """Draw with ``sampler``, then round to a multiple of ``q`` (upper bound inclusive)."""

    sampler: Sampler
    q: float


@dataclass(frozen=True)
class Grid(Sampler):
    """Enumerate every category (the variant generator expands it; it is not sampled)."""


_METHOD = {Uniform: "uniform", LogUniform: "loguniform", Normal: "normal", Grid: "grid"}


# --------------------------------------------------------------------------- base class


class Domain:
    """Base class of search-space domains.

    A domain is an immutable value: the chaining methods (``.uniform()``,
    ``.quantized(q)``...) return a new domain.
    """

    sampler: Sampler | None = None
    default_sampler: Sampler = Uniform()

    def get_sampler(self) -> Sampler:
        """The sampler in use (the domain's default when none was chosen)."""
        return self.sampler if self.sampler is not None else self.default_sampler

    def _with(self, sampler: Sampler) -> Any:
        if self.sampler is not None:
            raise ConfigError(f"{self!r} already has a sampler; a domain takes only one")
        return replace(self, sampler=sampler)  # type: ignore[type-var]

    def _api(self) -> str:
        name = type(self).__name__
        method = "quantized" if isinstance(self.sampler, Quantized) else None
        method = method or _METHOD.get(type(self.sampler))
        return f"{name}.{method}" if method else name

    def sample(self, spec: Any = None, size: int = 1, random_state: RandomStateLike = None) -> Any:
        """Draw values from the domain.

        Args:
            spec: The config resolved so far (only :class:`Function` reads it).
            size: How many values to draw.
            random_state: None, an int seed, a numpy ``Generator`` or ``RandomState``.

        Returns:
            One value when ``size == 1``, else a list of ``size`` values.
        """
        values = self._draw(_as_generator(random_state), _check_size(size))
        return values[0] if size == 1 else values

    def _draw(self, rng: np.random.Generator, size: int) -> list[Any]:
        raise NotImplementedError

    def is_grid(self) -> bool:
        """True when the variant generator enumerates this domain (a grid axis)."""
        return isinstance(self.sampler, Grid)

    def is_function(self) -> bool:
        """True for :class:`Function` domains (``sample_from``)."""
        return False

    def is_valid(self, value: Any) -> bool:
        """True when ``value`` lies inside the domain."""
        raise NotImplementedError

    @property
    def domain_str(self) -> str:
        """A short human-readable description of the domain, e.g. ``"[1, 10)"``."""
        raise NotImplementedError
