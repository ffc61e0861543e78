"""The pure core of PBT: mutation specs, explore, quantiles and experiment tags.

No I/O and no event loop: :class:`~atune.schedulers.PopulationBasedTraining` (the
async shell) and :class:`~atune.schedulers.PB2` call these.
"""

from __future__ import annotations

import copy
import inspect
import math
import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from atune._metric import metric_number
from atune._util import flatten_dict
from atune.errors import AtuneError, ConfigError, ConfigTypeError
from atune.search._domain import Domain, _seeded_globals
from atune.search.variant_generator import format_vars

__all__ = [
    "explore",
    "fill_config",
    "filter_mutated",
    "make_experiment_tag",
    "perturbed_tag",
    "quantiles",
    "validate_mutations",
]

_MISSING = object()


def _zero_arg(func: Callable[..., Any]) -> bool:
    """True when ``func`` can be called without arguments (0.7 mutation lambdas)."""
    try:
        inspect.signature(func).bind()
    except TypeError:
        return False
    except ValueError:  # a builtin without a signature: assume it can
        return True
    return True


def validate_mutations(mutations: Mapping[str, Any], path: str = "") -> None:
    """Raise :class:`ConfigError` unless every value is a valid mutation spec.

    A spec is a list or tuple (categorical values), a search-space domain such as
    ``tune.uniform(0, 1)``, a function without arguments, or a dict of specs.
    """
    for key, spec in mutations.items():
        name = f"{path}{key}"
        if isinstance(spec, Mapping):
            if not spec:
                raise ConfigError(f"`hyperparam_mutations[{name!r}]` is an empty dict")
            validate_mutations(spec, f"{name}/")
        elif isinstance(spec, (list, tuple)):
            if not spec:
                raise ConfigError(
                    f"`hyperparam_mutations[{name!r}]` must list at least one value, got {spec!r}"
                )
        elif isinstance(spec, Domain):
            if spec.is_function():
                raise ConfigError(
                    f"`hyperparam_mutations[{name!r}]` is a sample_from() domain, which PBT "
                    "cannot resample without a spec; use a function without arguments "
                    "(lambda: random.uniform(0, 1)) or tune.uniform/loguniform/choice/..."
                )
            if spec.is_grid():
                raise ConfigError(
                    f"`hyperparam_mutations[{name!r}]` is a grid axis ({spec!r}); give the "
                    "values as a list instead"
                )
        elif callable(spec):
            if not _zero_arg(spec):
                raise ConfigError(
                    f"`hyperparam_mutations[{name!r}]` must be a function without arguments "
                    f"(e.g. lambda: random.uniform(0, 1)), got {spec!r}"
                )
        else:
            raise ConfigTypeError(
                f"`hyperparam_mutations[{name!r}]` must be a list, tuple, dict, search-space "
                f"domain (tune.uniform(...)) or a function without arguments, got {spec!r}"
            )


def _in_list(value: Any, values: Sequence[Any]) -> int | None:
    """The index of ``value`` in ``values`` (by ``==``), or None."""
    for i, v in enumerate(values):
        try:
            if v is value or bool(v == value):
                return i
        except Exception:  # e.g. numpy arrays: ambiguous truth value
            continue
    return None


class Sampler:
    """Draws new values from mutation specs with the scheduler's random state."""

    def __init__(self, rng: random.Random, np_rng: np.random.Generator, seeded: bool) -> None:
        self.rng = rng
        self.np_rng = np_rng
        self.seeded = seeded

    def sample(self, spec: Any) -> Any:
        if isinstance(spec, (list, tuple)):
            return copy.deepcopy(self.rng.choice(spec))
        if isinstance(spec, Domain):
            return spec.sample(random_state=self.np_rng)
        # A user function drawing from the global `random`/`np.random`: seed them for
        # the call when the scheduler is seeded, so the draw is reproducible too.
        with _seeded_globals(self.np_rng) if self.seeded else nullcontext():
            value = spec()
        return value.item() if isinstance(value, np.generic) else value


