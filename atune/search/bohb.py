"""BOHB's model-based sampler from HpBandSter (``pip install "atune[bohb]"``).

BOHB (Falkner et al., 2018) fits, for each budget, kernel density estimates of the good
and the bad configurations seen at that budget, and proposes the candidate that
maximises their ratio, using the largest budget that has a model. Pair
:class:`TuneBOHB` with :class:`atune.schedulers.HyperBandForBOHB`, which decides the
budgets and tells the searcher each trial's budget in ``result["hyperband_info"]``.

HpBandSter 0.7.4 was written for ConfigSpace 0.4. It runs on ConfigSpace 1.x: the APIs
it calls (``get_hyperparameters``, ``get_dictionary``, ...) still exist there, with
DeprecationWarnings, which this module silences around its calls. ConfigSpace 1.x
dropped the ``q`` argument of hyperparameters and needs bounds on normal
hyperparameters, so quantized domains are searched as integer multiples of ``q`` and
``normal``/``randn`` domains are not supported.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from atune._metric import is_rankable, metric_number
from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import _q_value
from atune.search._flat import describe, flatten_point, python_value, split_space, unflatten
from atune.search._library import (
    LibrarySearcher,
    ignore_warnings,
    import_library,
    own_global_rng,
    quiet_logger,
)
from atune.search.sample import _category_index

__all__ = ["TuneBOHB"]

logger = logging.getLogger(__name__)

#: The options of HpBandSter's BOHB config generator that ``bohb_config`` may set.
BOHB_OPTIONS = (
    "min_points_in_model",
    "top_n_percent",
    "num_samples",
    "random_fraction",
    "bandwidth_factor",
    "min_bandwidth",
)
#: The budget of a completed trial whose result names none (no HyperBand, no iteration).
DEFAULT_BUDGET = 1.0
#: The result key HyperBandForBOHB fills in (``{"budget": milestone}`` at milestones).
HYPERBAND_INFO = "hyperband_info"


def _import_libraries() -> tuple[Any, Any]:
    """``(ConfigSpace, BOHB class)``, or an ImportError naming the extra."""
    cs = import_library("ConfigSpace", "TuneBOHB", "bohb")
    module = import_library(
        "hpbandster.optimizers.config_generators.bohb", "TuneBOHB", "bohb", what="hpbandster"
    )
    quiet_logger("hpbandster")
    ignore_warnings(*_IGNORED_WARNINGS)
    return cs, module.BOHB


#: (category, message regex, module regex) of the warnings silenced while BOHB works:
#: HpBandSter calls ConfigSpace APIs that 1.x deprecates, and statsmodels' KDE announces
#: a change of its default random generator (BOHB's KDEs draw nothing from it).
_IGNORED_WARNINGS = (
    (DeprecationWarning, "", r"hpbandster\."),
    (FutureWarning, r".*entropy initialized numpy\.random\.Generator", ""),
)


class _Job:
    """The finished-run record HpBandSter's ``new_result`` reads."""

    def __init__(self, loss: float, budget: float, config: dict[str, Any]) -> None:
        self.result = {"loss": loss}
        self.kwargs = {"budget": budget, "config": dict(config)}
        self.exception = None


@dataclass(frozen=True)
class _Param:
    """How one atune domain is searched: BOHB values <-> config values.

    ``kind`` is ``"float"``, ``"int"``, ``"multiple"`` (BOHB searches the integer ``k``
    of the value ``k * q``) or ``"choice"`` (BOHB searches the category's index).
    """

    kind: str
    q: Any = None
    categories: tuple[Any, ...] = ()

    def to_config(self, raw: Any) -> Any:
        raw = python_value(raw)
        if self.kind == "float":
            return float(raw)
        if self.kind == "int":
            return int(raw)
        if self.kind == "multiple":
            k = int(raw)
            return int(k * self.q) if isinstance(self.q, int) else _q_value(k, self.q)
        return copy.deepcopy(self.categories[int(raw)])

    def to_bohb(self, value: Any, where: str) -> Any:
        """A config value (e.g. from ``points_to_evaluate``) as BOHB's value."""
        if self.kind == "choice":
            index = _category_index(self.categories, value)
            if index is None:
                raise ConfigError(
                    f"`{where}` is {value!r}, which is not one of the choices "
                    f"{list(self.categories)}"
                )
            return index
        if metric_number(value) is None:
            raise ConfigTypeError(f"`{where}` must be a number, got {value!r}")
        if self.kind == "float":
            return float(value)
        if self.kind == "multiple":
            return round(float(value) / self.q)
        if float(value) != round(float(value)):
            raise ConfigError(f"`{where}` must be an integer, got {value!r}")
        return round(float(value))


