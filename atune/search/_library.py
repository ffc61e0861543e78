"""What every searcher backed by an optimisation library shares.

An integration (Optuna, HyperOpt, BayesOpt, ...) imports its library lazily, checks
``points_to_evaluate`` and seeds the same way, needs a search space plus ``metric`` and
``mode`` before its first suggestion, refuses a space given twice (to the searcher and
in the Tuner's ``param_space``), runs the library's model work in a worker thread one
call at a time, and saves a versioned state. :class:`LibrarySearcher` holds all of it,
so each integration module contains only the translation to its library.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.to_thread
import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import Searcher
from atune.search._flat import find_domains, has_domains, param_name, split_space

__all__ = [
    "LibrarySearcher",
    "ignore_warnings",
    "import_library",
    "own_global_rng",
    "quiet_logger",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)


def import_library(module: str, searcher: str, extra: str, what: str | None = None) -> Any:
    """Import ``module``, or raise an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'{searcher} needs {what or module}: pip install "atune[{extra}]" ({exc})'
        ) from exc


def quiet_logger(name: str, level: int = logging.WARNING) -> None:
    """Raise a library logger to ``level`` unless the user configured it already."""
    lib_logger = logging.getLogger(name)
    if lib_logger.level == logging.NOTSET:
        lib_logger.setLevel(level)


def ignore_warnings(*entries: tuple[type[Warning], str, str]) -> None:
    """Ignore the library warnings ``(category, message regex, module regex)``.

    Narrow process-wide filters, added once each, rather than ``catch_warnings``, which is
    not thread-safe: the libraries run in worker threads while the event loop goes on.
    """
    present = {
        (f[2], f[1].pattern if f[1] else "", f[3].pattern if f[3] else "")
        for f in warnings.filters
        if f[0] == "ignore"
    }
    for category, message, module in entries:
        if (category, message, module) not in present:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)


#: Libraries that draw from numpy's global RandomState (HpBandSter, ZOOpt) take turns.
_GLOBAL_RNG_LOCK = threading.RLock()


@contextmanager
def own_global_rng(owner: Any, attr: str = "_rng_state") -> Iterator[None]:
    """Make ``owner.<attr>`` (a ``np.random.get_state()`` tuple) numpy's global state.

    For libraries that draw from ``np.random`` directly: inside the block the library
    sees the searcher's own random state, which is saved back afterwards, and the
    user's global state is put back as it was. One block runs at a time in the process.
    """
    with _GLOBAL_RNG_LOCK:
        saved = np.random.get_state()
        np.random.set_state(getattr(owner, attr))
        try:
            yield
        finally:
            setattr(owner, attr, np.random.get_state())
            np.random.set_state(saved)


