"""HyperOptSearch: HyperOpt's Tree-structured Parzen Estimators as an atune searcher.

The searcher keeps a ``hyperopt.Trials`` object: every suggestion is a trial document
made by ``hyperopt.tpe.suggest`` (random for the first ``n_initial_points``), and
every completed trial gets its loss written back. TPE runs in a worker thread.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._base import FINISHED, Searcher
from atune.search._domain import LogUniform, Normal, _q_float_range, _q_value, _unwrap
from atune.search._flat_space import (
    Path,
    build_config,
    deep_merge,
    find_domains,
    flatten_point,
    has_domains,
    param_name,
    unflatten,
)
from atune.search.sample import Categorical, Float, Integer

__all__ = ["HyperOptSearch"]

logger = logging.getLogger(__name__)

_STATE_VERSION = 1
_INSTALL_HINT = 'HyperOptSearch needs HyperOpt: pip install "atune[hyperopt]"'
#: Seeds handed to ``tpe.suggest`` are drawn below this bound (it takes a 32-bit seed).
_SEED_BOUND = 2**31 - 1


def _import_hyperopt() -> Any:
    try:
        import hyperopt
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    hp_logger = logging.getLogger("hyperopt")
    if hp_logger.level == logging.NOTSET:  # TPE logs every suggestion at INFO
        hp_logger.setLevel(logging.WARNING)
    return hyperopt


def _identity(config: Any) -> Any:
    """The objective of the ``hyperopt.Domain``; never called (atune runs the trials)."""
    return config


# --------------------------------------------------------------------------- conversion


class _Param:
    """One atune domain as a HyperOpt expression, plus how to map the value back."""

    def __init__(self, expr: Any, decode: Callable[[Any], Any], domain: Any) -> None:
        self.expr = expr
        self.decode = decode  # HyperOpt value -> config value
        self.domain = domain


def _clamp(value: int, lo: int, hi: int) -> int:
    return min(max(value, lo), hi)


def _convert_domain(hp: Any, name: str, domain: Any) -> _Param:
    """The HyperOpt expression for one atune domain, labelled ``name``."""
    base, q = _unwrap(domain.get_sampler())
    if isinstance(domain, Float):
        if isinstance(base, Normal):
            if q is None:
                return _Param(hp.normal(name, base.mean, base.sd), float, domain)
            return _Param(
                hp.qnormal(name, base.mean, base.sd, q),
                lambda v: _q_value(round(v / q), q),
                domain,
            )
        lo, hi = float(domain.lower or 0.0), float(domain.upper or 0.0)  # bounded here
        log = isinstance(base, LogUniform)
        if q is None:
            expr = (
                hp.loguniform(name, math.log(lo), math.log(hi)) if log else hp.uniform(name, lo, hi)
            )
            return _Param(expr, lambda v: min(max(float(v), lo), hi), domain)
        k_lo, k_hi = _q_float_range(lo, hi, q)  # type: ignore[misc]
        if log:
            expr = hp.qloguniform(name, math.log(lo), math.log(hi), q)
        else:  # bounds on the q grid: rounding stays inside [lower, upper]
            expr = hp.quniform(name, _q_value(k_lo, q), _q_value(k_hi, q), q)
        return _Param(expr, lambda v: _q_value(_clamp(round(v / q), k_lo, k_hi), q), domain)
    if isinstance(domain, Integer):
        lo, hi = domain.lower, domain.upper
        if q is None:  # [lower, upper)
            if isinstance(base, LogUniform):
                expr = hp.loguniform(name, math.log(lo), math.log(hi))
                return _Param(expr, lambda v: _clamp(math.floor(v), lo, hi - 1), domain)
            return _Param(hp.uniformint(name, lo, hi - 1), lambda v: round(v), domain)
        q = int(q)
        k_lo, k_hi = -(-lo // q), hi // q  # quantized: upper inclusive
        if isinstance(base, LogUniform):
            expr = hp.loguniform(name, math.log(lo), math.log(hi))
        else:
            expr = hp.quniform(name, k_lo * q, k_hi * q, q)
        return _Param(expr, lambda v: _clamp(round(v / q), k_lo, k_hi) * q, domain)
    if isinstance(domain, Categorical):
        return _convert_choice(hp, name, domain)
    raise ConfigError(f"HyperOptSearch cannot search parameter {name!r} with domain {domain!r}")


def _convert_choice(hp: Any, name: str, domain: Categorical) -> _Param:
    """``hp.choice`` over category indices; a category holding domains becomes a branch.

    Only numbers travel through HyperOpt's expression graph (it would turn lists into
    tuples); the configs are rebuilt here from the categories.
    """
    categories = list(domain.categories)
    options: list[Any] = []
    branches: dict[int, list[tuple[Path, str, _Param]]] = {}
    for i, category in enumerate(categories):
        if not has_domains(category):
            options.append(i)
            continue
        subs = []
        for path, sub in find_domains(category, "HyperOptSearch"):
            label = f"{name}/{i}/{param_name(path)}"
            subs.append((path, label, _convert_domain(hp, label, sub)))
        branches[i] = subs
        options.append({"index": i, "values": {label: p.expr for _, label, p in subs}})

    def decode(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return build_config({"v": categories[int(value)]}, {})["v"]
        i = int(value["index"])
        values = {
            (("v", *path)): p.decode(value["values"][label]) for path, label, p in branches[i]
        }
        return build_config({"v": categories[i]}, values)["v"]

    return _Param(hp.choice(name, options), decode, domain)


def _choice_labels(expr: Any) -> dict[str, list[Any]]:
    """For a native space: each ``hp.choice`` label and its options (literals, else a marker)."""
    from hyperopt import pyll

    found: dict[str, list[Any]] = {}
    for node in pyll.toposort(pyll.as_apply(expr)):
        if node.name == "switch" and node.pos_args and node.pos_args[0].name == "hyperopt_param":
            label = node.pos_args[0].arg["label"].obj
            found[label] = [
                a.obj if a.name == "literal" else _NOT_LITERAL for a in node.pos_args[1:]
            ]
    return found


_NOT_LITERAL = object()


# --------------------------------------------------------------------------- searcher


class HyperOptSearch(Searcher):
    """Search with HyperOpt's TPE, like Ray Tune's ``HyperOptSearch``.

    The search space comes from the Tuner's ``param_space`` (converted to ``hp.*``
    expressions: nested dicts, and ``tune.choice`` among dicts that hold further domains
    for conditional spaces) or from ``space``, which may be an atune param space or a
    native HyperOpt space (``{"x": hp.uniform("x", 0, 1)}``). HyperOpt minimises, so
    ``mode="max"`` negates the metric.

    Args:
        space: The search space; None to take the Tuner's ``param_space``.
        metric: The result field to optimise.
        mode: ``"min"`` or ``"max"``.
        points_to_evaluate: Configs to try first. Choice parameters are given by value
            (``{"activation": "relu"}``), as in Ray Tune >= 1.2, not by index. For an
            atune space the points are nested like the space; for a native HyperOpt
            space they are keyed by the HyperOpt labels.
        n_initial_points: Random suggestions before TPE starts modelling.
        random_state_seed: Seed that makes the suggestions reproducible.
        gamma: TPE's quantile that splits good from bad trials.

    Example:
        >>> searcher = HyperOptSearch(metric="loss", mode="min", random_state_seed=0)
        >>> tuner = atune.Tuner(
        ...     train, param_space={"lr": atune.loguniform(1e-4, 1e-1)},
        ...     tune_config=atune.TuneConfig(search_alg=searcher, num_samples=30),
        ... )  # doctest: +SKIP
    """

    def __init__(
        self,
        space: dict[str, Any] | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        n_initial_points: int = 20,
        random_state_seed: int | None = None,
        gamma: float = 0.25,
    ) -> None:
        _import_hyperopt()
        super().__init__(metric, mode)
        if points_to_evaluate is not None and not (
            isinstance(points_to_evaluate, (list, tuple))
            and all(isinstance(p, Mapping) for p in points_to_evaluate)
        ):
            raise ConfigTypeError(
                f"`points_to_evaluate` must be a list of dicts, got {points_to_evaluate!r}"
            )
        if isinstance(n_initial_points, bool) or not isinstance(n_initial_points, int):
            raise ConfigTypeError(f"`n_initial_points` must be an int, got {n_initial_points!r}")
        if n_initial_points < 0:
            raise ConfigError(f"`n_initial_points` must be >= 0, got {n_initial_points}")
        if not 0 < gamma < 1:
            raise ConfigError(f"`gamma` must be between 0 and 1, got {gamma!r}")
        self._points: list[dict[str, Any]] = [dict(p) for p in points_to_evaluate or []]
        self._n_initial_points = n_initial_points
        self._gamma = float(gamma)
        self._seed = random_state_seed
        self._rng = np.random.default_rng(random_state_seed)
        self._param_space: dict[str, Any] = {}
        self._params: dict[str, tuple[Path, _Param]] = {}  # label -> (path, param)
        self._native: Any = None
        self._constants: dict[str, Any] = {}
        self._has_space = False
        if space is not None:
            self._set_space(space)
        self._num_samples: int | None = None
        self._suggested = 0
        self._next_point = 0
        self._trials: Any = None
        self._domain: Any = None
        self._live: dict[str, int] = {}  # trial_id -> hyperopt tid
        self._lock: anyio.Lock | None = None

    # ----------------------------------------------------------------- space

    def _set_space(self, space: Any) -> None:
        hyperopt = _import_hyperopt()
        if not isinstance(space, Mapping) and not isinstance(space, hyperopt.pyll.Apply):
            raise ConfigTypeError(
                f"`space` must be a dict (an atune param space or a HyperOpt space), got {space!r}"
            )
        if self._is_native(space):
            self._native = space
        else:
            self._param_space = dict(space)
            self._params = {
                param_name(path): (path, _convert_domain(hyperopt.hp, param_name(path), domain))
                for path, domain in find_domains(space, "HyperOptSearch")
            }
        self._has_space = True

    @staticmethod
    def _is_native(space: Any) -> bool:
        from hyperopt import pyll

        if isinstance(space, pyll.Apply):
            return True

        def walk(value: Any) -> bool:
            if isinstance(value, pyll.Apply):
                return True
            if isinstance(value, Mapping):
                return any(walk(v) for v in value.values())
            if isinstance(value, (list, tuple)):
                return any(walk(v) for v in value)
            return False

        if walk(space):
            if has_domains(space):
                raise ConfigError(
                    "HyperOptSearch `space` mixes HyperOpt expressions and atune domains; "
                    "use one kind"
                )
            return True
        return False

    def _expr(self) -> Any:
        if self._native is not None:
            return self._native
        return {label: param.expr for label, (_, param) in self._params.items()}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode, param space and ``num_samples``.

        A searcher built with its own ``space`` keeps it; the Tuner's param space may
        then hold only constants, which are merged into every config.
        """
        self._fill_metric_mode(metric, mode)
        num_samples = spec.get("num_samples")
        if isinstance(num_samples, int) and not isinstance(num_samples, bool) and num_samples > 0:
            self._num_samples = num_samples
        if self._has_space:
            if config and has_domains(config):
                raise ConfigError(
                    "HyperOptSearch was given its own `space`, so the Tuner's `param_space` "
                    "may only hold constants, but it holds search domains; give the space in "
                    "one place"
                )
            self._constants = dict(config or {})
        elif config is not None:
            self._set_space(config)
        return True

    # ----------------------------------------------------------------- model

    def _check_ready(self) -> None:
        if not self._has_space:
            raise ConfigError(
                "HyperOptSearch has no search space: pass `space` or a Tuner `param_space`"
            )
        if self._metric is None or self._mode is None:
            raise ConfigError(
                "HyperOptSearch needs `metric` and `mode`: set them on the searcher or in "
                f"TuneConfig, got metric={self._metric!r}, mode={self._mode!r}"
            )

    def _setup(self) -> None:
        hyperopt = _import_hyperopt()
        expr = self._expr()
        if isinstance(expr, Mapping) and not expr:
            raise ConfigError(
                "HyperOptSearch needs at least one parameter to search, but the space has "
                "only constants; use the default searcher instead"
            )
        self._domain = hyperopt.Domain(_identity, expr)
        if self._trials is None:
            self._trials = hyperopt.Trials()
            # Check every point now, so a bad one fails before any trial runs.
            for i in range(len(self._points)):
                self._point_vals(i)

    def _point_vals(self, i: int) -> dict[str, Any]:
        """``points_to_evaluate[i]`` as ``{label: hyperopt value}`` (choices as indices)."""
        where = f"points_to_evaluate[{i}]"
        labels = set(self._domain.params)
        if self._native is not None:
            flat = flatten_point(self._points[i], labels, where=where)
            choices = _choice_labels(self._native)
        else:
            flat = flatten_point(self._points[i], set(self._params), where=where)
            missing = [name for name in self._params if name not in flat]
            if missing:
                raise ConfigError(
                    f"`{where}` must set every parameter of the search space, missing {missing}"
                )
            choices = {
                name: list(p.domain.categories)
                for name, (_, p) in self._params.items()
                if isinstance(p.domain, Categorical)
            }
        vals = {}
        for label, value in flat.items():
            if label in choices:
                vals[label] = self._choice_index(label, value, choices[label], where)
            else:
                vals[label] = value
        return vals

    def _choice_index(self, label: str, value: Any, options: list[Any], where: str) -> int:
        for i, option in enumerate(options):
            if option is _NOT_LITERAL:
                # An option that is an expression (a dict of further parameters) has no
                # value to compare with: it is chosen by its index.
                if isinstance(value, int) and not isinstance(value, bool) and value == i:
                    return i
                continue
            if value is option or value == option:
                if self._native is None and has_domains(option):
                    break
                return i
        hint = ""
        if isinstance(value, int) and not isinstance(value, bool):
            hint = (
                " Choice values are given as values, not as indices (the 0.7 behaviour "
                "changed in Ray Tune 1.2)."
            )
        raise ConfigError(
            f"`{where}` sets {label!r}={value!r}, which is not one of its (constant) "
            f"categories.{hint}"
        )

    def _insert_point(self, i: int) -> dict[str, Any]:
        hyperopt = _import_hyperopt()
        vals = self._point_vals(i)
        tid = self._trials.new_trial_ids(1)[0]
        misc = {
            "tid": tid,
            "cmd": self._domain.cmd,
            "workdir": self._domain.workdir,
            "idxs": {label: ([tid] if label in vals else []) for label in self._domain.params},
            "vals": {
                label: ([vals[label]] if label in vals else []) for label in self._domain.params
            },
        }
        docs = self._trials.new_trial_docs([tid], [None], [{"status": hyperopt.STATUS_NEW}], [misc])
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()
        return docs[0]

    def _ask(self, seed: int) -> tuple[int, dict[str, Any]]:
        """Make the next trial document and its config (runs in a worker thread)."""
        hyperopt = _import_hyperopt()
        if self._domain is None:
            self._setup()
        if self._next_point < len(self._points):
            doc = self._insert_point(self._next_point)
            self._next_point += 1
        else:
            new_ids = self._trials.new_trial_ids(1)
            self._trials.refresh()
            docs = hyperopt.tpe.suggest(
                new_ids,
                self._domain,
                self._trials,
                seed,
                n_startup_jobs=self._n_initial_points,
                gamma=self._gamma,
            )
            self._trials.insert_trial_docs(docs)
            self._trials.refresh()
            doc = docs[0]
        assignment = hyperopt.base.spec_from_misc(doc["misc"])
        try:
            sampled = hyperopt.space_eval(self._expr(), assignment)
        except Exception as exc:
            raise ConfigError(
                f"HyperOptSearch could not evaluate the space at {assignment!r}: {exc}"
            ) from exc
        if self._native is not None:
            if not isinstance(sampled, Mapping):
                raise ConfigTypeError(
                    f"a HyperOpt `space` must evaluate to a dict, got {sampled!r}"
                )
            return doc["tid"], deep_merge(self._constants, unflatten(sampled))
        values = {
            path: param.decode(sampled[label]) for label, (path, param) in self._params.items()
        }
        return doc["tid"], build_config(self._param_space, values)

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _doc(self, tid: int) -> dict[str, Any]:
        for doc in self._trials.trials:
            if doc["tid"] == tid:
                return doc
        raise KeyError(tid)

    # ----------------------------------------------------------------- protocol

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config from TPE (``FINISHED`` after ``num_samples`` configs)."""
        self._check_ready()
        if self._num_samples is not None and self._suggested >= self._num_samples:
            return FINISHED
        async with self._get_lock():
            seed = int(self._rng.integers(_SEED_BOUND))
            tid, config = await anyio.to_thread.run_sync(self._ask, seed)
        self._live[trial_id] = tid
        self._suggested += 1
        return config

    async def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Write the loss into the trial document; errored or metric-less trials fail."""
        tid = self._live.pop(trial_id, None)
        if tid is None:
            return
        hyperopt = _import_hyperopt()
        loss = None if error else self._loss(trial_id, result)

        def record() -> None:
            doc = self._doc(tid)
            doc["refresh_time"] = hyperopt.utils.coarse_utcnow()
            if loss is None:
                doc["state"] = hyperopt.JOB_STATE_ERROR
                doc["result"] = {"status": hyperopt.STATUS_FAIL}
                doc["misc"]["error"] = ("TrialError", "the trial failed or reported no metric")
            else:
                doc["state"] = hyperopt.JOB_STATE_DONE
                doc["result"] = {"loss": loss, "status": hyperopt.STATUS_OK}
            self._trials.refresh()

        async with self._get_lock():
            await anyio.to_thread.run_sync(record)

    def _loss(self, trial_id: str, result: dict[str, Any] | None) -> float | None:
        if not result or self._metric not in result:
            logger.warning(
                "HyperOptSearch: trial %s ended without reporting %r; recorded as failed",
                trial_id,
                self._metric,
            )
            return None
        try:
            value = float(result[self._metric])
        except (TypeError, ValueError):
            logger.warning("HyperOptSearch: trial %s reported a non-numeric metric", trial_id)
            return None
        if math.isnan(value):
            return None
        return -value if self._mode == "max" else value

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        """The ``Trials`` object, the random state, live trials and settings."""
        return {
            "version": _STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "points": self._points,
            "n_initial_points": self._n_initial_points,
            "gamma": self._gamma,
            "seed": self._seed,
            "rng": self._rng,
            "param_space": self._param_space,
            "native": self._native,
            "constants": self._constants,
            "has_space": self._has_space,
            "num_samples": self._num_samples,
            "suggested": self._suggested,
            "next_point": self._next_point,
            "trials": self._trials,
            "live": dict(self._live),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a state made by :meth:`get_state`."""
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(
                f"HyperOptSearch state version must be {_STATE_VERSION}, "
                f"got {state.get('version')!r}"
            )
        self._metric, self._mode = state["metric"], state["mode"]
        self._points = state["points"]
        self._n_initial_points, self._gamma = state["n_initial_points"], state["gamma"]
        self._seed, self._rng = state["seed"], state["rng"]
        self._native, self._param_space, self._params = None, {}, {}
        self._has_space = False
        if state["native"] is not None:
            self._set_space(state["native"])
        elif state["has_space"]:
            self._set_space(state["param_space"])
        self._constants = state["constants"]
        self._num_samples, self._suggested = state["num_samples"], state["suggested"]
        self._next_point = state["next_point"]
        self._trials = state["trials"]
        self._domain = None
        if self._trials is not None:
            self._setup()
        self._live = dict(state["live"])
