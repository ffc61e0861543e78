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

import numpy as np

from atune.errors import ConfigError, ConfigTypeError
from atune.search._domain import _q_value
from atune.search._flat import (
    DomainSpec,
    Path,
    build_config,
    deep_merge,
    describe,
    find_domains,
    flatten_point,
    has_domains,
    param_name,
    unflatten,
)
from atune.search._library import LibrarySearcher, import_library, quiet_logger

__all__ = ["HyperOptSearch"]

logger = logging.getLogger(__name__)

#: Seeds handed to ``tpe.suggest`` are drawn below this bound (it takes a 32-bit seed).
_SEED_BOUND = 2**31 - 1


def _import_hyperopt() -> Any:
    hyperopt = import_library("hyperopt", "HyperOptSearch", "hyperopt", "HyperOpt")
    quiet_logger("hyperopt")  # TPE logs every suggestion at INFO
    return hyperopt


def _identity(config: Any) -> Any:
    """The objective of the ``hyperopt.Domain``; never called (atune runs the trials)."""
    return config


# --------------------------------------------------------------------------- conversion


class _Param:
    """One atune domain as a HyperOpt expression, plus how to map the value back."""

    def __init__(self, expr: Any, decode: Callable[[Any], Any], spec: DomainSpec) -> None:
        self.expr = expr
        self.decode = decode  # HyperOpt value -> config value
        self.spec = spec


def _clamp(value: int, lo: int, hi: int) -> int:
    return min(max(value, lo), hi)


def _convert_domain(hp: Any, name: str, domain: Any) -> _Param:
    """The HyperOpt expression for one atune domain, labelled ``name``."""
    spec = describe(domain, name, "HyperOptSearch")
    q = spec.q
    if spec.kind == "categorical":
        return _convert_choice(hp, spec)
    if spec.kind == "normal":
        if q is None:
            return _Param(hp.normal(name, spec.mean, spec.sd), float, spec)
        return _Param(
            hp.qnormal(name, spec.mean, spec.sd, q), lambda v: _q_value(round(v / q), q), spec
        )
    if spec.kind == "float":
        lo, hi = float(spec.lower or 0.0), float(spec.upper or 0.0)  # bounded here
        if q is None:
            if spec.log:
                expr = hp.loguniform(name, math.log(lo), math.log(hi))
            else:
                expr = hp.uniform(name, lo, hi)
            return _Param(expr, lambda v: min(max(float(v), lo), hi), spec)
        if spec.log:
            expr = hp.qloguniform(name, math.log(lo), math.log(hi), q)
        else:  # bounds on the q grid: rounding stays inside [lower, upper]
            k_lo, k_hi = spec.q_range  # type: ignore[misc]
            expr = hp.quniform(name, spec.multiple(k_lo), spec.multiple(k_hi), q)
        return _Param(expr, spec.snap, spec)
    lo, hi, top = spec.lower, spec.upper, spec.inclusive_upper  # "int"
    if q is None:  # [lower, upper): top is upper - 1
        if spec.log:
            expr = hp.loguniform(name, math.log(lo), math.log(hi))
            return _Param(expr, lambda v: _clamp(math.floor(v), lo, top), spec)
        return _Param(hp.uniformint(name, lo, top), lambda v: round(v), spec)
    if spec.log:  # quantized: upper inclusive
        expr = hp.loguniform(name, math.log(lo), math.log(hi))
    else:
        k_lo, k_hi = spec.q_range  # type: ignore[misc]
        expr = hp.quniform(name, spec.multiple(k_lo), spec.multiple(k_hi), q)
    return _Param(expr, spec.snap, spec)


def _convert_choice(hp: Any, spec: DomainSpec) -> _Param:
    """``hp.choice`` over category indices; a category holding domains becomes a branch.

    Only numbers travel through HyperOpt's expression graph (it would turn lists into
    tuples); the configs are rebuilt here from the categories.
    """
    name, categories = spec.name, list(spec.categories)
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

    return _Param(hp.choice(name, options), decode, spec)


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


class HyperOptSearch(LibrarySearcher):
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
        self._check_int(n_initial_points, "n_initial_points")
        if not 0 < gamma < 1:
            raise ConfigError(f"`gamma` must be between 0 and 1, got {gamma!r}")
        self._points = self._check_points(points_to_evaluate)
        self._n_initial_points = n_initial_points
        self._gamma = float(gamma)
        self._seed = self._check_seed(random_state_seed, "random_state_seed")
        self._rng = np.random.default_rng(random_state_seed)
        self._param_space: dict[str, Any] = {}
        self._params: dict[str, tuple[Path, _Param]] = {}  # label -> (path, param)
        self._native: Any = None
        self._constants: dict[str, Any] = {}
        self._has_space = False
        if space is not None:
            self._set_space(space)
        self._next_point = 0
        self._trials: Any = None
        self._domain: Any = None
        self._live: dict[str, int] = {}  # trial_id -> hyperopt tid

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

    def _set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Take the Tuner's metric, mode and (unless one was given) param space."""
        self._fill_metric_mode(metric, mode)
        return self._take_param_space(config, self._has_space, self._set_space)

    # ----------------------------------------------------------------- model

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
                name: list(p.spec.categories)
                for name, (_, p) in self._params.items()
                if p.spec.kind == "categorical"
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

    def _doc(self, tid: int) -> dict[str, Any]:
        for doc in self._trials.trials:
            if doc["tid"] == tid:
                return doc
        raise KeyError(tid)

    # ----------------------------------------------------------------- protocol

    async def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next config from TPE."""
        self._require_ready(self._has_space)
        seed = int(self._rng.integers(_SEED_BOUND))
        tid, config = await self._run_model(self._ask, seed)
        self._live[trial_id] = tid
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

        await self._run_model(record)

    # ----------------------------------------------------------------- state

    #: The ``Trials`` object, the random state, live trials and settings.
    _STATE_FIELDS = (
        "points",
        "n_initial_points",
        "gamma",
        "seed",
        "rng",
        "param_space",
        "native",
        "constants",
        "has_space",
        "next_point",
        "trials",
        "live",
    )

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["live"] = dict(self._live)
        return state

    def _after_restore(self) -> None:
        """Convert the saved space again and rebuild the HyperOpt domain."""
        native, param_space, has_space = self._native, self._param_space, self._has_space
        self._native, self._param_space, self._params = None, {}, {}
        self._has_space = False
        if native is not None:
            self._set_space(native)
        elif has_space:
            self._set_space(param_space)
        self._domain = None
        if self._trials is not None:
            self._setup()
        self._live = dict(self._live)
