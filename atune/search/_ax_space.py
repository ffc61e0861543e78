"""AxSearch's search space: atune domains and native entries as Ax parameter configs.

The pure half of :mod:`atune.search.ax`: no client, no state. An atune param space
(nested dicts of domains and constants) or Ax's native form (a list of
``ax.api.RangeParameterConfig`` / ``ChoiceParameterConfig`` or Ray-style parameter
dicts) becomes the ``parameters`` of ``Client.configure_experiment``, plus the
constants and index-encoded choices that map Ax's values back to configs. The string
constraints AxSearch passes on to Ax are checked here too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._flat import describe, split_space

__all__ = ["Converted", "check_constraints", "convert_space"]

#: A quantized float becomes an ordered choice of its grid values; more is refused.
_MAX_GRID = 10_000
_RANGE_KEYS = {"name", "type", "bounds", "value_type", "log_scale", "digits", "is_fidelity"}
_CHOICE_KEYS = {"name", "type", "values", "value_type", "is_ordered", "sort_values"}
_FIXED_KEYS = {"name", "type", "value", "value_type"}


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


class Converted:
    """An atune or native space as Ax parameter configs plus what maps values back."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.constants: dict[str, Any] = {}
        self.choices: dict[str, list[Any]] = {}  # index-encoded categories


def convert_space(api: Any, space: Any, where: str) -> Converted:
    """``space`` (a dict of atune domains or a list of native entries) for Ax."""
    out = Converted()
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
    return out


def _from_domain(api: Any, out: Converted, name: str, domain: Any) -> None:
    """Add the atune domain ``domain`` named ``name`` to ``out``."""
    spec = describe(domain, name, "AxSearch")
    if spec.kind == "categorical":
        values = list(spec.categories)
        if len(values) == 1:
            out.constants[name] = copy.deepcopy(values[0])
            return
        kind = _value_type(values)
        if kind is None or not _is_unique(values):
            out.choices[name] = values  # Ax sees the indices 0..n-1
            values, kind = list(range(len(values))), "int"
        out.params.append(api.ChoiceParameterConfig(name, values, kind, is_ordered=False))
        return
    if spec.kind == "normal":
        raise ConfigError(
            f"AxSearch cannot search {name!r} = {domain!r}: Ax needs bounded ranges, and a "
            "normal distribution has none; use atune.uniform(lower, upper) around the mean"
        )
    q = spec.q
    if q is not None and spec.log:
        raise ConfigError(
            f"AxSearch cannot search {name!r} = {domain!r}: Ax does not combine a log scale "
            "with a step size; drop the quantization (qloguniform -> loguniform, "
            "qlograndint -> lograndint) and round in the trainable, or use a linear "
            "quantized domain (quniform/qrandint)"
        )
    scaling = "log" if spec.log else None
    if spec.kind == "int":
        if q is None:
            lower, upper = int(spec.lower), int(spec.inclusive_upper)  # atune: upper excluded
            step = None
        else:  # quantized integers include the upper bound
            if not float(q).is_integer():
                raise ConfigError(
                    f"AxSearch needs an integer step for {name!r} = {domain!r}, got q={q!r}"
                )
            step = int(q)
            k_lo, k_hi = spec.q_range  # type: ignore[misc]
            lower, upper = k_lo * step, k_hi * step
        if upper <= lower:
            out.constants[name] = int(lower)
            return
        out.params.append(
            api.RangeParameterConfig(name, (lower, upper), "int", step_size=step, scaling=scaling)
        )
        return
    assert spec.lower is not None and spec.upper is not None  # bounded: not normal
    if q is None:
        bounds = (float(spec.lower), float(spec.upper))
        out.params.append(api.RangeParameterConfig(name, bounds, "float", scaling=scaling))
        return
    ks = spec.q_range
    if ks is None:  # atune's quantized constructors refuse this already
        raise ConfigError(f"{name!r} = {domain!r} holds no multiple of q={q!r}")
    count = ks[1] - ks[0] + 1
    if count > _MAX_GRID:
        raise ConfigError(
            f"AxSearch maps {name!r} = {domain!r} to an ordered choice of its {count} values, "
            f"more than {_MAX_GRID}; use a larger q, or atune.uniform and round in the trainable"
        )
    grid = [spec.multiple(k) for k in range(ks[0], ks[1] + 1)]
    if len(grid) == 1:
        out.constants[name] = grid[0]
        return
    out.params.append(api.ChoiceParameterConfig(name, grid, "float", is_ordered=True))


def _from_native(api: Any, out: Converted, index: int, param: Any) -> None:
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


def check_constraints(value: Any, name: str) -> list[str]:
    """``parameter_constraints`` / ``outcome_constraints`` as a list of strings."""
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
