"""Commands into a running experiment: stop, pause, resume or add a trial; stop it all.

A :class:`CommandQueue` is a bounded stream the controller reads in a task of its
own. Each command is applied like a scheduler's decision, with the same exactness:

- :class:`StopTrial` / :class:`PauseTrial` of a RUNNING trial take effect at the
  result it is on: nothing after that result is recorded (a pause checkpoints a
  class trainable waiting at a decision point, as a scheduler's PAUSE does). A
  PENDING or PAUSED trial stops at once.
- A trial paused by :class:`PauseTrial` stays PAUSED until :class:`ResumeTrial`;
  schedulers do not pick it meanwhile (``has_resources_for_trial`` is False for it).
- :class:`AddTrial` adds a trial with the given config, after the searcher's trials
  that already exist; the searcher is not told about it.
- :class:`StopExperiment` is ``stop_all()``.

:meth:`CommandQueue.send` waits while the queue is full; :meth:`CommandQueue.send_nowait`
raises ``anyio.WouldBlock`` instead. After the experiment ended both raise
``anyio.ClosedResourceError``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from atune._trial import Trial
from atune.errors import PluginError, UnknownTrialError

if TYPE_CHECKING:
    from atune._engine.controller import Controller

__all__ = [
    "AddTrial",
    "Command",
    "CommandQueue",
    "PauseTrial",
    "Reply",
    "ResumeTrial",
    "StopExperiment",
    "StopTrial",
    "read_commands",
]

log = logging.getLogger("atune")


class Reply:
    """How a command that was sent is doing: :meth:`wait` returns once it is applied."""

    __slots__ = ("_done", "error", "value")

    def __init__(self) -> None:
        self._done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def set(self, value: Any = None, error: BaseException | None = None) -> None:
        if not self._done.is_set():
            self.value, self.error = value, error
            self._done.set()

    async def wait(self) -> Any:
        await self._done.wait()
        if self.error is not None:
            raise self.error
        return self.value


@dataclass(frozen=True, slots=True)
class Command:
    """Base class of commands."""


@dataclass(frozen=True, slots=True)
class StopTrial(Command):
    trial_id: str
    #: Set once the trial has ended (TERMINATED or ERROR).
    reply: Reply | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PauseTrial(Command):
    trial_id: str
    #: Set once the trial is PAUSED (or has ended meanwhile).
    reply: Reply | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ResumeTrial(Command):
    trial_id: str
    #: Set once the trial may start again (the scheduler starts it when it fits).
    reply: Reply | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AddTrial(Command):
    config: dict[str, Any] = field(default_factory=dict)
    #: Set to the new trial's id once it is added.
    reply: Reply | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StopExperiment(Command):
    #: Set once every trial has been asked to stop.
    reply: Reply | None = field(default=None, compare=False, repr=False)


class CommandQueue:
    """The bounded stream of commands into one controller."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1 or maxsize == math.inf:
            raise ValueError(f"maxsize must be a positive int, got {maxsize!r}")
        send, receive = anyio.create_memory_object_stream[Command](maxsize)
        self._send: MemoryObjectSendStream[Command] = send
        self._receive: MemoryObjectReceiveStream[Command] = receive

    async def send(self, command: Command) -> None:
        _check(command)
        await self._send.send(command)

    def send_nowait(self, command: Command) -> None:
        _check(command)
        self._send.send_nowait(command)

    def close(self) -> None:
        """No more commands; those queued are dropped (a reply says so to its sender)."""
        self._send.close()
        while True:
            try:
                command = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            reply = getattr(command, "reply", None)
            if reply is not None:
                reply.set(error=UnknownTrialError(f"the experiment ended before {command!r}"))
        self._receive.close()

    @property
    def receiver(self) -> MemoryObjectReceiveStream[Command]:
        return self._receive


def _check(command: Command) -> None:
    if not isinstance(command, Command):
        raise TypeError(f"expected an atune command (StopTrial, PauseTrial...), got {command!r}")


async def read_commands(ctl: Controller) -> None:
    """Apply each command sent to ``ctl`` until the queue is closed."""
    try:
        async for command in ctl.commands.receiver:
            try:
                await apply_command(ctl, command)
            except PluginError as exc:
                ctl.fail_experiment(exc)
    except anyio.ClosedResourceError:
        return


async def apply_command(ctl: Controller, command: Command) -> None:
    reply = getattr(command, "reply", None)
    if isinstance(command, StopExperiment):
        ctl.stop_all()
        if reply is not None:
            reply.set()
        return
    if isinstance(command, AddTrial):
        trial = None
        if not ctl.stopping:
            trial = await ctl.add_trial(dict(command.config), external=True)
        ctl.changed.set()
        if reply is not None:
            if trial is None:
                reply.set(error=UnknownTrialError("the experiment is ending: no trial is added"))
            else:
                reply.set(trial.trial_id)
        return
    trial_id = getattr(command, "trial_id", "")
    trial = ctl.state.table.get(trial_id)
    if trial is None or trial.is_finished:
        why = (
            f"no trial {trial_id!r} in this experiment"
            if trial is None
            else f"trial {trial_id!r} has ended already ({trial.status})"
        )
        if reply is not None:
            reply.set(error=UnknownTrialError(why))
        else:
            log.warning("Ignored %r: %s.", command, why)
        return
    if isinstance(command, StopTrial):
        if reply is not None:
            ctl.wait_for_status(trial, frozenset(), reply)
        ctl.stop_trial(trial)
    elif isinstance(command, PauseTrial):
        if reply is not None:
            ctl.wait_for_status(trial, frozenset({Trial.PAUSED, Trial.PENDING}), reply)
        ctl.held_by_command.add(trial.trial_id)
        ctl.pause_trial(trial)
    elif isinstance(command, ResumeTrial):
        ctl.held_by_command.discard(trial.trial_id)
        if reply is not None:
            reply.set()
    ctl.changed.set()
