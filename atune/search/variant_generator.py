"""Turning a nested param space into concrete trial configs.

A param space is a dict whose values may be constants, domains (``tune.uniform(...)``),
``sample_from`` functions, grid axes (``tune.grid_search([...])``), or dicts and lists
holding any of these at any depth. Each *grid point* (one value per grid axis) becomes
one config, nested exactly like the space, with every domain sampled and every function
called.

Grid order: grid axes are taken in declaration order (a depth-first walk of the space:
dict insertion order, list index order) and the grid points are their cartesian product
with the **last axis varying fastest**, like nested ``for`` loops (``itertools.product``):
``{"x": grid_search([1, 2]), "y": grid_search(["a", "b"])}`` gives ``(1, a), (1, b),
(2, a), (2, b)``. A grid value may itself hold domains or further grid axes; its
sub-grid is expanded in place of that value.
"""

from __future__ import annotations

import itertools
import math
import re
import types
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import Domain, RandomStateLike, _as_generator
from atune.search._spec import UNRESOLVED, ConfigView, SampleSpec, SpecLookupError
from atune.search.sample import Categorical

__all__ = [
    "count_variants",
    "flatten_resolved",
    "flatten_suggested",
    "format_vars",
    "generate_variants",
    "validate_space",
]

Path = tuple[Any, ...]

_GRID_KEY = "grid_search"
_GRID_LEAF = object()  # marks a grid axis in the list of leaves of a built config


