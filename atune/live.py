"""The live handle: watch and steer a running experiment from async code.

::

    async with tuner.start() as run:          # the experiment runs while the block is open
        async for event in run.events():      # ends after the "experiment_ended" event
            if event.kind == "result" and event.result["loss"] > 10:
                await run.stop_trial(event.trial_id)
    grid = await run.wait()

``run.events()`` may be called by several consumers at once, each with its own bounded
queue: a consumer that falls behind never slows the trials down; its queue drops the
oldest results (never lifecycle events) and the next event it gets says how many
(:attr:`LiveEvent.dropped`). Commands act at result boundaries with the exactness of a
scheduler's decisions, and return once applied: ``stop_trial`` once the trial has
ended, ``pause_trial`` once it is PAUSED, ``resume_trial`` once it may start again,
``add_trial`` with the new trial's id. A trial that is not in the experiment, or has
ended, raises :class:`UnknownTrialError`.

Leaving the block waits for the experiment to end. An exception or a cancellation
inside the block stops it (as cancelling ``fit()`` does: its state stays restorable)
and propagates. ``tuner.fit()`` is this same machinery with nobody watching.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from atune._engine import commands as C
from atune._engine import events as E
from atune._engine.bus import Policy
from atune.errors import AtuneError, UnknownTrialError

if TYPE_CHECKING:
    from atune._engine.controller import Controller
    from atune.result_grid import ResultGrid
    from atune.tuner import Tuner

__all__ = ["EVENT_KINDS", "LiveEvent", "LiveRun", "TrialSnapshot", "UnknownTrialError"]

#: Events a consumer of ``events()`` may be behind before its oldest results are dropped.
LIVE_QUEUE_SIZE = 1_024

_KINDS: dict[type[E.Event], str] = {
    E.TrialStarted: "trial_started",
    E.ResultRecorded: "result",
    E.CheckpointRecorded: "checkpoint",
    E.TrialPaused: "trial_paused",
    E.TrialResumed: "trial_resumed",
    E.TrialCompleted: "trial_completed",
    E.TrialErrored: "trial_errored",
    E.ExperimentEnded: "experiment_ended",
}
#: The kinds of :class:`LiveEvent`, in the order a trial goes through them.
EVENT_KINDS = tuple(_KINDS.values())


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One thing that happened in the experiment.

    Attributes:
        kind: One of :data:`EVENT_KINDS`: ``"trial_started"``, ``"result"``,
            ``"checkpoint"``, ``"trial_paused"``, ``"trial_resumed"``,
            ``"trial_completed"``, ``"trial_errored"``, ``"experiment_ended"``.
        trial_id: The trial's id (None for ``experiment_ended``).
        result: The result (``result``), the result a checkpoint was taken with
            (``checkpoint``); else None.
        time: When it happened (``time.time()``).
        dropped: How many results this consumer missed just before this event,
            because it fell behind.
        checkpoint: The checkpoint's path (``checkpoint``).
        error: The trial's error (``trial_errored``), or the experiment's
            (``experiment_ended``, None if it ended well).
    """

    kind: str
    trial_id: str | None
    result: dict[str, Any] | None
    time: float
    dropped: int = 0
    checkpoint: str | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class TrialSnapshot:
    """A trial as it was when :attr:`LiveRun.trials` was read."""

    trial_id: str
    name: str
    status: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    error: BaseException | None = None


