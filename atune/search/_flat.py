"""Flat ("a/b") views of nested param spaces, shared by the library-backed searchers.

Optimisation libraries see a search space as one flat set of named parameters; atune's
param spaces nest. Every domain of a nested space is one parameter named by its path
joined with ``/`` (``{"model": {"lr": uniform(0, 1)}}`` gives ``"model/lr"``);
everything else is a constant copied into each suggested config.

Two views are offered: :func:`find_domains` + :func:`build_config` keep the space's
shape (lists included) and put values back at their paths; :func:`split_space` +
:func:`unflatten` work on ``{"a/b": value}`` mappings, for libraries that take plain
parameter dicts and native ``(lower, upper)`` bounds.

:func:`describe` reads a domain once into a :class:`DomainSpec`, the normalized
description every integration converts to its library's parameter type.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import LogUniform, Normal, _q_range, _q_snap, _q_value, _unwrap
from atune.search.sample import Categorical, Domain, Float, Integer, _category_index
from atune.search.variant_generator import _assign, _is_grid_dict

__all__ = [
    "SEP",
    "DomainKind",
    "DomainSpec",
    "Path",
    "build_config",
    "deep_merge",
    "describe",
    "find_domains",
    "flatten_point",
    "has_domains",
    "param_name",
    "python_value",
    "split_space",
    "unflatten",
]

#: Joins the keys of nested dicts into one parameter name, as in Ray Tune.
SEP = "/"
Path = tuple[Any, ...]


def param_name(path: Path) -> str:
    """The flat parameter name of ``path``: ``("model", "lr")`` -> ``"model/lr"``."""
    return SEP.join(str(key) for key in path)


def _join(prefix: str, key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ConfigTypeError(f"`{where}` keys must be strings, got {key!r}")
    if SEP in key:
        raise ConfigError(
            f"`{where}` key {key!r} contains {SEP!r}, which joins nested keys; rename it"
        )
    return f"{prefix}{SEP}{key}" if prefix else key


# --------------------------------------------------------------------------- path view


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, Domain) or _is_grid_dict(value):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, i))


def has_domains(space: Any) -> bool:
    """True when ``space`` holds a domain or a grid axis anywhere."""
    return any(True for _ in _walk(space, ()))


def find_domains(space: Any, searcher: str) -> list[tuple[Path, Domain]]:
    """Every domain of ``space`` with its path, in declaration order.

    Raises:
        ConfigError: for a grid axis or a ``sample_from`` function, which a model-based
            searcher cannot search; the message names the parameter.
    """
    found: list[tuple[Path, Domain]] = []
    for path, value in _walk(space, ()):
        _check_searchable(searcher, param_name(path), value)
        found.append((path, value))
    return found


def _copy_structure(value: Any) -> Any:
    """Copy dicts and lists of the space (domains are immutable and stay shared)."""
    if isinstance(value, Mapping):
        return {key: _copy_structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_structure(item) for item in value]
    if isinstance(value, Domain):
        return value
    return copy.deepcopy(value)


def build_config(space: Any, values: Mapping[Path, Any]) -> dict[str, Any]:
    """``space`` with the domain at each path of ``values`` replaced by its value."""
    config = _copy_structure(space or {})
    for path, value in values.items():
        if path:
            _assign(config, path, value)
    return config


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in (nested dicts merged, not replaced)."""
    merged = _copy_structure(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- flat view


def split_space(
    space: dict[str, Any],
    where: str = "param_space",
    native: tuple[type, ...] = (tuple,),
    searcher: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a nested space into ``({"a/b": Domain or native value}, {"a/b": constant})``.

    A leaf is a search parameter when it is a :class:`Domain` or, for native spaces, a
    ``(lower, upper)`` tuple of two numbers (when ``tuple`` is in ``native``) or an
    instance of another ``native`` type. Everything else is a constant.

    With ``searcher`` (a name for messages), a ``grid_search`` axis or a ``sample_from``
    function, which model-based searchers cannot search, raises :class:`ConfigError`;
    without it, a grid axis is reported as a parameter holding the grid dict.
    """
    params: dict[str, Any] = {}
    constants: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = _join(prefix, key, where)
            if searcher is not None:
                _check_searchable(searcher, path, value)
            if _is_grid_dict(value):
                params[path] = value
            elif isinstance(value, dict) and value:
                walk(value, path)
            elif isinstance(value, Domain) or _is_native(value, native):
                params[path] = value
            else:
                constants[path] = copy.deepcopy(value)

    if not isinstance(space, dict):
        raise ConfigTypeError(f"`{where}` must be a dict, got {space!r}")
    walk(space, "")
    return params, constants


def _check_searchable(searcher: str, path: str, value: Any) -> None:
    if _is_grid_dict(value) or (isinstance(value, Domain) and value.is_grid()):
        raise ConfigError(
            f"{searcher} cannot search the grid_search parameter {path!r}; use "
            "atune.choice([...]) instead, or the default BasicVariantGenerator for grids"
        )
    if isinstance(value, Domain) and value.is_function():
        raise ConfigError(
            f"{searcher} cannot search the sample_from function {path!r}; use a "
            "distribution (atune.uniform, atune.randint, atune.choice, ...) instead"
        )


def _is_native(value: Any, native: tuple[type, ...]) -> bool:
    if not isinstance(value, native):
        return False
    return not isinstance(value, tuple) or (
        len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def flatten_point(
    point: Any, names: set[str] | None = None, *, where: str = "points_to_evaluate"
) -> dict[str, Any]:
    """A nested ``points_to_evaluate`` entry as ``{"a/b": value}``.

    With ``names`` (the known parameter names), a dict value is kept whole when its
    path is a parameter (a choice among dicts) and otherwise flattened further; a key
    that is no parameter raises :class:`ConfigError`. Without ``names`` every nested
    non-empty dict is flattened.
    """
    if not isinstance(point, Mapping):
        raise ConfigTypeError(f"`{where}` must be a dict, got {point!r}")
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, item in node.items():
            name = _join(prefix, key, where)
            if names is not None and name in names:
                flat[name] = item
            elif isinstance(item, Mapping) and item:
                walk(item, name)
            elif names is None:
                flat[name] = item
            else:
                raise ConfigError(
                    f"`{where}` sets {name!r}, which is not a parameter of the search space "
                    f"(parameters: {sorted(names)})"
                )

    walk(point, "")
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = str(name).split(SEP)
        node = nested
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"parameter name {name!r} clashes with the parameter {key!r}")
            node = child
        node[leaf] = value
    return nested


def python_value(value: Any) -> Any:
    """numpy scalars as plain Python numbers (configs must pickle and print cleanly)."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value


# --------------------------------------------------------------------------- domain specs

#: What a searched parameter is, as the integrations see it.
DomainKind = Literal["float", "int", "categorical", "normal"]


@dataclass(frozen=True)
class DomainSpec:
    """One search-space domain, normalized: what every library converter reads.

    Made by :func:`describe`; the converters match on :attr:`kind` and read the fields
    that kind defines (the others keep their defaults).

    Attributes:
        kind: ``"float"`` (``uniform``, ``loguniform`` and their quantized forms),
            ``"int"`` (``randint``, ``lograndint``, ``qrandint``, ``qlograndint``),
            ``"normal"`` (``randn``, ``qrandn``) or ``"categorical"`` (``choice``).
        name: The parameter's flat name (``"model/lr"``), for messages.
        domain: The domain described (its ``repr`` goes into messages).
        lower: The lower bound, always inclusive (``None`` for ``"categorical"``;
            ``None`` or infinite for ``"normal"``).
        upper: The upper bound as atune's domains define it: inclusive for floats and
            for quantized integers, **exclusive** for unquantized integers
            (``randint(0, 10)`` never gives 10; ``qrandint(0, 10, 5)`` can). Use
            :attr:`inclusive_upper` for the largest value an integer can take.
        log: Sampled uniformly in log space (``loguniform``, ``lograndint``...).
        base: The log base given (the distribution is the same for every base); None
            unless ``log``.
        q: The quantization step, or None: values are multiples of ``q`` (an int for
            integer domains).
        mean: The mean of a ``"normal"`` domain.
        sd: The standard deviation of a ``"normal"`` domain.
        categories: The categories of a ``"categorical"`` domain, in order.
    """

    kind: DomainKind
    name: str
    domain: Domain = field(repr=False)
    lower: Any = None
    upper: Any = None
    log: bool = False
    base: float | None = None
    q: Any = None
    mean: float | None = None
    sd: float | None = None
    categories: tuple[Any, ...] = ()

    @property
    def inclusive_upper(self) -> Any:
        """The largest value: ``upper - 1`` for unquantized integers, else ``upper``."""
        if self.kind == "int" and self.q is None:
            return self.upper - 1
        return self.upper

    @property
    def q_range(self) -> tuple[int, int] | None:
        """``(k_lo, k_hi)``, the multipliers k of ``q`` with ``k * q`` inside the bounds.

        Exact for integers; for floats tolerant of float noise (``quniform(1.1, 2.0,
        0.1)`` gives ``(11, 20)``). None when there is none (an unbounded range).
        """
        assert self.q is not None, "q_range needs a quantized domain"
        if self.lower is None or self.upper is None:
            return None
        return _q_range(self.lower, self.upper, self.q, self.kind == "int")

    def multiple(self, k: int) -> Any:
        """The value ``k * q``: an int for integer domains, a float without noise else."""
        return k * self.q if self.kind == "int" else _q_value(k, self.q)

    def snap(self, value: float) -> Any:
        """``value`` rounded to the nearest multiple of ``q`` inside the bounds."""
        return _q_snap(value, self.lower, self.upper, self.q, self.kind == "int")

    def index(self, value: Any) -> int | None:
        """The index of the first category that is or equals ``value``, else None."""
        return _category_index(self.categories, value)


def describe(domain: Domain, name: str = "", searcher: str = "this searcher") -> DomainSpec:
    """The :class:`DomainSpec` of ``domain``, the parameter ``name`` of ``searcher``.

    Raises:
        ConfigError: for a grid axis or a ``sample_from`` function (as
            :func:`find_domains` does), and for any other domain that is no float,
            integer or categorical range; the message names the searcher and parameter.

    Example:
        >>> spec = describe(atune.randint(1, 10), "layers")
        >>> spec.kind, spec.lower, spec.upper, spec.inclusive_upper
        ('int', 1, 10, 9)
    """
    _check_searchable(searcher, name, domain)
    if isinstance(domain, Categorical):
        return DomainSpec("categorical", name, domain, categories=tuple(domain.categories))
    if not isinstance(domain, (Float, Integer)):
        raise ConfigError(
            f"{searcher} does not support parameters of type {type(domain).__name__}: "
            f"{name!r} = {domain!r}; use uniform/loguniform/randint/choice domains (or their "
            "quantized forms)"
        )
    sampler, q = _unwrap(domain.get_sampler())
    bounds = {"lower": domain.lower, "upper": domain.upper, "q": q}
    if isinstance(sampler, Normal):
        return DomainSpec("normal", name, domain, mean=sampler.mean, sd=sampler.sd, **bounds)
    kind: DomainKind = "int" if isinstance(domain, Integer) else "float"
    if isinstance(sampler, LogUniform):
        return DomainSpec(kind, name, domain, log=True, base=sampler.base, **bounds)
    return DomainSpec(kind, name, domain, **bounds)
