"""Space walking shared by the model-based searchers (Optuna, HyperOpt).

These searchers see a param space as a flat set of named parameters: every domain of
the (nested) space is one parameter named by its path joined with ``/``
(``{"model": {"lr": uniform(0, 1)}}`` gives ``"model/lr"``). Everything else in the
space is a constant that is copied into each suggested config.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import Domain

__all__ = [
    "build_config",
    "deep_merge",
    "find_domains",
    "flatten_point",
    "has_domains",
    "param_name",
    "unflatten",
]

Path = tuple[Any, ...]
_GRID = "grid_search"


def param_name(path: Path) -> str:
    """The flat parameter name of ``path``: ``("model", "lr")`` -> ``"model/lr"``."""
    return "/".join(str(key) for key in path)


def _fmt(path: Path) -> str:
    return "param_space" + "".join(f"[{key!r}]" for key in path)


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and _GRID in value


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, Domain) or _is_grid(value):
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
        if _is_grid(value) or (isinstance(value, Domain) and value.is_grid()):
            raise ConfigError(
                f"{searcher} does not support grid_search, got one at {_fmt(path)}; "
                "use tune.choice(...) instead, or the default BasicVariantGenerator"
            )
        if value.is_function():
            raise ConfigError(
                f"{searcher} cannot search a sample_from function, got one at {_fmt(path)}; "
                "use a distribution (tune.uniform, tune.choice, ...) instead"
            )
        found.append((path, value))
    return found


def _assign(config: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


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


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        keys = str(name).split("/")
        node = nested
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"parameter name {name!r} clashes with the parameter {key!r}")
            node = child
        node[keys[-1]] = value
    return nested


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


def flatten_point(
    point: Any, names: set[str] | None, *, where: str = "points_to_evaluate"
) -> dict[str, Any]:
    """A nested ``points_to_evaluate`` entry as ``{flat name: value}``.

    With ``names`` (the known parameter names), a dict value is kept whole when its
    path is a parameter (a choice among dicts) and otherwise flattened further; a key
    that is no parameter raises :class:`ConfigError`. Without ``names`` (a
    define-by-run space) every nested dict is flattened.
    """
    if not isinstance(point, Mapping):
        raise ConfigTypeError(f"`{where}` must be a dict, got {point!r}")
    flat: dict[str, Any] = {}

    def walk(value: Mapping[str, Any], prefix: str) -> None:
        for key, item in value.items():
            name = f"{prefix}{key}"
            if names is not None and name in names:
                flat[name] = item
            elif isinstance(item, Mapping):
                walk(item, name + "/")
            elif names is None:
                flat[name] = item
            else:
                raise ConfigError(
                    f"`{where}` sets {name!r}, which is not a parameter of the search space "
                    f"(parameters: {sorted(names)})"
                )

    walk(point, "")
    return flat