def _hyperparameter(cs: Any, name: str, domain: Any) -> tuple[Any, _Param] | Any:
    """One atune domain as ``(ConfigSpace hyperparameter, _Param)``, or ``_Fixed(value)``."""
    spec = describe(domain, name, "TuneBOHB")
    if spec.kind == "categorical":
        if len(spec.categories) == 1:
            return _Fixed(spec.categories[0])
        hp = cs.CategoricalHyperparameter(name, list(range(len(spec.categories))))
        return hp, _Param("choice", categories=spec.categories)
    if spec.kind == "normal":
        raise ConfigError(
            f"TuneBOHB cannot search the normal distribution {name!r} = {domain!r}: "
            "ConfigSpace 1.x needs bounds on normal hyperparameters. Use a bounded domain "
            "(atune.uniform(lower, upper)), or pass a ConfigSpace.ConfigurationSpace with "
            "NormalFloatHyperparameter(name, mu, sigma, lower, upper) as `space`"
        )
    if spec.q is not None:  # ConfigSpace 1.x has no q: search the multipliers k of k * q
        found = spec.q_range
        assert found is not None  # the domain checked it
        k_lo, k_hi = found
        param = _Param("multiple", q=spec.q)
        if k_lo == k_hi:
            return _Fixed(param.to_config(k_lo))
        hp = cs.UniformIntegerHyperparameter(name, k_lo, k_hi, log=spec.log and k_lo >= 1)
        return hp, param
    if spec.kind == "int":
        upper = spec.inclusive_upper  # randint excludes its upper bound
        if upper == spec.lower:
            return _Fixed(spec.lower)
        hp = cs.UniformIntegerHyperparameter(name, spec.lower, upper, log=spec.log)
        return hp, _Param("int")
    hp = cs.UniformFloatHyperparameter(name, spec.lower, spec.upper, log=spec.log)
    return hp, _Param("float")


