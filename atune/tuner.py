"""``Tuner``: the entry point. ``await Tuner(...).fit()`` runs an experiment.

``fit()`` is a coroutine: use it inside async applications. Scripts and notebooks call
``fit_sync()``, which runs the same coroutine on a fresh event loop (on a private
thread when the calling thread already runs a loop, as in Jupyter).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import threading
from typing import Any

import anyio

from atune._controller import Controller, ExperimentSpec
from atune.callbacks._base import Callback
from atune.config import (
    DEFAULT_STORAGE_PATH,
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    TuneConfig,
)
from atune.errors import AtuneError, ConfigError, ConfigTypeError
from atune.result_grid import ResultGrid
from atune.schedulers import TrialScheduler, create_scheduler
from atune.search._base import Searcher
from atune.search.basic_variant import BasicVariantGenerator
from atune.search.variant_generator import validate_space
from atune.stopper import as_stopper
from atune.trainable.util import inspect_trainable

__all__ = ["Tuner"]


def _make_searcher(search_alg: Searcher | str | None) -> Searcher:
    if search_alg is None:
        return BasicVariantGenerator()
    if isinstance(search_alg, Searcher):
        return search_alg
    if isinstance(search_alg, str):
        from atune.search import create_searcher

        return create_searcher(search_alg)
    raise ConfigTypeError(
        f"`search_alg` must be an atune.search.Searcher or its name, got {search_alg!r}"
    )


def _wrap_searcher(searcher: Searcher, max_concurrent: int | None) -> Searcher:
    """Give a model-based searcher the sample budget and the concurrency cap."""
    from atune.search._wrappers import ConcurrencyLimiter, SearchGenerator

    if isinstance(searcher, BasicVariantGenerator):
        return searcher  # counts num_samples itself; the controller caps concurrency
    if max_concurrent:
        if isinstance(searcher, ConcurrencyLimiter):
            raise ConfigError(
                "`max_concurrent_trials` wraps the searcher in a ConcurrencyLimiter, but "
                "`search_alg` is one already: set its max_concurrent and drop "
                "max_concurrent_trials, or pass the searcher unwrapped"
            )
        searcher = ConcurrencyLimiter(searcher, max_concurrent)
        searcher._added_by_tuner = True
    generator = SearchGenerator(searcher)
    generator._added_by_tuner = True
    return generator


def _make_scheduler(scheduler: TrialScheduler | str | None) -> TrialScheduler:
    if scheduler is None:
        from atune.schedulers import FIFOScheduler

        return FIFOScheduler()
    if isinstance(scheduler, TrialScheduler):
        return scheduler
    if isinstance(scheduler, str):
        return create_scheduler(scheduler)
    raise ConfigTypeError(
        f"`scheduler` must be an atune.schedulers.TrialScheduler or its name, got {scheduler!r}"
    )


def _show_atune_logs() -> None:
    """Print atune's INFO lines (retries, PBT's exploits) unless logging is set up.

    Only when neither the ``atune`` logger nor the root logger has a handler: an
    application that configures logging keeps full control.
    """
    logger = logging.getLogger("atune")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[atune] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _default_callbacks(user: list[Callback]) -> list[Callback]:
    from atune.callbacks.loggers import DEFAULT_LOGGERS

    if os.environ.get("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS") == "1":
        return user
    have = {type(cb) for cb in user}
    return [cls() for cls in DEFAULT_LOGGERS if cls not in have] + user


class Tuner:
    """Tune the hyperparameters of a trainable.

    Args:
        trainable: A function ``def train(config)`` that calls :func:`atune.report`
            (or ``async def``), or a subclass of :class:`atune.Trainable`; optionally
            wrapped with :func:`atune.with_parameters` / :func:`atune.with_resources`.
        param_space: The search space: a (nested) dict of constants and search-space
            domains (``atune.uniform(0, 1)``, ``atune.grid_search([...])``...).
        tune_config: :class:`TuneConfig`: metric, mode, searcher, scheduler, samples.
        run_config: :class:`RunConfig`: name, storage, stop criteria, callbacks.

    Example:
        >>> import atune
        >>> def train(config):                                   # doctest: +SKIP
        ...     for i in range(10):
        ...         atune.report({"score": config["x"] * i})
        >>> tuner = atune.Tuner(                                  # doctest: +SKIP
        ...     train,
        ...     param_space={"x": atune.uniform(0, 1)},
        ...     tune_config=atune.TuneConfig(metric="score", mode="max", num_samples=8),
        ... )
        >>> results = await tuner.fit()                           # doctest: +SKIP
        >>> results.get_best_result().config                      # doctest: +SKIP
    """

    def __init__(
        self,
        trainable: Any,
        *,
        param_space: dict[str, Any] | None = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        _executor: Any = None,
    ) -> None:
        self._info = inspect_trainable(trainable)
        if param_space is None:
            param_space = {}
        if not isinstance(param_space, dict):
            raise ConfigTypeError(
                f"`param_space` must be a dict of parameters, got {type(param_space).__name__}"
            )
        validate_space(param_space)
        self._param_space = param_space
        self._tune_config = tune_config if tune_config is not None else TuneConfig()
        self._run_config = run_config if run_config is not None else RunConfig()
        if not isinstance(self._tune_config, TuneConfig):
            raise ConfigTypeError(f"`tune_config` must be a TuneConfig, got {tune_config!r}")
        if not isinstance(self._run_config, RunConfig):
            raise ConfigTypeError(f"`run_config` must be a RunConfig, got {run_config!r}")
        tc = self._tune_config
        self._searcher = _wrap_searcher(_make_searcher(tc.search_alg), tc.max_concurrent_trials)
        self._scheduler = _make_scheduler(tc.scheduler)
        self._stopper = as_stopper(self._run_config.stop)
        if not self._searcher.set_search_properties(
            tc.metric, tc.mode, param_space, num_samples=tc.num_samples
        ):
            raise ConfigError(
                f"{type(self._searcher).__name__} did not accept metric={tc.metric!r}, "
                f"mode={tc.mode!r}; set them on the searcher or in TuneConfig"
            )
        if not self._scheduler.set_search_properties(tc.metric, tc.mode):
            raise ConfigError(
                f"{type(self._scheduler).__name__} did not accept metric={tc.metric!r}, "
                f"mode={tc.mode!r}; set them on the scheduler or in TuneConfig"
            )
        if _executor is None:
            from atune._executor._ray import RayExecutor

            _executor = RayExecutor()
        self._executor = _executor
        self._executor.check_serializable(self._info.trainable, "trainable")
        self._results: ResultGrid | None = None
        self._fitted = False

    # ------------------------------------------------------------------ running
    def _experiment_spec(self) -> ExperimentSpec:
        tc, rc = self._tune_config, self._run_config
        name = rc.name or (f"{self._info.name}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}")
        storage = os.path.abspath(
            os.path.expanduser(os.fspath(rc.storage_path or DEFAULT_STORAGE_PATH))
        )
        verbose = 1 if rc.verbose is None else rc.verbose
        total: int | None = getattr(self._searcher, "total_samples", None)
        reporter = rc.progress_reporter
        if reporter is None and verbose >= 1:
            from atune.callbacks.progress import CLIReporter

            reporter = CLIReporter(metric=tc.metric, mode=tc.mode, total_samples=total)
        reuse = tc.reuse_actors
        return ExperimentSpec(
            trainable=self._info,
            param_space=self._param_space,
            experiment_name=name,
            experiment_path=os.path.join(storage, name),
            searcher=self._searcher,
            scheduler=self._scheduler,
            stopper=self._stopper,
            metric=tc.metric,
            mode=tc.mode,
            callbacks=_default_callbacks(list(rc.callbacks or [])),
            progress_reporter=reporter,
            verbose=verbose,
            time_budget_s=tc.time_budget_seconds,
            max_concurrent_trials=tc.max_concurrent_trials or None,
            reuse_actors=bool(reuse),
            trial_name_creator=tc.trial_name_creator,
            trial_dirname_creator=tc.trial_dirname_creator,
            checkpoint_config=rc.checkpoint_config or CheckpointConfig(),
            failure_config=rc.failure_config or FailureConfig(),
            log_to_file=rc.log_to_file,
            total_samples=total,
            chdir_to_trial_dir=os.environ.get(
                "ATUNE_CHDIR_TO_TRIAL_DIR", os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", "1")
            )
            != "0",
        )

    async def fit(self) -> ResultGrid:
        """Run the experiment and return its :class:`ResultGrid`.

        Trials that raise end in ERROR and their exceptions are in the grid;
        ``fit()`` raises only for problems with the experiment itself (a bad
        configuration, a metric no trial reports). Cancelling ``fit()`` stops every
        trial and kills its worker.
        """
        if self._fitted:
            raise AtuneError(
                "this Tuner has already run (its searcher is used up); create a new Tuner "
                "to run the experiment again"
            )
        self._fitted = True
        spec = self._experiment_spec()
        if spec.verbose >= 1:
            _show_atune_logs()
        controller = Controller(spec, self._executor)
        self._controller = controller
        try:
            await controller.run()
        finally:
            self._results = ResultGrid(
                controller.trials,
                spec.experiment_path,
                default_metric=spec.metric,
                default_mode=spec.mode,
            )
        return self._results

    def fit_sync(self) -> ResultGrid:
        """Run :meth:`fit` to completion from synchronous code (scripts, notebooks)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return anyio.run(self.fit, backend="asyncio")
        # The calling thread already runs an event loop (Jupyter): run on a private one.
        box: dict[str, Any] = {}

        def _target() -> None:
            try:
                box["value"] = anyio.run(self.fit, backend="asyncio")
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=_target, name="atune-fit", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def get_results(self) -> ResultGrid:
        """The :class:`ResultGrid` of the last :meth:`fit`."""
        if self._results is None:
            raise AtuneError("no results yet: call `await tuner.fit()` (or fit_sync()) first")
        return self._results
