"""Bayesian optimisation with Meta's Ax platform (``pip install "atune[ax]"``).

Builds on Ax 1.x's supported API, :class:`ax.api.Client` (``configure_experiment``,
``configure_optimization``, ``get_next_trials``, ``complete_trial``, ...). The legacy
``ax.service.ax_client.AxClient`` that Ray Tune's AxSearch wraps is deprecated in
Ax 1.x and is refused with a message naming its replacement.

The space conversion lives in :mod:`atune.search._ax_space`, the library glue (quiet
import, client checks, JSON snapshots) in :mod:`atune.search._ax_client`.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.to_thread

from atune._metric import is_rankable, metric_number
from atune.errors import ConfigError
from atune.search._ax_client import (
    ax_error,
    check_client,
    dump_client,
    import_ax,
    load_client,
    objective_name,
)
from atune.search._ax_space import check_constraints, convert_space
from atune.search._base import FINISHED
from atune.search._flat import flatten_point, python_value, unflatten
from atune.search._library import LibrarySearcher
from atune.search.sample import _category_index

__all__ = ["AxSearch"]

logger = logging.getLogger(__name__)


class AxSearch(LibrarySearcher):
    """Bayesian optimisation (a GP fitted by BoTorch) via Meta's Ax, on ``ax.api.Client``.

    Ax starts with a few quasi-random (Sobol) trials, the centre of the space first,
    then fits a Gaussian process to the results and proposes each next config by
    optimising an acquisition function. While Ax waits for the results of its Sobol
    trials it cannot propose more, and :meth:`suggest` answers None ("not now").

    atune domains are converted (``uniform`` → float range, ``loguniform`` → float
    range on a log scale, ``randint(lo, hi)`` → int range ``[lo, hi - 1]``,
    ``lograndint`` → int range on a log scale, ``choice`` → choice parameter,
    ``quniform``/``qrandint`` → the grid of their values); nested dicts become
    parameters named ``"a/b"``; other values are constants copied into every config.

    Args:
        space: The search space: a dict of atune domains (nested dicts allowed), or
            Ax's native form, a list of ``ax.api.RangeParameterConfig`` /
            ``ChoiceParameterConfig`` or of Ray-style parameter dicts
            (``{"name": "x", "type": "range", "bounds": [0, 1]}``, ``"choice"`` with
            ``"values"``, ``"fixed"`` with ``"value"``). None: take the Tuner's
            ``param_space``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: Configs to run first; each is attached to the Ax
            experiment as a trial and must set every searched parameter.
        parameter_constraints: Ax parameter constraints, e.g. ``["x1 + x2 <= 1.5"]``
            (linear, on range parameters; names must be plain identifiers).
        outcome_constraints: Ax outcome constraints on other reported metrics, e.g.
            ``["accuracy >= 0.9"]``; each metric named is read from the trial's final
            result.
        ax_client: A configured ``ax.api.Client`` (``configure_experiment`` called;
            ``configure_optimization`` too, or ``metric`` and ``mode`` given here).
            Then ``space``, the constraints and ``ax_kwargs`` must be None. The
            deprecated ``ax.service.ax_client.AxClient`` is refused.
        seed: atune extension: Ax's random seed (the Sobol points and the model's
            random restarts), so that the suggestions reproduce. None: unseeded.
        **ax_kwargs: Passed on to Ax: ``storage_config`` to ``ax.api.Client``;
            ``method``, ``initialization_budget``, ``initialize_with_center``,
            ``min_observed_initialization_trials``, ``torch_device`` (and the other
            arguments of ``Client.configure_generation_strategy``) to that method;
            ``random_seed`` is another name for ``seed``.

    Example:
        >>> searcher = AxSearch(metric="loss", mode="min", seed=0)
        >>> tuner = atune.Tuner(  # doctest: +SKIP
        ...     objective,
        ...     param_space={"x": atune.uniform(-5, 5), "lr": atune.loguniform(1e-4, 1e-1)},
        ...     tune_config=atune.TuneConfig(search_alg=searcher, num_samples=30),
        ... )
    """

    _STATE_FIELDS = (
        "snapshot",
        "params",
        "parameter_constraints",
        "outcome_constraints",
        "gs_kwargs",
        "configured",
        "seed",
        "constants",
        "choices",
        "raw_points",
        "points",
        "live",
        "metric_names",
    )

    def __init__(
        self,
        space: dict[str, Any] | list[Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        parameter_constraints: list[str] | None = None,
        outcome_constraints: list[str] | None = None,
        ax_client: Any = None,
        *,
        seed: int | None = None,
        **ax_kwargs: Any,
    ) -> None:
        api = import_ax()
        super().__init__(metric, mode)
        self._seed = self._check_seed(seed)
        self._raw_points = self._check_points(points_to_evaluate)
        self._parameter_constraints = check_constraints(
            parameter_constraints, "parameter_constraints"
        )
        self._outcome_constraints = check_constraints(outcome_constraints, "outcome_constraints")
        self._client_kwargs, self._gs_kwargs = self._split_ax_kwargs(api, ax_kwargs)
        self._client: Any = None
        self._sync = threading.Lock()  # the client is used from worker threads
        self._snapshot: str | None = None
        self._params: list[Any] = []
        self._configured = False  # the optimization config is set
        self._constants: dict[str, Any] = {}
        self._choices: dict[str, list[Any]] = {}
        self._points: list[dict[str, Any]] = []
        self._live: dict[str, int] = {}
        self._metric_names: dict[str, str] = {}  # Ax metric name -> result key
        if ax_client is not None:
            self._adopt_client(api, ax_client, space, ax_kwargs)
        elif space is not None:
            if not space:
                raise ConfigError("AxSearch: `space` is empty; pass parameters or None")
            self._set_space(api, space, "space")

    # ----------------------------------------------------------------- arguments

    def _split_ax_kwargs(
        self, api: Any, ax_kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        client_keys = set(inspect.signature(api.Client.__init__).parameters) - {"self"}
        gs_keys = set(inspect.signature(api.Client.configure_generation_strategy).parameters)
        gs_keys.discard("self")
        client_kwargs: dict[str, Any] = {}
        gs_kwargs: dict[str, Any] = {}
        for key, value in ax_kwargs.items():
            if key == "random_seed":
                seed = self._check_seed(value, "random_seed")
                if self._seed is not None and seed != self._seed:
                    raise ConfigError(
                        f"AxSearch got seed={self._seed!r} and random_seed={seed!r}; pass one"
                    )
                self._seed = seed
            elif key in client_keys:
                client_kwargs[key] = value
            elif key in gs_keys:
                gs_kwargs[key] = value
            else:
                raise ConfigError(
                    f"AxSearch got the unknown Ax argument `{key}`; Ax 1.x's ax.api.Client "
                    f"takes {sorted(client_keys)} and configure_generation_strategy takes "
                    f"{sorted(gs_keys)} (options of the deprecated AxClient such as "
                    "enforce_sequential_optimization are gone; use ConcurrencyLimiter or "
                    "max_concurrent_trials to bound parallelism)"
                )
        return client_kwargs, gs_kwargs

    def _adopt_client(self, api: Any, client: Any, space: Any, ax_kwargs: dict[str, Any]) -> None:
        check_client(api, client)
        given = [
            name
            for name, value in (
                ("space", space),
                ("parameter_constraints", self._parameter_constraints),
                ("outcome_constraints", self._outcome_constraints),
                ("ax_kwargs", ax_kwargs),
            )
            if value
        ]
        if given:
            raise ConfigError(
                f"AxSearch was given `ax_client`, which holds the experiment; do not pass "
                f"{given} too (configure them on the client)"
            )
        experiment = getattr(client, "_maybe_experiment", None)
        if experiment is None:
            raise ConfigError(
                "AxSearch: `ax_client` has no experiment; call "
                "client.configure_experiment(parameters=[...]) first"
            )
        if self._seed is None:
            self._seed = getattr(client, "_random_seed", None)
        self._client = client
        self._params = []
        self._encode_points()
        config = experiment.optimization_config
        if config is not None:
            objective = config.objective
            if not objective.is_single_objective or len(objective.metric_names) != 1:
                raise ConfigError(
                    f"AxSearch optimises one metric, but `ax_client`'s objective is "
                    f"{objective!r}; configure a single objective such as '-loss'"
                )
            name = objective.metric_names[0]
            mode = "min" if objective.minimize else "max"
            if (self._metric, self._mode) not in ((None, None), (name, mode)):
                raise ConfigError(
                    f"AxSearch: `ax_client` optimises {name!r} ({mode}), but metric="
                    f"{self._metric!r}, mode={self._mode!r} were given; pass neither"
                )
            self._metric, self._mode = name, mode
            self._metric_names = {m: m for m in config.metric_names}
            self._configured = True

    def _set_space(self, api: Any, space: Any, where: str) -> None:
        out = convert_space(api, space, where)
        client = api.Client(**self._client_kwargs)
        try:
            client.configure_experiment(
                parameters=out.params, parameter_constraints=self._parameter_constraints or None
            )
        except (ValueError, TypeError, AssertionError, ax_error()) as exc:
            what = "`parameter_constraints`" if self._parameter_constraints else f"`{where}`"
            raise ConfigError(f"AxSearch: Ax refused {what}: {exc}") from exc
        self._client, self._params = client, out.params
        self._constants, self._choices = out.constants, out.choices
        self._encode_points()

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless a space or client was given) space."""
        self._fill_metric_mode(metric, mode)
        if self._client is None:
            if config:
                self._set_space(import_ax(), config, "param_space")
            return True
        self._merge_tuner_constants(config)
        return True

    # ----------------------------------------------------------------- setup

    def _configure(self) -> None:
        """Set the objective (and outcome constraints) once metric and mode are known."""
        if self._configured:
            return
        from ax.api.utils.instantiation.from_string import optimization_config_from_string

        metric = str(self._metric)
        name = objective_name(metric)
        objective = f"-{name}" if self._mode == "min" else name
        constraints = self._outcome_constraints or None
        try:
            parsed = optimization_config_from_string(objective, constraints)
            self._client.configure_optimization(objective, outcome_constraints=constraints)
        except Exception as exc:
            raise ConfigError(
                f"AxSearch: Ax refused the objective {metric!r} or the `outcome_constraints` "
                f"{self._outcome_constraints}: {exc}"
            ) from exc
        self._metric_names = {m: m for m in parsed.metric_names}
        self._metric_names[name] = metric
        if self._gs_kwargs:
            try:
                self._client.configure_generation_strategy(**self._gs_kwargs)
            except Exception as exc:
                raise ConfigError(
                    f"AxSearch: Ax refused the generation strategy arguments "
                    f"{self._gs_kwargs}: {exc}"
                ) from exc
        self._configured = True

    def _encode_points(self) -> None:
        """``points_to_evaluate`` as flat Ax parameterizations (choices as indices)."""
        names = {p.name for p in self._params}
        if not names:  # a user client: its experiment knows the parameters
            names = set(self._client._experiment.parameters)
        for i, point in enumerate(self._raw_points):
            where = f"points_to_evaluate[{i}]"
            flat = flatten_point(point, names | set(self._constants), where=where)
            flat = {k: v for k, v in flat.items() if k in names}
            for name, categories in self._choices.items():
                if name in flat:
                    index = _category_index(categories, flat[name])
                    if index is None:
                        raise ConfigError(
                            f"`{where}` sets {name!r} to {flat[name]!r}, which is not one of "
                            f"its choices {categories!r}"
                        )
                    flat[name] = index
            self._points.append(flat)
        self._raw_points = []

    # ----------------------------------------------------------------- protocol

    def _next(self) -> dict[int, Any] | str | None:
        """Attach the next point or ask Ax for a trial (runs in a worker thread)."""
        from ax.exceptions.core import DataRequiredError, OptimizationComplete
        from ax.exceptions.generation_strategy import MaxParallelismReachedException
        from ax.utils.common.random import with_rng_seed

        with self._sync:
            self._configure()
            if self._points:
                point = self._points[0]
                try:
                    # Ax would attach a point outside the space as out-of-design data.
                    self._client._experiment.search_space.validate_membership(point)
                    index = self._client.attach_trial(parameters=point)
                except Exception as exc:
                    raise ConfigError(
                        f"`points_to_evaluate` entry {point} does not fit the search space: {exc}"
                    ) from exc
                self._points.pop(0)
                return {index: point}
            try:
                with with_rng_seed(self._seed):
                    return self._client.get_next_trials(max_trials=1) or None
            except (DataRequiredError, MaxParallelismReachedException):
                return None  # Ax waits for results before it proposes more
            except OptimizationComplete as exc:
                logger.info("AxSearch: Ax ended the search: %s", exc)
                return FINISHED

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config (``points_to_evaluate`` first); None while Ax waits for data."""
        self._require_ready(self._client is not None)
        trials = await self._run_model(self._next)
        if trials is None or trials == FINISHED:
            return trials  # type: ignore[return-value]
        assert isinstance(trials, dict)
        ((index, params),) = trials.items()
        self._live[trial_id] = index
        return self._config(params)

    def _config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        flat = {name: python_value(value) for name, value in params.items()}
        for name, categories in self._choices.items():
            if name in flat:
                flat[name] = copy.deepcopy(categories[int(flat[name])])
        return unflatten({**copy.deepcopy(self._constants), **flat})

    def _tell(self, index: int, data: dict[str, float] | None, reason: str) -> None:
        with self._sync:
            if data is None:
                self._client.mark_trial_failed(index, failed_reason=reason)
            else:
                self._client.complete_trial(index, raw_data=data)

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Complete the Ax trial with the final ``metric``; mark it failed on an error.

        A trial that errored or reported no finite ``metric`` is marked FAILED in Ax
        (so Ax may propose its point again); metrics named in ``outcome_constraints``
        are attached when the result holds them as finite numbers.
        """
        index = self._live.pop(trial_id, None)
        if index is None:
            return  # not one of ours
        value = None if error else self._objective(trial_id, result)
        data: dict[str, float] | None = None
        if value is not None:
            data = {}
            for ax_name, key in self._metric_names.items():
                extra = metric_number(value if key == self._metric else (result or {}).get(key))
                if extra is not None and is_rankable(extra):
                    data[ax_name] = extra
        reason = "the trial errored" if error else f"no finite {self._metric!r} was reported"
        await self._run_model(self._tell, index, data, reason)

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """The Ax experiment and generation strategy as JSON, plus atune's bookkeeping.

        The live client is replaced by one read back from the same JSON, so that this
        searcher and one restored from the state continue identically (a fitted GP is
        not part of Ax's JSON, and Ax warm-starts the next fit from it).
        """
        with self._sync:
            if self._client is not None:
                self._snapshot = dump_client(self._client)
                self._client = self._load(self._snapshot)
            state = super().get_state()
            self._snapshot = None
        return state

    async def _snapshot_between_model_calls(self) -> dict[str, Any]:
        # Writing and reading back Ax's JSON takes ~0.1 s: do it off the event loop.
        return await anyio.to_thread.run_sync(self.get_state)

    def _after_restore(self) -> None:
        self._client = self._load(self._snapshot) if self._snapshot is not None else None
        if self._client is None and self._params:
            self._client = import_ax().Client(**self._client_kwargs)
            self._client.configure_experiment(
                parameters=self._params,
                parameter_constraints=self._parameter_constraints or None,
            )
        self._snapshot = None

    def _load(self, snapshot: str) -> Any:
        return load_client(snapshot, self._client_kwargs.get("storage_config"))
