"""The default searcher: grid search plus random sampling of the param space."""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import FINISHED, Searcher
from atune.search._domain import Domain, RandomStateLike, _as_generator
from atune.search.variant_generator import _is_grid_dict, _Space

__all__ = ["BasicVariantGenerator"]

logger = logging.getLogger(__name__)

_STATE_VERSION = 1
_GRID = "grid_search"


def _check_points(points: Any) -> list[dict[str, Any]]:
    if points is None:
        return []
    if not isinstance(points, (list, tuple)) or not all(isinstance(p, dict) for p in points):
        raise ConfigTypeError(f"`points_to_evaluate` must be a list of dicts, got {points!r}")
    return copy.deepcopy(list(points))


def _merge(space: Any, point: dict[str, Any], where: str) -> dict[str, Any]:
    """``space`` with the values of ``point`` put in place (nested dicts are merged)."""
    merged = dict(space) if isinstance(space, dict) and not _is_grid_dict(space) else {}
    for key, value in point.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and not _is_grid_dict(current):
            merged[key] = _merge(current, value, f"{where}[{key!r}]")
            continue
        if isinstance(current, Domain) and not current.is_function():
            if not current.is_valid(value):
                logger.warning("%s[%r]=%r lies outside %r", where, key, value, current)
        elif isinstance(current, dict) and _is_grid_dict(current) and value not in current[_GRID]:
            logger.warning("%s[%r]=%r is not one of the grid values", where, key, value)
        merged[key] = value
    return merged


