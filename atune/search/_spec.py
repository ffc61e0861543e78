"""The ``spec`` object ``sample_from`` functions receive: read-only views of the config
resolved so far, which raise :class:`SpecLookupError` on values not resolved yet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from atune.errors import ConfigTypeError
from atune.search._domain import Domain


class _Unresolved:
    """Marks a value the variant generator has not resolved yet (e.g. a grid axis)."""

    def __repr__(self) -> str:
        return "<unresolved>"


UNRESOLVED = _Unresolved()


class SpecLookupError(KeyError, AttributeError):
    """A ``sample_from`` function read a key that is missing or not resolved yet."""

    def __init__(self, path: tuple[Any, ...], unresolved: bool) -> None:
        self.path, self.unresolved = path, unresolved
        keys = "".join(f"[{k!r}]" for k in path)
        why = "is not resolved yet" if unresolved else "does not exist"
        super().__init__(f"config{keys} {why}")

    def __str__(self) -> str:
        return str(self.args[0])


def _is_pending(value: Any) -> bool:
    return isinstance(value, (Domain, _Unresolved)) or (
        isinstance(value, dict) and len(value) == 1 and "grid_search" in value
    )


def _wrap(value: Any, path: tuple[Any, ...]) -> Any:
    if isinstance(value, dict):
        return ConfigView(value, path)
    if isinstance(value, list):
        return _ListView(value, path)
    return value


class ConfigView(Mapping):
    """Read-only view of a partially resolved config for ``sample_from`` functions.

    Keys read as attributes (``view.alpha``) or items (``view["alpha"]``); nested dicts
    and lists come back as views. Reading a value that is not resolved yet raises
    :class:`SpecLookupError` (a ``KeyError`` and ``AttributeError``).
    """

    __slots__ = ("_data", "_path")

    def __init__(self, data: dict[Any, Any], path: tuple[Any, ...] = ()) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_path", path)

    def __getitem__(self, key: Any) -> Any:
        path = (*self._path, key)
        if key not in self._data:
            raise SpecLookupError(path, unresolved=False)
        value = self._data[key]
        if _is_pending(value):
            raise SpecLookupError(path, unresolved=True)
        return _wrap(value, path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the config seen by sample_from is read-only")

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: Any, default: Any = None) -> Any:
        """``view[key]`` when the key exists (it may still be unresolved), else ``default``."""
        return self[key] if key in self._data else default

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ConfigView({self._data!r})"


class _ListView(Sequence):
    __slots__ = ("_data", "_path")

    def __init__(self, data: list[Any], path: tuple[Any, ...]) -> None:
        self._data, self._path = data, path

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._data))[index]]
        if not -len(self._data) <= index < len(self._data):
            raise SpecLookupError((*self._path, index), unresolved=False)
        index = index % len(self._data)
        if _is_pending(self._data[index]):
            raise SpecLookupError((*self._path, index), unresolved=True)
        return _wrap(self._data[index], (*self._path, index))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"_ListView({self._data!r})"


class SampleSpec(Mapping):
    """The ``spec`` argument of ``sample_from`` functions: ``spec.config`` / ``spec["config"]``."""

    __slots__ = ("config",)

    def __init__(self, config: ConfigView) -> None:
        self.config = config

    def __getitem__(self, key: str) -> Any:
        if key != "config":
            raise KeyError(key)
        return self.config

    def __iter__(self) -> Iterator[str]:
        return iter(("config",))

    def __len__(self) -> int:
        return 1


def _as_spec(spec: Any) -> SampleSpec:
    if isinstance(spec, SampleSpec):
        return spec
    if isinstance(spec, ConfigView):
        return SampleSpec(spec)
    if spec is None:
        return SampleSpec(ConfigView({}))
    if isinstance(spec, dict):
        return SampleSpec(ConfigView(spec))
    raise ConfigTypeError(f"`spec` must be None or the config dict resolved so far, got {spec!r}")