def explore(
    config: Mapping[str, Any],
    mutations: Mapping[str, Any],
    resample_probability: float,
    perturbation_factors: Sequence[float],
    custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None,
    sampler: Sampler,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A perturbed copy of ``config`` and a description of each change.

    For each key of ``mutations``:

    * list/tuple: with probability ``resample_probability``, or when the current value
      is not in the list, a uniformly drawn element; else the element one to the left
      or right (50/50, clamped at the ends).
    * domain or function: with probability ``resample_probability`` a new draw; else
      the current value times a random choice of ``perturbation_factors``. A value that
      was an int stays an int (``int(...)``); a non-numeric one is always redrawn.
    * dict: the same rules, one level down.

    ``custom_explore_fn(new_config)`` runs last and returns the final config.
    """
    new_config, operations = _explore_level(
        config, mutations, resample_probability, perturbation_factors, sampler
    )
    if custom_explore_fn is not None:
        out = custom_explore_fn(new_config)
        if not isinstance(out, dict):
            raise AtuneError(
                f"`custom_explore_fn` must return the new config dict, got {out!r} "
                "(did it forget to `return config`?)"
            )
        new_config = out
    return new_config, operations


def _explore_level(
    config: Mapping[str, Any],
    mutations: Mapping[str, Any],
    p: float,
    factors: Sequence[float],
    sampler: Sampler,
) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = sampler.rng
    new_config = copy.deepcopy(dict(config))
    operations: dict[str, Any] = {}
    for key, spec in mutations.items():
        old = config.get(key, _MISSING)
        if isinstance(spec, Mapping):
            inner = old if isinstance(old, Mapping) else {}
            new_config[key], operations[key] = _explore_level(inner, spec, p, factors, sampler)
        elif isinstance(spec, (list, tuple)):
            index = None if old is _MISSING else _in_list(old, spec)
            if rng.random() < p or index is None:
                new_config[key] = sampler.sample(spec)
                operations[key] = "resample"
            else:
                shift = rng.choice((-1, 1))
                new_index = min(max(index + shift, 0), len(spec) - 1)
                new_config[key] = copy.deepcopy(spec[new_index])
                side = "left" if shift < 0 else "right"
                operations[key] = f"shift {side}" + (" (noop)" if new_index == index else "")
        else:  # a domain or a function: continuous
            if rng.random() < p or metric_number(old) is None:
                value = sampler.sample(spec)
                operations[key] = "resample"
            else:
                factor = rng.choice(list(factors))
                value = old * factor
                operations[key] = f"* {factor}"
            if isinstance(old, (int, np.integer)) and not isinstance(old, bool):
                value = int(value)
            new_config[key] = value
    return new_config, operations


def fill_config(
    config: dict[str, Any], mutations: Mapping[str, Any], sampler: Sampler, prefix: str = ""
) -> dict[str, Any]:
    """Sample the keys of ``mutations`` missing from ``config`` into it (in place).

    Returns the filled values, flat (``{"a/b": value}``).
    """
    filled: dict[str, Any] = {}
    for key, spec in mutations.items():
        if isinstance(spec, Mapping):
            inner = config.get(key)
            if not isinstance(inner, dict):
                if key in config:
                    continue  # a non-dict value the user set: leave it alone
                inner = config[key] = {}
            filled.update(fill_config(inner, spec, sampler, f"{prefix}{key}/"))
        elif key not in config:
            config[key] = filled[f"{prefix}{key}"] = sampler.sample(spec)
    return filled


def filter_mutated(config: Mapping[str, Any], mutations: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``config`` that ``mutations`` names (nested dicts kept nested)."""
    out: dict[str, Any] = {}
    for key, spec in mutations.items():
        if key not in config:
            continue
        value = config[key]
        if isinstance(spec, Mapping) and isinstance(value, Mapping):
            out[key] = filter_mutated(value, spec)
        else:
            out[key] = value
    return out


def make_experiment_tag(orig_tag: str, config: Mapping[str, Any], mutations: Mapping) -> str:
    """``<orig_tag>@perturbed[k=v,...]`` with the mutated values of ``config``."""
    return perturbed_tag(orig_tag, filter_mutated(config, mutations))


def perturbed_tag(orig_tag: str, values: Mapping[str, Any]) -> str:
    """``<orig_tag>@perturbed[k=v,...]``: the tag of a trial whose config changed to ``values``."""
    return f"{orig_tag}@perturbed[{format_vars(flatten_dict(values))}]"


def quantiles(ranked: Sequence[Any], fraction: float) -> tuple[list[Any], list[Any]]:
    """The lower and upper quantile of ``ranked`` (sorted from worst to best).

    Each holds ``ceil(n * fraction)`` items, at most ``floor(n / 2)``; with fewer than
    two items both are empty.
    """
    n = len(ranked)
    if n <= 1:
        return [], []
    size = math.ceil(n * fraction)
    if size > n / 2:
        size = n // 2
    if size == 0:
        return [], []
    return list(ranked[:size]), list(ranked[-size:])