def _same_space(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # values whose == is not a bool (numpy arrays)
        return False


class LibrarySearcher(Searcher):
    """Base class of the searchers that drive an optimisation library.

    Subclasses set :attr:`_STATE_FIELDS` (the attribute names, without the leading
    underscore, that :meth:`get_state` saves) and call the helpers below; they override
    :meth:`_after_restore` to rebuild what is not pickled (e.g. converted spaces).
    """

    #: Version of the saved state; bump when the fields change meaning.
    _STATE_VERSION: ClassVar[int] = 1
    #: Attributes saved by :meth:`get_state`, named without the leading underscore.
    _STATE_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: The constructor argument that takes the searcher's own space (for messages).
    _SPACE_ARG: ClassVar[str] = "space"

    _lock: anyio.Lock | None = None
    #: Values copied into every suggested config (set by each subclass).
    _constants: dict[str, Any]
    #: The Tuner ``param_space`` last accepted (saved with the state).
    _tuner_space: Any = None

    @property
    def _name(self) -> str:
        return type(self).__name__

    # ----------------------------------------------------------------- properties

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and param space (see the subclass's docs).

        A searcher that already searched this very param space (one restored from an
        earlier experiment and given to a new Tuner with the same ``param_space``) keeps
        its model and continues the search.
        """
        if self._tuner_space is not None and _same_space(config, self._tuner_space):
            self._set_metric_mode(metric, mode)
            return True
        accepted = self._set_search_properties(metric, mode, config, **spec)
        if accepted:
            self._tuner_space = config
        return accepted

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Subclasses build their space here; the default only takes metric and mode."""
        self._set_metric_mode(metric, mode)
        return True

    def _set_metric_mode(self, metric: Any, mode: Any) -> None:
        """Fill in the experiment's metric and mode where the searcher has none."""
        self._fill_metric_mode(metric, mode)

    # ----------------------------------------------------------------- arguments

    def _check_points(self, points: Any) -> list[dict[str, Any]]:
        """``points_to_evaluate`` as a list of dicts (a copy), or a ConfigTypeError."""
        if points is None:
            return []
        if not isinstance(points, (list, tuple)) or not all(isinstance(p, Mapping) for p in points):
            raise ConfigTypeError(
                f"{self._name}: `points_to_evaluate` must be a list of dicts, got {points!r}"
            )
        return [dict(p) for p in points]

    def _check_seed(self, seed: Any, name: str = "seed") -> int | None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"{self._name}: `{name}` must be None or an int >= 0, got {seed!r}")
        return seed

    def _check_int(self, value: Any, name: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigTypeError(f"{self._name}: `{name}` must be an int, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{self._name}: `{name}` must be >= {minimum}, got {value}")
        return value

    # ----------------------------------------------------------------- readiness

    def _require_ready(self, has_space: bool) -> None:
        """Raise ConfigError unless there is a space, a metric and a mode."""
        if not has_space:
            raise ConfigError(
                f"{self._name} has no search space: pass `{self._SPACE_ARG}` to {self._name} "
                "or a `param_space` to the Tuner"
            )
        if self._metric is None or self._mode is None:
            raise ConfigError(
                f"{self._name} needs `metric` and `mode`: pass them to {self._name} or to "
                f"TuneConfig, got metric={self._metric!r}, mode={self._mode!r}"
            )

    def _reject_second_space(self, params: Iterable[str]) -> None:
        """The searcher has its own space; the Tuner's ``param_space`` defines more."""
        names = sorted(str(p) for p in params)
        if names and self._tuner_space is not None:
            raise ConfigError(
                f"{self._name} already searches the param_space it was given before (it was "
                "restored, or used by another Tuner), and this Tuner's `param_space` is "
                "different; pass the same param_space to continue that search, or build a "
                f"new {self._name} for a new one"
            )
        if names:
            raise ConfigError(
                f"{self._name} was given its own `{self._SPACE_ARG}`, so the Tuner's "
                f"`param_space` may hold only constants, but it defines search parameters "
                f"{names}; give the space in one place"
            )

    def _take_param_space(
        self, config: Any, has_space: bool, set_space: Callable[[Any], object]
    ) -> bool:
        """Search the Tuner's ``param_space`` (``set_space(config)``) unless ``has_space``.

        A searcher built with its own space (``has_space``) keeps it; the Tuner's param
        space may then hold only constants, which are merged into every config.
        """
        if has_space:
            self._keep_tuner_constants(config)
        elif config is not None:
            set_space(config)
        return True

    def _keep_tuner_constants(self, config: Any) -> None:
        """The searcher has its own space: keep the Tuner's ``param_space`` as constants.

        Nested as given (for searchers that build configs from the space's shape);
        raises ConfigError when it defines search parameters too.
        """
        if config and has_domains(config):
            self._reject_second_space(param_name(p) for p, _ in find_domains(config, "-"))
        self._constants = dict(config or {})

    def _merge_tuner_constants(self, config: Any, native: tuple[type, ...] = ()) -> None:
        """The searcher has its own space: merge the Tuner's constants into its own.

        Flat (``"a/b"`` keys), under the searcher's own constants, which win; raises
        ConfigError when the ``param_space`` defines search parameters (domains, grid
        axes, or values of a ``native`` type) too.
        """
        params, constants = split_space(config or {}, "param_space", native=native)
        self._reject_second_space(params)
        self._constants = {**constants, **self._constants}

    def _objective(self, trial_id: str, result: Mapping[str, Any] | None) -> float | None:
        """The trial's ``metric`` as a finite float, or None (with a warning when absent)."""
        metric = self._metric
        if not result or metric not in result:
            logger.warning(
                "%s: trial %s ended without reporting %r; it is not used by the model",
                self._name,
                trial_id,
                metric,
            )
            return None
        try:
            value = float(result[metric])  # type: ignore[index]
        except (TypeError, ValueError):
            logger.warning(
                "%s: trial %s reported a non-numeric %r: %r",
                self._name,
                trial_id,
                metric,
                result[metric],  # type: ignore[index]
            )
            return None
        return value if math.isfinite(value) else None

    def _loss(self, trial_id: str, result: Mapping[str, Any] | None) -> float | None:
        """The objective as a value to minimise (negated for ``mode="max"``)."""
        value = self._objective(trial_id, result)
        if value is None:
            return None
        return -value if self._mode == "max" else value

    # ----------------------------------------------------------------- model work

    async def _run_model(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in a worker thread, one model call at a time."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            return await anyio.to_thread.run_sync(func, *args)

    # ----------------------------------------------------------------- state

    async def snapshot(self) -> dict[str, Any]:
        """The state, taken between model calls: waits (asynchronously) for one in progress."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            return await self._snapshot_between_model_calls()

    async def _snapshot_between_model_calls(self) -> dict[str, Any]:
        """Called by :meth:`snapshot` with no model call running (default: ``get_state``)."""
        return self.get_state()

    def get_state(self) -> dict[str, Any]:
        """The fields named by ``_STATE_FIELDS``, with metric, mode and a version."""
        state = {
            "version": self._STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "tuner_space": self._tuner_space,
        }
        for field in self._STATE_FIELDS:
            state[field] = getattr(self, f"_{field}")
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a state made by :meth:`get_state`."""
        if not isinstance(state, dict) or state.get("version") != self._STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise ConfigError(
                f"{self._name} cannot restore this state: it has version {found!r}, this "
                f"atune reads version {self._STATE_VERSION}; start the search afresh"
            )
        missing = [f for f in self._STATE_FIELDS if f not in state]
        if missing:
            raise ConfigError(f"{self._name} state is missing the fields {missing}")
        self._metric, self._mode = state["metric"], state["mode"]
        self._tuner_space = state.get("tuner_space")
        for field in self._STATE_FIELDS:
            setattr(self, f"_{field}", state[field])
        self._lock = None
        self._after_restore()

    def _after_restore(self) -> None:
        """Rebuild derived attributes after :meth:`set_state` (default: nothing)."""