@dataclass(frozen=True)
class _Fixed:
    """A domain with a single possible value: a constant, not searched."""

    value: Any


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything else (bools included)."""
    number = metric_number(value)
    return number if number is not None and is_rankable(number) else None


class TuneBOHB(LibrarySearcher):
    """BOHB's model-based sampler (HpBandSter), for use with ``HyperBandForBOHB``.

    BOHB keeps every result reported at a budget (``result["hyperband_info"]["budget"]``,
    filled in by :class:`~atune.schedulers.HyperBandForBOHB` at its milestones) and
    fits, per budget, a density model of the good and of the bad configurations; new
    configurations come from the model of the largest budget that has one (random ones
    until then, and a ``random_fraction`` of them always).

    Args:
        space: atune domains (``uniform``/``loguniform`` → float, ``randint``/
            ``lograndint`` → integer, ``choice`` → categorical; quantized domains are
            searched as integer multiples of ``q``), nested dicts giving parameters
            named ``"a/b"``, or a native ``ConfigSpace.ConfigurationSpace``. None: take
            the Tuner's ``param_space``.
        bohb_config: Options of HpBandSter's BOHB config generator:
            ``min_points_in_model``, ``top_n_percent``, ``num_samples``,
            ``random_fraction``, ``bandwidth_factor``, ``min_bandwidth``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"`` (BOHB minimises a loss; ``"max"`` negates).
        points_to_evaluate: Configs to run first; each must set every parameter.
        seed: Seeds the ConfigurationSpace and BOHB's sampling, so that the same
            results give the same suggestions. None: fresh randomness.
        max_concurrent: Suggest nothing while this many trials run (paused trials do
            not count); 0: no limit.

    Example:
        >>> import atune as tune
        >>> from atune.schedulers import HyperBandForBOHB
        >>> searcher = TuneBOHB(
        ...     space={"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.randint(1, 5)},
        ...     metric="loss", mode="min", seed=0,
        ... )
        >>> scheduler = HyperBandForBOHB(max_t=27, reduction_factor=3)
        >>> # tune.Tuner(train, tune_config=tune.TuneConfig(search_alg=searcher,
        >>> #            scheduler=scheduler, num_samples=50))
    """

    _STATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "bohb_config",
        "seed",
        "max_concurrent",
        "space",
        "params",
        "fixed",
        "constants",
        "bohber",
        "rng_state",
        "points",
        "trial_configs",
        "budgets",
        "running",
        "paused",
    )

    def __init__(
        self,
        space: dict[str, Any] | Any = None,
        bohb_config: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        seed: int | None = None,
        max_concurrent: int = 0,
    ) -> None:
        cs, _ = _import_libraries()
        super().__init__(metric, mode)
        self._bohb_config = self._check_bohb_config(bohb_config)
        self._seed = self._check_seed(seed)
        self._max_concurrent = self._check_int(max_concurrent, "max_concurrent")
        self._raw_points = self._check_points(points_to_evaluate)
        self._space: Any = None  # the ConfigurationSpace BOHB searches
        self._params: dict[str, _Param] | None = None  # None for a native space
        self._fixed: dict[str, Any] = {}
        self._constants: dict[str, Any] = {}
        self._bohber: Any = None
        self._rng_state: Any = None
        self._points: list[dict[str, Any]] = []  # BOHB values, run first
        self._trial_configs: dict[str, dict[str, Any]] = {}  # trial id -> BOHB values
        self._budgets: dict[str, set[float]] = {}  # trial id -> budgets recorded
        self._running: set[str] = set()
        self._paused: set[str] = set()
        self._warned_no_budget = False
        #: Results carry HyperBandForBOHB's budgets (``hyperband_info``).
        self._budgets_from_scheduler = False
        if isinstance(space, cs.ConfigurationSpace):
            self._build_native(space)
        elif space is not None and not isinstance(space, dict):
            raise ConfigTypeError(
                "TuneBOHB: `space` must be a dict of atune domains or a "
                f"ConfigSpace.ConfigurationSpace, got {type(space).__name__}"
            )
        elif space:
            self._build(space, "space")

    # ----------------------------------------------------------------- arguments

    def _check_bohb_config(self, config: Any) -> dict[str, Any]:
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise ConfigTypeError(f"TuneBOHB: `bohb_config` must be a dict, got {config!r}")
        unknown = sorted(set(config) - set(BOHB_OPTIONS))
        if unknown:
            raise ConfigError(
                f"TuneBOHB: `bohb_config` accepts only {list(BOHB_OPTIONS)}, got {unknown}"
            )
        for key, value in config.items():
            if key == "min_points_in_model" and value is None:
                continue
            number = _number(value)
            integer = key in ("min_points_in_model", "num_samples")
            bad = number is None or (integer and not isinstance(value, (int, np.integer)))
            if not bad:
                assert number is not None
                if key == "random_fraction":
                    bad = not 0 <= number <= 1
                elif key == "top_n_percent":
                    bad = not 0 < number < 100
                else:
                    bad = number <= 0
            if bad:
                want = {
                    "min_points_in_model": "None or an int >= 1",
                    "num_samples": "an int >= 1",
                    "random_fraction": "a number in [0, 1]",
                    "top_n_percent": "a number in (0, 100)",
                }.get(key, "a number > 0")
                raise ConfigError(f"TuneBOHB: `bohb_config[{key!r}]` must be {want}, got {value!r}")
        return dict(config)

    # ----------------------------------------------------------------- setup

    def _build(self, space: dict[str, Any], where: str) -> None:
        """Convert an atune space to a ConfigurationSpace and build BOHB."""
        cs, _ = _import_libraries()
        params, self._constants = split_space(space, where, native=(), searcher="TuneBOHB")
        if not params:
            return
        config_space = cs.ConfigurationSpace()
        converted: dict[str, _Param] = {}
        hyperparameters = []
        for name, domain in params.items():
            out = _hyperparameter(cs, name, domain)
            if isinstance(out, _Fixed):
                self._fixed[name] = out.value
            else:
                hyperparameters.append(out[0])
                converted[name] = out[1]
        if not hyperparameters:
            raise ConfigError(
                f"TuneBOHB: every parameter of `{where}` has a single possible value; "
                "there is nothing to search"
            )
        config_space.add(hyperparameters)
        self._params = converted
        self._setup(config_space)

    def _build_native(self, space: Any) -> None:
        if not list(space.keys()):
            raise ConfigError("TuneBOHB: the ConfigurationSpace given as `space` is empty")
        self._params = None
        self._setup(copy.deepcopy(space))  # seeding must not change the caller's space

    def _setup(self, config_space: Any) -> None:
        _, bohb_class = _import_libraries()
        if self._seed is not None:
            config_space.seed(self._seed)
        self._rng_state = np.random.RandomState(self._seed).get_state()
        self._space = config_space
        try:
            self._bohber = bohb_class(config_space, **self._bohb_config)
        except RuntimeError as exc:  # e.g. an OrdinalHyperparameter
            raise ConfigError(f"TuneBOHB cannot search this space: {exc}") from exc
        self._points = [self._point_values(p, i) for i, p in enumerate(self._raw_points)]

    def _point_values(self, point: dict[str, Any], index: int) -> dict[str, Any]:
        """``points_to_evaluate[index]`` as BOHB values, checked against the space."""
        cs, _ = _import_libraries()
        where = f"points_to_evaluate[{index}]"
        names = set(self._space.keys()) | set(self._fixed)
        flat = flatten_point(point, names, where=where)
        missing = sorted(set(self._space.keys()) - set(flat))
        if missing:
            raise ConfigError(
                f"TuneBOHB: `{where}` must set every parameter of the space; it lacks {missing}"
            )
        values = {}
        for name, value in flat.items():
            if name in self._fixed:
                continue
            param = self._params.get(name) if self._params is not None else None
            values[name] = param.to_bohb(value, f"{where}[{name!r}]") if param else value
        try:
            cs.Configuration(self._space, values=values)
        except Exception as exc:
            raise ConfigError(f"TuneBOHB: `{where}` does not fit the search space: {exc}") from exc
        return values

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless one was given) param space."""
        self._fill_metric_mode(metric, mode)
        if self._space is None:
            self._build(config or {}, "param_space")
            return True
        self._merge_tuner_constants(config)
        return True

    # ----------------------------------------------------------------- model work

    def _with_rng(self, func: Any, *args: Any) -> Any:
        """Run ``func`` with this searcher's RandomState as numpy's global one."""
        with own_global_rng(self), np.errstate(divide="ignore", invalid="ignore"):
            return func(*args)

    def _sample(self) -> dict[str, Any]:
        config, _info = self._with_rng(self._bohber.get_config, None)
        return dict(config)

    def _observe(self, values: dict[str, Any], budget: float, loss: float) -> None:
        self._with_rng(self._bohber.new_result, _Job(loss, budget, values))

    def _config(self, values: dict[str, Any]) -> dict[str, Any]:
        if self._params is None:
            flat = {name: python_value(v) for name, v in values.items()}
        else:
            flat = {name: self._params[name].to_config(v) for name, v in values.items()}
        flat.update(copy.deepcopy(self._fixed))
        return unflatten({**copy.deepcopy(self._constants), **flat})

    # ----------------------------------------------------------------- protocol

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """A config from ``points_to_evaluate``, then from BOHB's model.

        Returns None while ``max_concurrent`` trials are running.
        """
        self._require_ready(self._space is not None)
        ignore_warnings(*_IGNORED_WARNINGS)
        if self._max_concurrent and len(self._running) >= self._max_concurrent:
            return None
        values = self._points.pop(0) if self._points else await self._run_model(self._sample)
        self._trial_configs[trial_id] = values
        self._budgets[trial_id] = set()
        self._running.add(trial_id)
        return self._config(values)

    def _budget(self, result: Mapping[str, Any], final: bool) -> float | None:
        info = result.get(HYPERBAND_INFO)
        if isinstance(info, Mapping):
            # Under HyperBandForBOHB only its milestones are budgets; a trial it cut
            # between two milestones was recorded at the last one it reached.
            self._budgets_from_scheduler = True
            return _number(info.get("budget"))
        if self._budgets_from_scheduler:
            # A final result the scheduler did not see (a stop criterion ended the
            # trial): not at a milestone, so not a budget. Ray Tune ignores it too.
            return None
        if not self._warned_no_budget:
            self._warned_no_budget = True
            logger.info(
                "TuneBOHB: results carry no %r; using training_iteration as the budget "
                "(use HyperBandForBOHB as the scheduler to get BOHB's budgets)",
                HYPERBAND_INFO,
            )
        budget = _number(result.get("training_iteration"))
        if budget is None and final:
            return DEFAULT_BUDGET
        return budget

    async def _record(self, trial_id: str, result: Mapping[str, Any], final: bool) -> None:
        values = self._trial_configs.get(trial_id)
        if values is None or self._metric not in result:
            if final and values is not None:
                self._objective(trial_id, result)  # logs the missing metric
            return
        budget = self._budget(result, final)
        if budget is None or budget in self._budgets[trial_id]:
            return
        loss = self._loss(trial_id, result)
        if loss is None:
            return
        self._budgets[trial_id].add(budget)
        ignore_warnings(*_IGNORED_WARNINGS)
        await self._run_model(self._observe, values, budget, loss)

    async def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Record the result when it carries a budget (a HyperBandForBOHB milestone)."""
        if trial_id in self._trial_configs and trial_id not in self._paused:
            self._running.add(trial_id)
        await self._record(trial_id, result, final=False)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Record the final result (unless the trial failed) and forget the trial."""
        if not error and result:
            await self._record(trial_id, result, final=True)
        self._trial_configs.pop(trial_id, None)
        self._budgets.pop(trial_id, None)
        self._running.discard(trial_id)
        self._paused.discard(trial_id)

    async def on_pause(self, trial_id: str) -> None:
        """HyperBandForBOHB paused the trial: it no longer counts as running."""
        if trial_id in self._trial_configs:
            self._paused.add(trial_id)
            self._running.discard(trial_id)

    async def on_unpause(self, trial_id: str) -> None:
        """HyperBandForBOHB resumes the trial: it counts as running again."""
        if trial_id in self._trial_configs:
            self._paused.discard(trial_id)
            self._running.add(trial_id)

    # ----------------------------------------------------------------- state

    def _after_restore(self) -> None:
        self._raw_points = []
        self._warned_no_budget = False
        self._budgets_from_scheduler = False