class BasicVariantGenerator(Searcher):
    """Grid search and random sampling over the param space (the default searcher).

    The trials come in this order:

    1. ``points_to_evaluate``, each a (partial) config: its values are used as given and
       the rest is taken from the param space. A point counts as one of the
       ``num_samples`` samples; grid axes it does not set are expanded, so a point can
       give several trials.
    2. The whole grid, repeated for each of the remaining ``num_samples`` samples, with
       fresh random values for every trial (``num_samples < 0``: without end).

    Configs are generated lazily, one per :meth:`suggest`, so huge grids and endless
    sampling cost no memory.

    Args:
        points_to_evaluate: Configs to run first, e.g. known good settings.
        max_concurrent: At most this many suggested trials may be unfinished at once;
            :meth:`suggest` returns None until one completes. 0 means no limit.
        constant_grid_search: Sample the random values once per sample and keep them
            constant across the grid points, instead of resampling at every point.
        random_state: None, an int seed, a numpy ``Generator`` or ``RandomState``. A seed
            reproduces the exact sequence of configs, ``sample_from`` functions that use
            ``np.random`` or ``random`` included.

    Example:
        >>> searcher = BasicVariantGenerator(points_to_evaluate=[{"a": 2}], random_state=0)
        >>> searcher.set_search_properties(
        ...     None, None, {"a": grid_search([1, 2]), "b": randint(0, 3)}, num_samples=3
        ... )
        True
        >>> searcher.total_samples  # 1 (the point) + 2 samples x 2 grid points
        5
    """

    def __init__(
        self,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        max_concurrent: int = 0,
        constant_grid_search: bool = False,
        random_state: RandomStateLike = None,
    ) -> None:
        super().__init__()
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise ConfigTypeError(f"`max_concurrent` must be an int, got {max_concurrent!r}")
        if max_concurrent < 0:
            raise ConfigError(f"`max_concurrent` must be >= 0, got {max_concurrent}")
        self._points = _check_points(points_to_evaluate)
        self._max_concurrent = max_concurrent
        self._constant_grid_search = bool(constant_grid_search)
        self._seeded = random_state is not None
        self._rng = _as_generator(random_state)
        self._param_space: dict[str, Any] = {}
        self._num_samples = 1
        # Position: block b is point b for b < len(points), then the repeats of the space.
        self._block = 0
        self._index = 0  # next grid point inside the current block
        self._constants: dict[Any, Any] | None = None  # constant_grid_search values of the block
        self._live: set[str] = set()
        self._spaces: dict[int, _Space] = {}  # compiled blocks (a cache, not state)

    # ----------------------------------------------------------------- protocol

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Store the param space (validated) and ``num_samples`` (default 1; < 0: endless)."""
        super().set_search_properties(metric, mode, config)
        _Space(config)  # validates
        num_samples = spec.get("num_samples", 1)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int):
            raise ConfigTypeError(f"`num_samples` must be an int, got {num_samples!r}")
        self._param_space = config if config is not None else {}
        self._num_samples = num_samples
        self._spaces.clear()
        return True

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config, None while ``max_concurrent`` trials are live, or ``FINISHED``."""
        if not self._has_next():
            return FINISHED
        if self._max_concurrent and len(self._live) >= self._max_concurrent:
            return None
        config = self._next_config()
        self._live.add(trial_id)
        return config

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Free the trial's ``max_concurrent`` slot."""
        self._live.discard(trial_id)

    def is_finished(self) -> bool:
        """True once every config has been suggested."""
        return not self._has_next()

    @property
    def total_samples(self) -> int | None:
        """How many configs this searcher gives in total (None when endless)."""
        if self._num_samples < 0:
            return None
        n_points = len(self._points)
        total = sum(self._space(b).count for b in range(n_points))
        repeats = max(0, self._num_samples - n_points)
        return total + (repeats * self._space(n_points).count if repeats else 0)

    # ----------------------------------------------------------------- generation

    def _space(self, block: int) -> _Space:
        key = block if block < len(self._points) else -1
        if key not in self._spaces:
            if key >= 0:
                spec = _merge(self._param_space, self._points[key], f"points_to_evaluate[{key}]")
            else:
                spec = self._param_space
            self._spaces[key] = _Space(spec)
        return self._spaces[key]

    def _block_exists(self, block: int) -> bool:
        return self._num_samples < 0 or block < max(len(self._points), self._num_samples)

    def _has_next(self) -> bool:
        block, index = self._block, self._index
        while self._block_exists(block):
            if index < self._space(block).count:
                return True
            block, index = block + 1, 0
        return False

    def _next_config(self) -> dict[str, Any]:
        while self._index >= self._space(self._block).count:
            self._block, self._index, self._constants = self._block + 1, 0, None
        space = self._space(self._block)
        fn_state = self._rng if self._seeded else None
        if self._constant_grid_search and self._constants is None:
            self._constants = space.constants(self._rng, fn_state)
        _, config = space.variant(self._index, self._rng, fn_state, self._constants)
        self._index += 1
        return config

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """The generator position, RNG state and settings, for :meth:`save`.

        The param space is included when it can be pickled; a space holding lambdas
        (``sample_from``) is left out and must be set again with
        :meth:`set_search_properties` (before or after :meth:`set_state`).
        """
        try:
            pickle.dumps(self._param_space)
            param_space = self._param_space
        except Exception:  # lambdas and other unpicklable values
            param_space = None
        return {
            "version": _STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "points": self._points,
            "max_concurrent": self._max_concurrent,
            "constant_grid_search": self._constant_grid_search,
            "seeded": self._seeded,
            "rng": self._rng,
            "param_space": param_space,
            "num_samples": self._num_samples,
            "block": self._block,
            "index": self._index,
            "constants": self._constants,
            "live": set(self._live),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a state made by :meth:`get_state`."""
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(
                f"BasicVariantGenerator state version must be {_STATE_VERSION}, "
                f"got {state.get('version')!r}"
            )
        self._metric, self._mode = state["metric"], state["mode"]
        self._points = state["points"]
        self._max_concurrent = state["max_concurrent"]
        self._constant_grid_search = state["constant_grid_search"]
        self._seeded = state["seeded"]
        self._rng = state["rng"]
        if state["param_space"] is not None:
            self._param_space = state["param_space"]
        self._num_samples = state["num_samples"]
        self._block, self._index = state["block"], state["index"]
        self._constants = state["constants"]
        self._live = set(state["live"])
        self._spaces.clear()
