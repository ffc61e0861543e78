"""Subscribers of the event bus that write: the loggers and the progress view.

Each runs as one task with its own subscription, so a slow disk or terminal holds
back only itself, within its declared bound:

- :class:`LoggerSink` (``"loggers"``, :attr:`~atune._engine.bus.Policy.BACKPRESSURE`,
  :data:`~atune._engine.spec.LOGGER_QUEUE_SIZE` events): every
  :class:`~atune.callbacks.LoggerCallback` gets every event, in order, and flushes at
  least every :data:`~atune._engine.spec.FLUSH_INTERVAL_S`. Once it is that many
  events behind, recording results waits for it.
- :class:`ProgressSink` (``"progress"``, :attr:`~atune._engine.bus.Policy.DROP_RESULTS`,
  or BACKPRESSURE with ``verbose=2``, which prints every result): prints the status
  table every ``max_report_frequency`` seconds and once at the end. The text is
  rendered on the loop, from a consistent view of the trials, and written to the
  terminal by a worker thread, so a blocked terminal never blocks the loop.

Both are shielded from cancellation: they end when the bus is closed and they have
written everything published before, or when the controller gives up waiting for
them (:meth:`cancel`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import anyio

from atune._engine import events as E
from atune._engine.bus import EventBus, Policy, Subscription
from atune._engine.hooks import CallbackHooks
from atune._engine.plugins import call_plugin
from atune._engine.spec import (
    FLUSH_INTERVAL_S,
    LOGGER_QUEUE_SIZE,
    PROGRESS_QUEUE_SIZE,
    SLICE_S,
)
from atune._engine.state import TrialTable
from atune.errors import PluginError

__all__ = ["LoggerSink", "ProgressSink"]

#: Check the clock once per this many events while the queue never runs empty.
_CLOCK_EVERY = 256
#: Lines of ``verbose=2`` result output buffered before they are written.
_MAX_LINES = 2_048


class Watermark:
    """How many of the bus's events a sink has written out (for another sink to follow).

    The journal records an event only once the loggers have written it to the
    trials' files, so a trial the journal calls finished always has its whole
    history on disk, and a checkpoint it records has its results beside it.
    """

    def __init__(self, value: float = 0) -> None:
        self.value = value
        self._moved = anyio.Event()

    def advance(self, value: float) -> None:
        if value > self.value:
            self.value = value
            self._moved.set()
            self._moved = anyio.Event()

    async def wait_for(self, value: float) -> None:
        while self.value < value:
            await self._moved.wait()


class _Sink:
    """A shielded task that consumes one subscription until the bus ends it."""

    #: Seconds between two calls of :meth:`_periodic` (at most).
    interval = FLUSH_INTERVAL_S

    def __init__(self, sub: Subscription, on_error: Callable[[BaseException], None]) -> None:
        self._sub = sub
        self._on_error = on_error
        self._failed = False
        self._scope: anyio.CancelScope | None = None
        self.done = anyio.Event()

    async def run(self) -> None:
        with anyio.CancelScope(shield=True) as self._scope:
            try:
                await self._consume()
            finally:
                self._sub.close()
                self.done.set()

    def cancel(self) -> None:
        """Stop at once, writing nothing more."""
        if self._scope is not None:
            self._scope.cancel()
        self._sub.close()

    async def _consume(self) -> None:
        sub = self._sub
        last = time.monotonic()
        seen = 0
        slice_end = time.perf_counter() + SLICE_S
        while True:
            try:
                event = sub.receive_nowait()
            except anyio.WouldBlock:
                wait = last + self.interval - time.monotonic()
                if wait <= 0:
                    await self._tick()
                    last = time.monotonic()
                    continue
                got: E.Event | None = None
                try:
                    with anyio.move_on_after(wait):
                        got = await sub.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                if got is None:
                    continue
                event = got
                slice_end = time.perf_counter() + SLICE_S
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if not self._failed:
                try:
                    await self._on_event(event)
                except PluginError as exc:
                    self._on_error(exc)
                    self._failed = not self._drop(exc.plugin)
            seen += 1
            if time.perf_counter() >= slice_end:
                # A backlog is worked off in slices: the host's tasks (and the trials'
                # fetches) get the loop between them.
                await anyio.lowlevel.checkpoint()
                slice_end = time.perf_counter() + SLICE_S
            if seen % _CLOCK_EVERY == 0 and time.monotonic() - last >= self.interval:
                await self._tick()
                last = time.monotonic()
        await self._tick()

    async def _tick(self) -> None:
        await self._guarded(self._periodic)

    async def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._failed:
            return  # keep draining, so the publisher is never held by a broken sink
        try:
            await fn(*args)
        except PluginError as exc:
            self._on_error(exc)
            self._failed = not self._drop(exc.plugin)

    def _drop(self, plugin: object) -> bool:
        """Go on without a plugin that failed; False if nothing is left to run."""
        return False

    async def _on_event(self, event: E.Event) -> None:
        raise NotImplementedError

    async def _periodic(self) -> None:
        raise NotImplementedError


class LoggerSink(_Sink):
    """The loggers, fed from the bus; each flushes its buffered output off the loop."""

    def __init__(
        self, bus: EventBus, hooks: CallbackHooks, on_error: Callable[[BaseException], None]
    ) -> None:
        sub = bus.subscribe("loggers", maxsize=LOGGER_QUEUE_SIZE, policy=Policy.BACKPRESSURE)
        super().__init__(sub, on_error)
        self._hooks = hooks
        self._unflushed = 0
        self._received = 0
        #: Events received and written out by every logger (or given up on).
        self.written = Watermark()

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            self.written.advance(math.inf)  # nothing more will be written

    async def _on_event(self, event: E.Event) -> None:
        self._received += 1
        if not self._hooks.deliver_now(event):
            await self._hooks.deliver(event)
        self._unflushed += 1
        if self._unflushed >= LOGGER_QUEUE_SIZE or type(event) is E.ExperimentEnded:
            await self._periodic()

    async def _periodic(self) -> None:
        received = self._received
        if self._unflushed:
            self._unflushed = 0
            await self._hooks.flush()
        self.written.advance(received)

    def _drop(self, plugin: object) -> bool:
        # The other loggers go on writing: what they were given stays recorded.
        self._hooks.remove(plugin)
        self._unflushed += 1  # flush the others at the next tick
        if not self._hooks.callbacks:
            self.written.advance(math.inf)  # no logger left to wait for
        return bool(self._hooks.callbacks)


class ProgressSink(_Sink):
    """The progress reporter (every few seconds, and at the end) and ``verbose=2`` lines."""

    def __init__(
        self,
        bus: EventBus,
        reporter: Any,
        table: TrialTable,
        status: Callable[[], list[Any]],
        print_results: bool,
        on_error: Callable[[BaseException], None],
    ) -> None:
        policy = Policy.BACKPRESSURE if print_results else Policy.DROP_RESULTS
        super().__init__(
            bus.subscribe("progress", maxsize=PROGRESS_QUEUE_SIZE, policy=policy), on_error
        )
        self._reporter = reporter
        self._table = table
        self._status = status
        self._print_results = print_results
        self._lines: list[str] = []
        self._ended = False

    async def _on_event(self, event: E.Event) -> None:
        if self._print_results and isinstance(event, E.ResultRecorded):
            from atune.callbacks.progress import format_result

            trial = self._table.get(event.trial_id)
            if trial is not None:
                self._lines.append(format_result(trial, event.result))
                if len(self._lines) >= _MAX_LINES:
                    await self._write(sys.stdout)
        elif isinstance(event, E.ExperimentEnded):
            self._ended = True
            await self._report(done=True)

    async def _periodic(self) -> None:
        if not self._ended:
            await self._report(done=False)

    async def _report(self, done: bool) -> None:
        if self._lines:
            await self._write(sys.stdout)
        reporter = self._reporter
        if reporter is None:
            return
        trials = self._table.trials
        if not await call_plugin(reporter, "should_report", trials, done=done):
            return
        from atune.callbacks.progress import CLIReporter

        if type(reporter).report is CLIReporter.report:
            # Ours: render here (a consistent view), write from a thread.
            self._lines.append(reporter.render(trials, done, *self._status()))
            await self._write(reporter._file or sys.stdout)
        else:
            await call_plugin(reporter, "report", trials, done, *self._status())

    async def _write(self, file: TextIO) -> None:
        text = "\n".join(self._lines) + "\n"
        self._lines = []

        def _out() -> None:
            file.write(text)
            file.flush()

        await anyio.to_thread.run_sync(_out)
