"""``Tuner``: the entry point. ``await Tuner(...).fit()`` runs an experiment.

``fit()`` is a coroutine: use it inside async applications. Scripts and notebooks call
``fit_sync()``, which runs the same coroutine on a fresh event loop (on a private
thread when the calling thread already runs a loop, as in Jupyter).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import logging
import os
import pickle
import shutil
import signal
import threading
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio

from atune._engine.controller import Controller, ExperimentSpec
from atune._engine.journal import has_journal
from atune._engine.restore import RestorePlan, prepare
from atune._executor._serialization import shipped_values, unsendable_value
from atune._storage import (
    Storage,
    check_reachable,
    download,
    remote_exists,
    remote_has_journal,
    resolve_storage,
)
from atune._util import pickle_any
from atune.callbacks._base import Callback
from atune.config import (
    DEFAULT_STORAGE_PATH,
    CheckpointConfig,
    FailureConfig,
    RunConfig,
    TuneConfig,
    _local_storage,
)
from atune.errors import AtuneError, ConfigError, ConfigTypeError, SerializationError
from atune.result_grid import ResultGrid
from atune.schedulers import TrialScheduler, create_scheduler
from atune.search._base import Searcher
from atune.search.basic_variant import BasicVariantGenerator
from atune.search.variant_generator import validate_space
from atune.stopper import as_stopper
from atune.trainable.util import inspect_trainable

if TYPE_CHECKING:
    from atune.live import LiveRun

__all__ = ["Tuner"]

log = logging.getLogger("atune")

#: How often a thread waiting for fit_sync's private thread wakes up, so that a Ctrl-C
#: (a KeyboardInterrupt raised between bytecodes) gets through on every platform.
_WAIT_POLL_S = 0.1
#: What Tuner.restore reads besides the journal (Ray Tune's name).
TUNER_STATE_FILE = "tuner.pkl"
TUNER_STATE_FORMAT = "atune.tuner/1"


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


def _check_space_serializable(space: dict[str, Any], executor: Any) -> None:
    """Raise SerializationError naming a param space value a Ray worker cannot receive."""
    try:
        executor.check_serializable(space, "param_space")
        return
    except SerializationError:
        pass  # find the value; a failing sample_from function is fine (it stays here)
    for where, value in shipped_values(space, "param_space"):
        try:
            executor.check_serializable(value, where)
        except SerializationError as exc:
            cause = exc.__cause__ or exc
            raise unsendable_value(where, value, cause) from cause


def _check_storage(path: str, given: bool) -> None:
    """Create the storage root and write a probe file in it; ConfigError if that fails."""
    probe = os.path.join(path, f".atune_write_test_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        if given:
            what = "`storage_path`"
        elif "ATUNE_RESULTS_DIR" in os.environ:
            what = "the storage path from $ATUNE_RESULTS_DIR"
        else:
            what = "the default storage path"
        reason = exc.strerror or str(exc)
        if os.path.exists(path) and not os.path.isdir(path):
            reason = "it is a file, not a directory"
        raise ConfigError(
            f"{what} {path!r} cannot be created or written ({reason}). Pass "
            "another directory as RunConfig(storage_path=...) or set $ATUNE_RESULTS_DIR, or "
            "fix the directory's permissions."
        ) from exc


def _warn_if_endless(searcher: Searcher, stopper: Any, time_budget_s: float | None) -> None:
    """Warn when num_samples=-1 leaves nothing that can end the experiment."""
    from atune.stopper import DictStopper, FunctionStopper, NoopStopper, Stopper

    if not isinstance(searcher, BasicVariantGenerator) or searcher.total_samples is not None:
        return  # finite, or a searcher that may end the search itself
    if time_budget_s is not None:
        return
    trial_only = isinstance(stopper, (DictStopper, FunctionStopper, NoopStopper)) or (
        stopper is not None and type(stopper).stop_all is Stopper.stop_all
    )
    if stopper is not None and not trial_only:
        return
    warnings.warn(
        "TuneConfig(num_samples=-1) samples new trials without end, and nothing here "
        "stops the experiment (stop criteria end single trials): it runs until fit() is "
        "cancelled. Set "
        "TuneConfig(time_budget_s=...), a finite num_samples, or "
        "RunConfig(stop=<an atune.Stopper whose stop_all() ends the experiment, e.g. "
        "atune.stopper.TimeoutStopper(3600)>).",
        UserWarning,
        stacklevel=3,
    )


def _parent_uri(uri: str) -> str:
    """``s3://b/x/name?q`` -> ``s3://b/x?q``."""
    base, sep, query = uri.partition("?")
    parent = base.rstrip("/").rsplit("/", 1)[0]
    return parent + sep + query


