"""The bounded channel between one running trainable and the driver.

The trainable side appends results (from its thread, or from the event loop for an
``async def`` trainable) and waits while the buffer is full or while a result needs
the driver's decision first; the driver side (``TrialWorker.next_results``, on the
event loop) takes batches, acknowledges results and sets the next decision point.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Item", "ResultBuffer", "TrialStopped"]

#: ``(result, checkpoint path or None)``
Item = tuple[dict[str, Any], str | None]


class TrialStopped(BaseException):
    """Raised inside ``report()`` once the driver stopped the trial.

    A ``BaseException`` so that ``except Exception`` in user code does not swallow it.
    """


class ResultBuffer:
    """At most ``size`` results of one trial, with lockstep and decision-point holds.

    Created on the event loop that takes the results; the trainable may append from
    any thread.

    Args:
        size: The bound: the trainable waits while this many results are buffered.
        lockstep: The trainable waits after each result until the driver acked it.
        sync_point: ``(result field, value)``: the trainable waits after the first
            result whose field reaches the value until the driver acked it.
    """

    def __init__(self, size: int, lockstep: bool, sync_point: tuple[str, float] | None) -> None:
        self._size = size
        self._lockstep = lockstep
        self._sync_point = sync_point
        self._loop = asyncio.get_running_loop()
        self._loop_tid = threading.get_ident()
        self._cond = threading.Condition()
        self._items: deque[Item] = deque()
        self._produced = 0
        self._acked = 0
        # Results up to this count must be acknowledged before the trainable goes on.
        self._hold_until = 0
        self._handed_out = 0  # results taken by the driver so far
        self.stopped = False
        self.closed = False
        self._wake = asyncio.Event()
        self._trainable_wake: asyncio.Event | None = None
        # Set (under _cond) while the driver waits, so that an append only pays for a
        # cross-thread wake-up when the driver is actually waiting.
        self._driver_waiting = False

    # ------------------------------------------------------------ trainable side
    def wait_for_room(self) -> None:
        """Block the trainable's thread while the buffer is full; raise once stopped."""
        with self._cond:
            while self.full and not self.stopped:
                self._cond.wait()
            if self.stopped:
                raise TrialStopped()

    def append(self, item: Item) -> None:
        """Buffer one filled-in result and wake the driver."""
        with self._cond:
            self._items.append(item)
            self._produced += 1
            point = self._sync_point
            if point is not None:
                value = item[0].get(point[0])
                if isinstance(value, (int, float)) and value >= point[1]:
                    self._hold_until = self._produced
                    self._sync_point = None  # the driver sends the next one with its ack
            self._notify_driver()

    def wait_for_decision(self) -> None:
        """Block the trainable's thread while its last result awaits the driver's decision."""
        with self._cond:
            while self.decision_pending and not self.stopped:
                self._cond.wait()
            if self.stopped and self._acked < self._produced:
                raise TrialStopped()

    @property
    def full(self) -> bool:
        """True while the buffer holds ``size`` results."""
        return len(self._items) >= self._size

    @property
    def decision_pending(self) -> bool:
        """True while the last result needs a decision first (lockstep or sync point)."""
        if self._lockstep:
            return self._acked < self._produced
        return self._acked < self._hold_until

    async def wait_for_room_async(self) -> None:
        """:meth:`wait_for_room` for an async trainable, on the event loop."""
        await self._wait_async(lambda: self.full)
        if self.stopped:
            raise TrialStopped()

    async def wait_for_decision_async(self) -> None:
        """:meth:`wait_for_decision` for an async trainable, on the event loop."""
        await self._wait_async(lambda: self.decision_pending)
        if self.stopped and self._acked < self._produced:
            raise TrialStopped()

    async def _wait_async(self, blocked: Callable[[], bool]) -> None:
        while blocked() and not self.stopped:
            self._trainable_wake = asyncio.Event()
            await self._trainable_wake.wait()

    def _notify_driver(self) -> None:
        """Wake a waiting driver; call with _cond held."""
        if not self._driver_waiting:
            return
        self._driver_waiting = False
        self._call_on_loop(self._wake.set)

    def _call_on_loop(self, fn: Callable[[], object]) -> None:
        if threading.get_ident() == self._loop_tid:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _wake_trainable(self) -> None:
        """Wake an async trainable waiting for room or a decision (on the loop)."""
        event = self._trainable_wake
        if event is not None:
            event.set()

    # --------------------------------------------------------------- both sides
    def stop(self) -> None:
        """The driver stopped the trial: every wait of the trainable raises TrialStopped."""
        with self._cond:
            self.stopped = True
            self._cond.notify_all()
        self._call_on_loop(self._wake_trainable)

    def close(self) -> None:
        """The trainable ended: the driver takes what is left, then the end."""
        with self._cond:
            self.closed = True
            self._driver_waiting = False
            self._cond.notify_all()
        self._call_on_loop(self._wake.set)

    # --------------------------------------------------------------- driver side
    async def take(
        self,
        max_results: int,
        acked: int,
        lockstep: bool,
        linger_s: float,
        sync_point: tuple[str, float] | None,
    ) -> tuple[list[Item], int | None, bool]:
        """Wait for results; return ``(up to max_results items, held index, ended)``.

        ``acked`` results are decided on; ``sync_point`` is the next decision point,
        taking effect before the trainable is released from the current one. The held
        index is that of the result the trainable waits at, if it is in the batch;
        ended is True once the trainable ended and nothing is left.
        """
        with self._cond:
            if acked >= self._hold_until and sync_point is not None:
                self._sync_point = sync_point
            self._acked = max(self._acked, acked)
            self._lockstep = lockstep
            self._cond.notify_all()
        self._wake_trainable()
        while True:
            with self._cond:
                if self._items or self.closed:
                    self._driver_waiting = False
                    break
                self._wake.clear()
                self._driver_waiting = True
            await self._wake.wait()
        if linger_s > 0 and not self.closed and len(self._items) < max_results:
            await asyncio.sleep(linger_s)
        # Nothing is awaited from here on: a cancelled call loses no result.
        with self._cond:
            n = min(max_results, len(self._items))
            items = [self._items.popleft() for _ in range(n)]
            first, self._handed_out = self._handed_out, self._handed_out + n
            held = self._produced if self._lockstep else self._hold_until
            held_index = held - first - 1 if first < held <= first + n else None
            ended = self.closed and not self._items
            self._cond.notify_all()
        self._wake_trainable()
        return items, held_index, ended