def _is_grid_dict(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and _GRID_KEY in value


def _fmt_path(path: Path, root: str = "param_space") -> str:
    return root + "".join(f"[{key!r}]" for key in path)


# --------------------------------------------------------------------------- compiled space


class _Node:
    __slots__ = ("count",)
    count: int


class _Const(_Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value, self.count = value, 1


class _Leaf(_Node):
    __slots__ = ("domain",)

    def __init__(self, domain: Domain) -> None:
        self.domain, self.count = domain, 1


class _Container(_Node):
    __slots__ = ("is_dict", "items")

    def __init__(self, items: list[tuple[Any, _Node]], is_dict: bool) -> None:
        self.items, self.is_dict = items, is_dict
        self.count = math.prod(node.count for _, node in items)


class _Grid(_Node):
    __slots__ = ("offsets", "options")

    def __init__(self, options: list[_Node]) -> None:
        self.options = options
        self.count = sum(option.count for option in options)
        # Cumulative start index of each option, only needed when an option has a sub-grid.
        self.offsets: list[int] | None = None
        if self.count != len(options):
            self.offsets = list(itertools.accumulate((o.count for o in options[:-1]), initial=0))

    def locate(self, index: int) -> tuple[int, int]:
        """The option holding grid point ``index`` and the index inside that option."""
        if self.offsets is None:
            return index, 0
        lo, hi = 0, len(self.offsets) - 1
        while lo < hi:  # last offset <= index
            mid = (lo + hi + 1) // 2
            if self.offsets[mid] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo, index - self.offsets[lo]


def _compile(value: Any, where: Path) -> _Node:
    """Validate ``value`` (found at ``where``) and compile it into a node tree."""
    if isinstance(value, Domain):
        if isinstance(value, Categorical) and value.is_grid():
            return _compile_grid(list(value.categories), where)
        return _Leaf(value)
    if isinstance(value, dict):
        if _GRID_KEY in value:
            if len(value) != 1:
                raise ConfigError(
                    f"{_fmt_path(where)}: a grid_search dict must have 'grid_search' as its "
                    f"only key, got keys {list(value)!r}"
                )
            return _compile_grid(value[_GRID_KEY], where)
        items = [(key, _compile(item, (*where, key))) for key, item in value.items()]
        return _container(value, items, is_dict=True)
    if isinstance(value, list):
        items = [(i, _compile(item, (*where, i))) for i, item in enumerate(value)]
        return _container(value, items, is_dict=False)
    if isinstance(value, tuple):
        _reject_domains_in_tuple(value, where)
    elif isinstance(value, types.LambdaType) and value.__name__ == "<lambda>":
        raise ConfigTypeError(
            f"{_fmt_path(where)}: a bare lambda is not sampled; wrap it as "
            "tune.sample_from(lambda spec: ...) to compute the value per trial, or define it "
            "with `def` to pass the function itself as a constant"
        )
    return _Const(value)


def _container(value: Any, items: list[tuple[Any, _Node]], is_dict: bool) -> _Node:
    if all(isinstance(node, _Const) for _, node in items):
        return _Const(value)
    return _Container(items, is_dict)


def _compile_grid(values: Any, where: Path) -> _Grid:
    if not isinstance(values, (list, tuple)):
        raise ConfigTypeError(
            f"{_fmt_path(where)}: `grid_search` needs a non-empty list of values, got {values!r}"
        )
    if not values:
        raise ConfigError(f"{_fmt_path(where)}: `grid_search` needs a non-empty list of values")
    return _Grid([_compile(v, (*where, _GRID_KEY, i)) for i, v in enumerate(values)])


def _reject_domains_in_tuple(value: tuple[Any, ...], where: Path) -> None:
    for i, item in enumerate(value):
        if isinstance(item, Domain) or _is_grid_dict(item):
            raise ConfigError(
                f"{_fmt_path((*where, i))}: search-space values inside a tuple are not "
                f"resolved; use a list instead, got {item!r}"
            )
        if isinstance(item, tuple):
            _reject_domains_in_tuple(item, (*where, i))


def _compile_space(spec: Any) -> _Node:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ConfigTypeError(f"`param_space` must be a dict, got {type(spec).__name__}")
    if _is_grid_dict(spec):
        raise ConfigError("`param_space` itself cannot be a grid_search; put it under a key")
    return _compile(spec, ())


# --------------------------------------------------------------------------- building


def _copy_containers(value: Any) -> Any:
    """Rebuild plain dicts and lists so trials never share a mutable container."""
    if type(value) is dict:
        return {key: _copy_containers(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy_containers(item) for item in value]
    return value


def _digits(index: int | None, counts: list[int]) -> list[int | None]:
    """Split ``index`` into one digit per child, the last child varying fastest."""
    if index is None:
        return [None] * len(counts)
    digits: list[int | None] = [0] * len(counts)
    for i in range(len(counts) - 1, -1, -1):
        index, digits[i] = divmod(index, counts[i])
    return digits


def _build(node: _Node, index: int | None, path: Path, leaves: list[tuple[Path, Any]]) -> Any:
    """Build grid point ``index`` of ``node`` (``None``: leave grid axes unresolved).

    Domains and functions are left in place; their paths go to ``leaves``, in
    declaration order, with the grid axes marked by ``_GRID_LEAF``.
    """
    if isinstance(node, _Const):
        return _copy_containers(node.value)
    if isinstance(node, _Leaf):
        leaves.append((path, node.domain))
        return node.domain
    if isinstance(node, _Container):
        digits = _digits(index, [child.count for _, child in node.items])
        built = [
            (key, _build(child, digit, (*path, key), leaves))
            for (key, child), digit in zip(node.items, digits)
        ]
        return dict(built) if node.is_dict else [item for _, item in built]
    assert isinstance(node, _Grid)
    leaves.append((path, _GRID_LEAF))
    if index is None:
        return UNRESOLVED
    option, sub_index = node.locate(index)
    return _build(node.options[option], sub_index, path, leaves)


def _assign(config: Any, path: Path, value: Any) -> None:
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _lookup(config: Any, path: Path) -> tuple[bool, Any]:
    value = config
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, value


def _resolve(
    config: dict[str, Any],
    leaves: list[tuple[Path, Any]],
    rng: np.random.Generator,
    fn_state: np.random.Generator | None,
    constants: dict[Path, Any] | None,
    *,
    allow_fail: bool = False,
) -> dict[Path, Any]:
    """Sample the domains and call the functions of ``leaves`` in ``config`` (in place).

    Domains are sampled in declaration order, then functions are called in declaration
    order, again and again, until each has run without reading an unresolved value.
    Returns the values set, by path.
    """
    resolved: dict[Path, Any] = {}
    functions: list[tuple[Path, Domain]] = []
    for path, leaf in leaves:
        if leaf is _GRID_LEAF:
            continue
        if constants is not None and path in constants:
            value = constants[path]
        elif leaf.is_function():
            functions.append((path, leaf))
            continue
        else:
            value = leaf.sample(random_state=rng)
        _assign(config, path, value)
        resolved[path] = value
    spec = SampleSpec(ConfigView(config))
    while functions:
        waiting, errors = [], {}
        for path, function in functions:
            try:
                value = function.sample(spec, random_state=fn_state)
            except SpecLookupError as exc:
                waiting.append((path, function))
                errors[path] = exc
                continue
            _assign(config, path, value)
            resolved[path] = value
        if len(waiting) == len(functions):
            if allow_fail:
                break
            raise _unresolvable(waiting, errors) from errors[waiting[0][0]]
        functions = waiting
    return resolved


def _unresolvable(waiting: list[tuple[Path, Domain]], errors: dict[Path, Any]) -> ConfigError:
    parts, missing = [], False
    for path, _ in waiting:
        exc = errors[path]
        read = "spec.config" + "".join(f"[{key!r}]" for key in exc.path)
        if exc.unresolved:
            parts.append(f"{_fmt_path(path)} reads {read}, which never gets resolved")
        else:
            missing = True
            parts.append(f"{_fmt_path(path)} reads {read}, which is not in the param space")
    hint = "" if missing else " (the sample_from functions depend on each other in a cycle)"
    return ConfigError("cannot resolve sample_from values: " + "; ".join(parts) + hint)


class _Space:
    """A validated, compiled param space whose grid points can be built by index."""

    def __init__(self, spec: Any) -> None:
        self.root = _compile_space(spec)
        self.count = self.root.count

    def constants(
        self, rng: np.random.Generator, fn_state: np.random.Generator | None
    ) -> dict[Path, Any]:
        """Sample what does not depend on a grid axis (for ``constant_grid_search``)."""
        leaves: list[tuple[Path, Any]] = []
        config = _build(self.root, None, (), leaves)
        return _resolve(config, leaves, rng, fn_state, None, allow_fail=True)

    def variant(
        self,
        index: int,
        rng: np.random.Generator,
        fn_state: np.random.Generator | None,
        constants: dict[Path, Any] | None = None,
    ) -> tuple[dict[Path, Any], dict[str, Any]]:
        """Build grid point ``index``: ``(resolved_vars, config)``."""
        leaves: list[tuple[Path, Any]] = []
        config = _build(self.root, index, (), leaves)
        _resolve(config, leaves, rng, fn_state, constants)
        resolved_vars = {path: _lookup(config, path)[1] for path, _ in leaves}
        return resolved_vars, config


# --------------------------------------------------------------------------- public API


def validate_space(spec: Any) -> None:
    """Check a param space, raising an error that names the offending path.

    Raises:
        ConfigTypeError: ``spec`` is not a dict; a bare lambda is used as a value (wrap
            it with ``tune.sample_from``); a ``grid_search`` value is not a list.
        ConfigError: an empty ``grid_search``, a ``grid_search`` dict with other keys, or
            a domain inside a tuple (tuples are passed through unresolved).
    """
    _compile_space(spec)


def count_variants(spec: Any) -> int:
    """The number of grid points of ``spec``: the product of the grid sizes, 1 if none.

    Example:
        >>> count_variants({"x": grid_search([1, 2, 3]), "y": grid_search(["a", "b"])})
        6
    """
    return _Space(spec).count


def generate_variants(
    spec: Any, *, constant_grid_search: bool = False, random_state: RandomStateLike = None
) -> Iterator[tuple[dict[Path, Any], dict[str, Any]]]:
    """Yield ``(resolved_vars, config)`` for every grid point of ``spec``, in grid order.

    Args:
        spec: The param space (validated here, before the first value is yielded).
        constant_grid_search: Sample the random values once and reuse them at every grid
            point (values of functions that read a grid axis are still computed per
            point). By default every grid point gets fresh random values.
        random_state: None, an int seed, a numpy ``Generator`` or ``RandomState``. When
            given, ``np.random`` and ``random`` are also seeded around each
            ``sample_from`` call, so a seed reproduces the whole sequence.

    Yields:
        ``resolved_vars`` maps the path (a tuple of keys) of every grid axis, domain and
        function to its value; ``config`` is the concrete config.
    """
    space = _Space(spec)
    rng = _as_generator(random_state)
    fn_state = rng if random_state is not None else None

    def variants() -> Iterator[tuple[dict[Path, Any], dict[str, Any]]]:
        constants = space.constants(rng, fn_state) if constant_grid_search else None
        for index in range(space.count):
            yield space.variant(index, rng, fn_state, constants)

    return variants()


def flatten_resolved(param_space: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The values ``config`` has for the searched leaves of ``param_space``.

    Every domain, function and grid axis of the space (at any depth) gives one entry,
    keyed by its path joined with ``/`` (``{"model/lr": 0.01}``), in declaration order.
    Paths missing from ``config`` are left out.
    """
    flat: dict[str, Any] = {}

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, Domain) or _is_grid_dict(value):
            found, resolved = _lookup(config, path)
            if found:
                flat["/".join(str(key) for key in path)] = resolved
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, (*path, i))

    walk(param_space or {}, ())
    return flat


def flatten_suggested(param_space: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The values a trial's config was given by the search, flat (``{"a/b": value}``).

    Those are the values at the searched leaves of ``param_space`` (see
    :func:`flatten_resolved`) and, for a searcher with its own search space, the values
    at paths the param space does not have at all. Constants of the param space are not
    included.
    """
    flat = flatten_resolved(param_space, config)

    def walk(space: Any, value: Mapping[str, Any], prefix: str) -> None:
        for key, item in value.items():
            name = f"{prefix}{key}"
            if isinstance(space, dict) and key in space:
                below = space[key]
                if (
                    isinstance(item, Mapping)
                    and isinstance(below, dict)
                    and not _is_grid_dict(below)
                ):
                    walk(below, item, name + "/")
                continue  # a leaf of the param space: searched (above) or a constant
            if isinstance(item, Mapping) and item:
                walk(None, item, name + "/")
            else:
                flat.setdefault(name, item)

    walk(param_space or {}, config, "")
    return flat


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+\-]+")


def _clean(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_")


def _format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.5g}"
    if isinstance(value, (list, tuple)):
        return "_".join(_format_value(item) for item in value)
    if isinstance(value, (types.FunctionType, type)):
        return _clean(value.__name__)
    return _clean(str(value))


def _labels(keys: list[str]) -> dict[str, str]:
    """The shortest unambiguous label of each ``a/b/c`` key (its last component if unique).

    A last component that is a list index (``layers/0``) keeps its parent (``layers.0``).
    """
    parts = {key: key.split("/") for key in keys}
    depth = {key: 2 if len(p) > 1 and p[-1].isdigit() else 1 for key, p in parts.items()}
    while True:
        labels = {key: ".".join(parts[key][-depth[key] :]) for key in keys}
        seen: dict[str, list[str]] = {}
        for key, label in labels.items():
            seen.setdefault(label, []).append(key)
        clashes = [k for group in seen.values() if len(group) > 1 for k in group]
        grow = [key for key in clashes if depth[key] < len(parts[key])]
        if not grow:
            return labels
        for key in grow:
            depth[key] += 1


def format_vars(flat_vars: Mapping[str, Any]) -> str:
    """Format searched values for experiment tags and trial directory names.

    Keys are sorted alphabetically and shortened to their last path component unless
    that is ambiguous; floats keep 5 significant digits; lists and tuples are joined with
    ``_``; characters unsafe in file names become ``_``.

    Example:
        >>> format_vars({"model/lr": 0.00462861, "momentum": 0.9, "layers/0": 16})
        'layers.0=16,lr=0.0046286,momentum=0.9'
    """
    labels = _labels(list(flat_vars))
    ordered = sorted(flat_vars, key=lambda key: (labels[key], key))
    return ",".join(f"{_clean(labels[k])}={_format_value(flat_vars[k])}" for k in ordered)