def _experiment_location(path: str | os.PathLike[str], filesystem: Any) -> tuple[Storage, str]:
    """The storage an experiment directory is in, and its name there."""
    text = os.fspath(path)
    if filesystem is None and ("://" not in text or text.startswith("file://")):
        if text.startswith("file://"):
            text = _local_storage(text)
        local = os.path.abspath(os.path.expanduser(text))
        return Storage(os.path.dirname(local)), os.path.basename(local)
    base = text.partition("?")[0].rstrip("/")
    name = base.rsplit("/", 1)[-1]
    parent = _parent_uri(text) if filesystem is None else base.rsplit("/", 1)[0]
    return resolve_storage(parent, filesystem, os.path.abspath(DEFAULT_STORAGE_PATH)), name


def _load_tuner_state(path: str) -> dict[str, Any]:
    file = os.path.join(path, TUNER_STATE_FILE)
    try:
        with open(file, "rb") as f:
            state = pickle.load(f)
    except FileNotFoundError:
        raise AtuneError(
            f"{path} holds no atune experiment (no {TUNER_STATE_FILE}): pass the experiment "
            "directory, <storage_path>/<name>; Tuner.can_restore(path) tells first."
        ) from None
    except Exception as exc:
        raise AtuneError(
            f"{file} cannot be read ({type(exc).__name__}: {exc}): it is damaged or "
            "was not written by atune."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != TUNER_STATE_FORMAT:
        raise AtuneError(f"{file} was not written by this version of atune")
    return state


def _part(state: dict[str, Any], key: str, path: str) -> Any:
    blob = state.get(key)
    if blob is None:
        why = state.get(f"{key}_error", "it was not saved")
        fix = (
            "pass it again: Tuner.restore(path, trainable, param_space={...})"
            if key == "param_space"
            else "it cannot be restored; start a new experiment"
        )
        raise AtuneError(
            f"the {key} of the experiment in {path} could not be pickled ({why}): {fix}"
        )
    try:
        return pickle.loads(blob)
    except Exception as exc:
        raise AtuneError(
            f"the {key} saved in {os.path.join(path, TUNER_STATE_FILE)} cannot be loaded "
            f"({type(exc).__name__}: {exc}); a class it uses may have moved. "
            + ("Pass param_space= again." if key == "param_space" else "")
        ) from exc


def _claim_default_name(storage: str, trainable_name: str) -> str:
    """``<trainable>_<date>``, with a suffix if that directory exists already.

    The directory is created here, atomically, so experiments started in the same
    second (several ``fit()`` at once in one service) never share one.
    """
    base = f"{trainable_name}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
    os.makedirs(storage, exist_ok=True)
    for n in itertools.count(1):
        name = base if n == 1 else f"{base}_{n}"
        try:
            os.mkdir(os.path.join(storage, name))
        except FileExistsError:
            continue
        return name
    raise AssertionError("unreachable")


def _default_callbacks(user: list[Callback]) -> list[Callback]:
    from atune.callbacks.loggers import DEFAULT_LOGGERS

    if os.environ.get("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS") == "1":
        return user
    have = {type(cb) for cb in user}
    return [cls() for cls in DEFAULT_LOGGERS if cls not in have] + user


@contextlib.contextmanager
def _sigint_raises_keyboard_interrupt() -> Iterator[None]:
    """While the main thread blocks, make Ctrl-C raise KeyboardInterrupt in it.

    A running event loop's SIGINT handler does not always raise: ``asyncio.run``'s only
    cancels the loop's main task and counts on the loop to deliver that, which it cannot
    while this thread is blocked, so a first Ctrl-C would do nothing. The handler in
    place is still called first (asyncio.run then also ends with KeyboardInterrupt, as
    it does after any Ctrl-C); only when it returns is KeyboardInterrupt raised here.
    ``SIG_IGN``, ``SIG_DFL`` and handlers set outside Python are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are handled in the main thread only
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler or not callable(previous):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, previous)


class _FitThread:
    """Runs ``fit`` on a private event loop in a daemon thread; cancellable from others."""

    def __init__(self, fit: Callable[[], Awaitable[ResultGrid]]) -> None:
        self._fit = fit
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self._done = threading.Event()
        self.result: ResultGrid | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._target, name="atune-fit", daemon=True)

    def _target(self) -> None:
        try:
            self.result = anyio.run(self._main, backend="asyncio")
        except BaseException as exc:
            self.error = exc
        finally:
            self._done.set()

    async def _main(self) -> ResultGrid | None:
        with anyio.CancelScope() as scope:
            with self._lock:
                if self._cancel_requested:
                    return None  # interrupted before it began: never touch Ray
                self._loop, self._scope = asyncio.get_running_loop(), scope
            return await self._fit()
        return None  # cancelled; fit() has stopped its trials

    def cancel(self) -> None:
        """Cancel ``fit`` (from any thread); returns at once."""
        with self._lock:
            self._cancel_requested = True
            loop, scope = self._loop, self._scope
        if loop is None or scope is None:
            return
        try:
            loop.call_soon_threadsafe(scope.cancel)
        except RuntimeError:
            pass  # the loop is closed: fit() has ended already

    def wait(self) -> None:
        """Block until the thread has ended; a KeyboardInterrupt gets through at once.

        Waits on an Event in short slices rather than in ``Thread.join()``: after a
        KeyboardInterrupt inside ``join()``, CPython (3.11 at least: the bpo-45274
        handler in ``_wait_for_tstate_lock``) marks the thread stopped while it still
        runs, so ``is_alive()`` says False and a second ``join()`` returns at once. And
        an untimed wait is not interruptible everywhere.
        """
        while not self._done.wait(_WAIT_POLL_S):
            pass
        self.thread.join()  # it has set _done: only its own teardown is left


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
        _restore: tuple[str, RestorePlan, bool] | None = None,
    ) -> None:
        self._restore = _restore
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
        # A restored experiment's searcher and scheduler were saved set up already.
        configured = _restore is not None and _restore[2]
        if configured:
            pass
        elif not self._searcher.set_search_properties(
            tc.metric, tc.mode, param_space, num_samples=tc.num_samples
        ):
            raise ConfigError(
                f"{type(self._searcher).__name__} did not accept metric={tc.metric!r}, "
                f"mode={tc.mode!r}; set them on the searcher or in TuneConfig"
            )
        if not configured and not self._scheduler.set_search_properties(tc.metric, tc.mode):
            raise ConfigError(
                f"{type(self._scheduler).__name__} did not accept metric={tc.metric!r}, "
                f"mode={tc.mode!r}; set them on the scheduler or in TuneConfig"
            )
        if _executor is None:
            from atune._executor import create_executor

            _executor = create_executor(tc.executor)
        self._executor = _executor
        self._executor.check_serializable(self._info.trainable, "trainable")
        _check_space_serializable(param_space, self._executor)
        rc = self._run_config
        self._storage = resolve_storage(
            rc.storage_path, rc.storage_filesystem, os.path.abspath(DEFAULT_STORAGE_PATH)
        )
        _check_storage(self._storage_path(), given=rc.storage_path is not None)
        if _restore is None:
            _warn_if_endless(self._searcher, self._stopper, tc.time_budget_seconds)
        self._results: ResultGrid | None = None
        self._fitted = False

    # ------------------------------------------------------------------ running
    def _storage_path(self) -> str:
        """The local root experiments run in: the storage path, or the local staging
        directory of remote storage."""
        return self._storage.local_root

    def _experiment_spec(self, name: str) -> ExperimentSpec:
        tc, rc = self._tune_config, self._run_config
        storage = self._storage_path()
        verbose = 1 if rc.verbose is None else rc.verbose
        total: int | None = getattr(self._searcher, "total_samples", None)
        reporter = rc.progress_reporter
        if reporter is None and verbose >= 1:
            from atune.callbacks.progress import CLIReporter

            reporter = CLIReporter(metric=tc.metric, mode=tc.mode, total_samples=total)
        return ExperimentSpec(
            trainable=self._info,
            param_space=self._param_space,
            experiment_name=name,
            experiment_path=os.path.join(storage, name),
            storage=self._storage,
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
            reuse_actors=tc.reuse_actors,
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

    # ------------------------------------------------------------------ restore
    def _save_tuner_state(self, experiment_path: str) -> None:
        """``tuner.pkl``: what :meth:`restore` needs besides the journal and the trainable.

        Each part is pickled on its own (with cloudpickle, for lambdas in the space),
        so one that cannot be pickled (a space holding a lock, a callback holding a
        socket) does not lose the others: restore then asks for it again.
        """
        tc = dataclasses.replace(
            self._tune_config, search_alg=self._searcher, scheduler=self._scheduler
        )
        state: dict[str, Any] = {"format": TUNER_STATE_FORMAT, "trainable": self._info.name}
        for key, value in (
            ("param_space", self._param_space),
            ("tune_config", tc),
            ("run_config", self._run_config),
        ):
            try:
                state[key] = pickle_any(value)
            except Exception as exc:
                state[key] = None
                state[f"{key}_error"] = f"{type(exc).__name__}: {exc}"
        state["configured"] = state["tune_config"] is not None
        if state["tune_config"] is None:
            # Most often the searcher holds the space that cannot be pickled: keep the
            # config as given; restore sets the searcher up again with the space given
            # to it, then puts the searcher's saved state back.
            with contextlib.suppress(Exception):
                state["tune_config"] = pickle_any(self._tune_config)
        if state["run_config"] is None:  # most often a callback: keep the rest
            with contextlib.suppress(Exception):
                state["run_config"] = pickle_any(
                    dataclasses.replace(self._run_config, callbacks=None)
                )
                log.warning(
                    "The callbacks of this experiment cannot be pickled (%s); "
                    "Tuner.restore will run it without them.",
                    state["run_config_error"],
                )
        os.makedirs(experiment_path, exist_ok=True)
        tmp = os.path.join(experiment_path, f".{TUNER_STATE_FILE}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(state, f)
        os.replace(tmp, os.path.join(experiment_path, TUNER_STATE_FILE))

    @classmethod
    def can_restore(
        cls, path: str | os.PathLike[str], storage_filesystem: Any | None = None
    ) -> bool:
        """Does ``path`` (a directory, or a storage URI such as ``s3://bucket/exp``) hold
        an experiment that :meth:`restore` can continue?"""
        storage, name = _experiment_location(path, storage_filesystem)
        if storage.remote:
            return remote_exists(storage, name, TUNER_STATE_FILE) and remote_has_journal(
                storage, name
            )
        local = os.path.join(storage.local_root, name)
        return os.path.isfile(os.path.join(local, TUNER_STATE_FILE)) and has_journal(local)

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        trainable: Any,
        *,
        resume_unfinished: bool = True,
        resume_errored: bool = False,
        restart_errored: bool = False,
        param_space: dict[str, Any] | None = None,
        storage_filesystem: Any | None = None,
    ) -> Tuner:
        """Continue the experiment in ``path`` (its directory) where it stopped.

        ``path`` may be remote storage (``s3://bucket/experiments/name``, or a path in
        ``storage_filesystem``): the experiment is downloaded into its local staging
        directory, runs there, and is uploaded back as it goes.

        ``fit()`` on the returned Tuner runs what is left: finished trials are never
        run again; unfinished ones continue from their latest checkpoint (from scratch
        without one), or end where they were with ``resume_unfinished=False``; errored
        ones stay as they are, continue from their latest checkpoint
        (``resume_errored``) or start over (``restart_errored``). The searcher and the
        scheduler continue where they were. Give the trainable again (it is not saved),
        and ``param_space`` again when it could not be pickled (the error says so).

        Example:
            >>> if atune.Tuner.can_restore(path):                    # doctest: +SKIP
            ...     tuner = atune.Tuner.restore(path, trainable=train)
            ... else:
            ...     tuner = atune.Tuner(train, param_space=space, run_config=...)
            >>> results = tuner.fit_sync()                           # doctest: +SKIP
        """
        path_arg = os.fspath(path)
        storage, name = _experiment_location(path, storage_filesystem)
        path = os.path.join(storage.local_root, name)
        if storage.remote:
            if not remote_exists(storage, name, TUNER_STATE_FILE):
                raise AtuneError(
                    f"{storage.describe(name)} holds no atune experiment (no "
                    f"{TUNER_STATE_FILE}); Tuner.can_restore(path) tells first."
                )
            shutil.rmtree(path, ignore_errors=True)  # the storage's copy is the truth
            download(storage, name, path)
        state = _load_tuner_state(path)
        if not has_journal(path):
            raise AtuneError(
                f"{path} holds no experiment journal (journal/snapshot-*.msgpack): it was "
                "not written by atune, or the experiment never started."
            )
        if restart_errored and resume_errored:
            raise ConfigError("pass either resume_errored=True or restart_errored=True, not both")
        info = inspect_trainable(trainable)
        if state["trainable"] != info.name:
            log.warning(
                "Restoring %s with trainable %r; the experiment ran %r.",
                path,
                info.name,
                state["trainable"],
            )
        space = param_space if param_space is not None else _part(state, "param_space", path)
        tc = _part(state, "tune_config", path)
        rc = _part(state, "run_config", path)
        if storage_filesystem is not None:
            rc = dataclasses.replace(
                rc,
                name=name,
                storage_path=storage.remote_root,
                storage_filesystem=storage_filesystem,
            )
        elif storage.remote:
            rc = dataclasses.replace(
                rc, name=name, storage_path=_parent_uri(path_arg), storage_filesystem=None
            )
        else:
            rc = dataclasses.replace(
                rc, name=name, storage_path=storage.local_root, storage_filesystem=None
            )
        plan = RestorePlan(resume_unfinished, resume_errored, restart_errored)
        return cls(
            trainable,
            param_space=space,
            tune_config=tc,
            run_config=rc,
            _restore=(path, plan, bool(state.get("configured", True))),
        )

    async def fit(self) -> ResultGrid:
        """Run the experiment and return its :class:`ResultGrid`.

        Trials that raise end in ERROR and their exceptions are in the grid;
        ``fit()`` raises only for problems with the experiment itself (a bad
        configuration, a metric no trial reports). Cancelling ``fit()`` stops every
        trial and kills its worker. It is :meth:`start` with no one watching.
        """
        if self._run_config.with_server:  # the REST API needs the live handle
            async with self.start() as run:
                pass
            return await run.wait()
        controller = await self._prepare()
        return await self._execute(controller)

    def start(self) -> LiveRun:
        """Run the experiment while an ``async with`` block is open, watching and steering it.

        Example:
            >>> async with tuner.start() as run:                     # doctest: +SKIP
            ...     async for event in run.events():
            ...         if event.kind == "result" and event.result["loss"] > 10:
            ...             await run.stop_trial(event.trial_id)
            >>> grid = await run.wait()                              # doctest: +SKIP

        See :class:`atune.LiveRun`. Leaving the block waits for the experiment to end;
        an exception or a cancellation inside it stops the experiment (which stays
        restorable) and propagates.
        """
        from atune.live import LiveRun

        return LiveRun(self)

    async def _prepare(self) -> Controller:
        """Everything before the experiment runs: its directory, its state, the controller."""
        if self._fitted:
            raise AtuneError(
                "this Tuner has already run (its searcher is used up); create a new Tuner "
                "to run the experiment again"
            )
        self._fitted = True
        if self._storage.remote:
            await anyio.to_thread.run_sync(check_reachable, self._storage)
        name = self._run_config.name
        if not name:
            storage, trainable_name = self._storage_path(), self._info.name
            name = await anyio.to_thread.run_sync(
                lambda: _claim_default_name(storage, trainable_name)
            )
        spec = self._experiment_spec(name)
        if spec.verbose >= 1:
            _show_atune_logs()
        restored = None
        if self._restore is not None:
            path, plan, _ = self._restore
            restored = await anyio.to_thread.run_sync(lambda: prepare(path, plan))
        else:
            await anyio.to_thread.run_sync(self._save_tuner_state, spec.experiment_path)
        return Controller(spec, self._executor, restored)

    async def _execute(self, controller: Controller) -> ResultGrid:
        spec = controller.spec
        try:
            await controller.run()
        except anyio.get_cancelled_exc_class():
            # Said even at verbose=0: losing track of how to continue costs the most.
            log.warning(
                "The experiment was interrupted; its state is saved in %s. To continue it: "
                "atune.Tuner.restore(%r, trainable=...).fit()",
                spec.experiment_path,
                spec.experiment_path,
            )
            raise
        finally:
            self._results = ResultGrid(
                # In creation order (a retried trial may have been queued last).
                sorted(controller.trials, key=lambda t: t.trial_id),
                spec.experiment_path,
                default_metric=spec.metric,
                default_mode=spec.mode,
            )
        return self._results

    def fit_sync(self) -> ResultGrid:
        """Run :meth:`fit` to completion from synchronous code (scripts, notebooks).

        Returns the :class:`ResultGrid` and raises what :meth:`fit` raises.

        Ctrl-C stops the experiment: its trials are stopped, their workers killed and
        the results so far saved (see :meth:`get_results`), then ``KeyboardInterrupt``
        is raised. In a script, ``fit()`` is cancelled by the event loop's own Ctrl-C
        handling. Where the calling thread already runs an event loop (Jupyter, a
        coroutine calling ``fit_sync()``), ``fit()`` runs on a private loop in a thread
        named ``atune-fit``; a Ctrl-C in the waiting thread cancels it there and waits
        for that clean-up (it has its own time limits), so nothing of the experiment
        runs on once ``KeyboardInterrupt`` is raised. A second Ctrl-C stops waiting for
        the clean-up (the experiment may then go on in the background for a while).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return anyio.run(self.fit, backend="asyncio")
        # The calling thread already runs an event loop (Jupyter): run on a private one.
        runner = _FitThread(self.fit)
        with _sigint_raises_keyboard_interrupt():
            try:
                runner.thread.start()
            except BaseException:
                runner.cancel()  # a thread that starts after all ends at once
                raise
            try:
                runner.wait()
            except BaseException:
                runner.cancel()
                log.warning(
                    "Interrupted: stopping the experiment's trials and saving their results "
                    "(press Ctrl-C again to stop waiting)"
                )
                try:
                    runner.wait()
                except BaseException:
                    log.warning(
                        "Interrupted again: stopped waiting for the experiment to shut down; "
                        "its trials may go on running for a while"
                    )
                    raise
                if runner.error is not None and not isinstance(
                    runner.error, anyio.get_cancelled_exc_class()
                ):
                    log.warning(
                        "fit() raised while it was stopping after the interrupt: %r", runner.error
                    )
                raise
        if runner.error is not None:
            raise runner.error
        assert runner.result is not None  # fit() returned: it was not cancelled
        return runner.result

    def get_results(self) -> ResultGrid:
        """The :class:`ResultGrid` of the last :meth:`fit`."""
        if self._results is None:
            raise AtuneError("no results yet: call `await tuner.fit()` (or fit_sync()) first")
        return self._results