class LiveRun:
    """A running experiment (see the module docs); made by :meth:`atune.Tuner.start`."""

    def __init__(self, tuner: Tuner) -> None:
        self._tuner = tuner
        self._controller: Controller | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._done = anyio.Event()
        self._grid: ResultGrid | None = None
        self._error: BaseException | None = None
        self._entered = False
        self._server_scope: anyio.CancelScope | None = None
        self._server_address: tuple[str, int] | None = None

    # ------------------------------------------------------------- the block
    async def __aenter__(self) -> LiveRun:
        if self._entered:
            raise AtuneError("a LiveRun is entered once: call tuner.start() for each run")
        self._entered = True
        self._controller = await self._tuner._prepare()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            rc = self._tuner._run_config
            if rc.with_server:
                await self._tg.start(self._serve, rc.server_host, rc.server_port, rc.server_token)
            self._tg.start_soon(self._run, name="atune experiment")
        except BaseException:
            self._tg.cancel_scope.cancel()
            try:
                await self._tg.__aexit__(None, None, None)
            finally:
                self._done.set()
            raise  # as itself (a ConfigError for a busy port), not in a group
        return self

    async def _serve(
        self,
        host: str,
        port: int,
        token: str | None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        from atune.server import serve

        def bound(actual: int) -> None:
            self._server_address = (host, actual)
            task_status.started()

        with anyio.CancelScope() as self._server_scope:
            await serve(self.asgi_app(token), host, port, bound)

    async def _run(self) -> None:
        assert self._controller is not None
        try:
            self._grid = await self._tuner._execute(self._controller)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # fit()'s own errors: wait() and the block raise them
            self._error = exc
        finally:
            self._done.set()
            if self._server_scope is not None:
                self._server_scope.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        if exc is not None:  # the block failed or was cancelled: stop the experiment
            self._tg.cancel_scope.cancel()
        cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
        try:
            # The block's own exception propagates as itself (not in an exception
            # group): the task group is told of a cancellation only.
            if cancelled:
                await self._tg.__aexit__(exc_type, exc, tb)
            else:
                await self._tg.__aexit__(None, None, None)
        finally:
            self._done.set()
        if exc is None and self._error is not None:
            raise self._error
        return None

    # ------------------------------------------------------------- watching
    async def events(self, *, maxsize: int = LIVE_QUEUE_SIZE) -> AsyncIterator[LiveEvent]:
        """The experiment's events from now on; ends after ``experiment_ended``.

        Args:
            maxsize: How many events this consumer may be behind before its oldest
                results are dropped (lifecycle events never are).
        """
        ctl = self._ctl()
        try:
            sub = ctl.bus.subscribe("live", maxsize=maxsize, policy=Policy.DROP_RESULTS)
        except anyio.ClosedResourceError:
            return  # it has ended: nothing more will happen
        dropped = 0
        try:
            async for delivery in sub.deliveries():
                event = delivery.event
                dropped += delivery.dropped_before
                kind = _KINDS.get(type(event))
                if kind is None:
                    continue
                yield _live_event(kind, event, dropped)
                dropped = 0
                if kind == "experiment_ended":
                    return
        finally:
            sub.close()

    @property
    def trials(self) -> list[TrialSnapshot]:
        """Every trial as it is now (a consistent snapshot, in creation order)."""
        ctl = self._ctl()
        return [
            TrialSnapshot(
                trial_id=t.trial_id,
                name=t.name,
                status=t.status,
                config=dict(t.config),
                last_result=dict(t.last_result),
                path=t.local_path,
                error=t.error,
            )
            for t in sorted(ctl.trials, key=lambda t: t.trial_id)
        ]

    @property
    def experiment_path(self) -> str:
        return self._ctl().spec.experiment_path

    @property
    def server_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the REST API (``RunConfig(with_server=True)``), else None."""
        return self._server_address

    def asgi_app(self, token: str | None = None) -> Any:
        """The REST API of this run as an ASGI application, to mount in a service:
        ``app.mount("/tune", run.asgi_app())`` (see :mod:`atune.server`)."""
        from atune.server import create_app

        return create_app(self, token)

    @property
    def done(self) -> bool:
        """Has the experiment ended?"""
        return self._done.is_set()

    # ------------------------------------------------------------- steering
    async def stop_trial(self, trial_id: str) -> None:
        """Stop a trial at the result it is on; returns once it has ended."""
        await self._send(C.StopTrial(trial_id, reply=C.Reply()))

    async def pause_trial(self, trial_id: str) -> None:
        """Pause a trial at the result it is on (it keeps its checkpoint); returns once
        it is PAUSED. It stays paused until :meth:`resume_trial`."""
        await self._send(C.PauseTrial(trial_id, reply=C.Reply()))

    async def resume_trial(self, trial_id: str) -> None:
        """Let a trial paused by :meth:`pause_trial` run again (when resources allow)."""
        await self._send(C.ResumeTrial(trial_id, reply=C.Reply()))

    async def add_trial(self, config: dict[str, Any]) -> str:
        """Add a trial running ``config`` (a dict of values, no search domains); its id."""
        if not isinstance(config, dict):
            raise TypeError(f"`config` must be a dict, got {type(config).__name__}")
        return str(await self._send(C.AddTrial(dict(config), reply=C.Reply())))

    async def stop(self) -> None:
        """Stop the experiment gracefully: every trial stops after the result it is on."""
        await self._send(C.StopExperiment(reply=C.Reply()))

    async def wait(self) -> ResultGrid:
        """Wait for the experiment to end; its :class:`~atune.ResultGrid`."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        if self._grid is None:
            raise AtuneError("the experiment was cancelled before it ended")
        return self._grid

    # ------------------------------------------------------------- helpers
    def _ctl(self) -> Controller:
        if self._controller is None:
            raise AtuneError("use the run inside `async with tuner.start() as run:`")
        return self._controller

    async def _send(self, command: Any) -> Any:
        ctl = self._ctl()
        if self._done.is_set():
            raise UnknownTrialError(f"the experiment has ended: {command!r} was not applied")
        try:
            await ctl.commands.send(command)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise UnknownTrialError(
                f"the experiment has ended: {command!r} was not applied"
            ) from None
        return await command.reply.wait()


def _live_event(kind: str, event: E.Event, dropped: int) -> LiveEvent:
    result = None
    checkpoint = None
    error = None
    if isinstance(event, E.ResultRecorded):
        result = event.result
    elif isinstance(event, E.CheckpointRecorded):
        result, checkpoint = event.result, event.path
    elif isinstance(event, (E.TrialErrored, E.ExperimentEnded)):
        error = event.error
    return LiveEvent(
        kind=kind,
        trial_id=getattr(event, "trial_id", None),
        result=result,
        time=event.time,
        dropped=dropped,
        checkpoint=checkpoint,
        error=error,
    )
