"""Flat ("a/b") views of nested param spaces, shared by the library-backed searchers.

Optimisation libraries (BayesOpt, Nevergrad) want one flat mapping of parameter names;
atune's param spaces nest. These helpers split a space into its search domains and its
constants, keyed by the ``/``-joined path, and put suggested values back into shape.
"""

from __future__ import annotations

import copy
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import Domain
from atune.search.variant_generator import _is_grid_dict

__all__ = ["SEP", "flatten_point", "python_value", "split_space", "unflatten"]

#: Joins the keys of nested dicts into one parameter name, as in Ray Tune.
SEP = "/"


def _join(prefix: str, key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise ConfigTypeError(f"{where} keys must be strings, got {key!r}")
    if SEP in key:
        raise ConfigError(
            f"{where} key {key!r} contains {SEP!r}, which joins nested keys; rename it"
        )
    return f"{prefix}{SEP}{key}" if prefix else key


def split_space(
    space: dict[str, Any], where: str = "param_space", native: tuple[type, ...] = (tuple,)
) -> tuple[dict, dict]:
    """Split a nested space into ``({path: Domain or native value}, {path: constant})``.

    A leaf is a search parameter when it is a :class:`Domain` or, for native spaces, a
    ``(lower, upper)`` tuple of two numbers (when ``tuple`` is in ``native``) or an
    instance of another ``native`` type; ``grid_search`` is reported to the caller as
    a parameter holding the grid dict. Everything else is a constant.
    """
    params: dict[str, Any] = {}
    constants: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = _join(prefix, key, where)
            if isinstance(value, dict) and _is_grid_dict(value):
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


def _is_native(value: Any, native: tuple[type, ...]) -> bool:
    if not isinstance(value, native):
        return False
    return not isinstance(value, tuple) or (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def flatten_point(point: dict[str, Any], where: str) -> dict[str, Any]:
    """A (nested) ``points_to_evaluate`` entry as ``{"a/b": value}``."""
    if not isinstance(point, dict):
        raise ConfigTypeError(f"{where} must be a dict, got {point!r}")
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = _join(prefix, key, where)
            if isinstance(value, dict) and value:
                walk(value, path)
            else:
                flat[path] = value

    walk(point, "")
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1}`` → ``{"a": {"b": 1}}``."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split(SEP)
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def python_value(value: Any) -> Any:
    """numpy scalars as plain Python numbers (configs must pickle and print cleanly)."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value
