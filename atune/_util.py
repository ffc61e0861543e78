"""Small helpers shared across modules: nested keys, dict flattening, JSON encoding."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["KEY_SEPARATOR", "MAX_NESTING_DEPTH", "encode_json", "flatten_dict", "lookup"]

#: Joins the keys of nested dicts into one flat key: ``{"a": {"b": 1}}`` is ``"a/b"``.
KEY_SEPARATOR = "/"
#: Deeper (or self-referencing) dicts are kept as one value instead of recursing, so a
#: pathological result cannot exhaust the stack of the thread that encodes it.
MAX_NESTING_DEPTH = 32

#: Leaf types checked by identity before the slower ``isinstance(value, Mapping)``.
_LEAF_TYPES = frozenset({int, float, str, bool, type(None)})


def lookup(data: Mapping[str, Any], key: str | tuple[str, ...], default: Any = None) -> Any:
    """``data[key]``, or the nested value for ``"a/b"`` keys; ``default`` if absent.

    A literal key containing the separator wins over the nested path. A tuple of keys
    is the path itself (``("a", "b")``), each key taken literally.

    Example:
        >>> lookup({"optimizer": {"lr": 0.1}}, "optimizer/lr")
        0.1
    """
    if isinstance(key, tuple):
        parts: Iterable[str] = key
    elif key in data:
        return data[key]
    else:
        parts = key.split(KEY_SEPARATOR)
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def flatten_dict(
    data: Mapping[Any, Any], prefix: str = "", sep: str = KEY_SEPARATOR
) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``; empty dicts stay values.

    Dicts nested deeper than :data:`MAX_NESTING_DEPTH` stay values too.
    """
    out: dict[str, Any] = {}
    _flatten_into(data, prefix, sep, out, 0)
    return out


def _flatten_into(
    data: Mapping[Any, Any], prefix: str, sep: str, out: dict[str, Any], depth: int
) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if (
            type(value) not in _LEAF_TYPES
            and isinstance(value, Mapping)
            and value
            and depth < MAX_NESTING_DEPTH
        ):
            _flatten_into(value, name + sep, sep, out, depth + 1)
        else:
            out[name] = value


def encode_json(value: Any, **kwargs: Any) -> str:
    """Encodes ``value`` as JSON, never failing on odd values.

    numpy scalars and arrays (and anything else with ``tolist``, e.g. torch tensors)
    become Python numbers and lists, sets become lists, anything else its ``repr``;
    NaN and infinities are written as ``NaN``/``Infinity`` (Python's json default).

    Args:
        value: Any object, typically a result dict or a config.
        **kwargs: Passed to :func:`json.dumps` (e.g. ``indent``, ``sort_keys``).

    Returns:
        The JSON text.
    """
    try:
        return json.dumps(value, default=_json_default, **kwargs)
    except (TypeError, ValueError, RecursionError, RuntimeError):
        return json.dumps(_sanitize(value), default=_json_default, **kwargs)


def _json_default(value: Any) -> Any:
    """``json.dumps`` hook for values json cannot encode itself."""
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        try:
            return tolist()
        except Exception:  # a foreign tolist() that fails: fall through to repr
            pass
    if isinstance(value, (set, frozenset)):
        return list(value)
    return repr(value)


def _sanitize(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: the slow path, used only when json.dumps failed.

    Handles what the fast path cannot: non-string dict keys, self-references and
    containers mutated while they were being encoded.
    """
    if depth >= MAX_NESTING_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in list(value.items()):
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = repr(key)
            out[str(key)] = _sanitize(item, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_sanitize(item, depth + 1) for item in list(value)]
    return value


def pickle_any(obj: Any) -> bytes:
    """Pickle ``obj``; with cloudpickle when plain pickle refuses it (a lambda, a
    function or class defined in ``__main__`` or a notebook cell). Raises what
    cloudpickle raises for an object neither can pickle (a lock, a socket)."""
    import pickle

    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        import cloudpickle

        return bytes(cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
