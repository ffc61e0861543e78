"""The event bus: every event of an experiment, in order, to each subscriber.

The controller publishes each :mod:`~atune._engine.events` event once; every
subscriber (loggers, callbacks, progress, the journal, the live handle, the REST
server) reads it from its own bounded queue, and declares up front what happens when it
falls behind:

- :attr:`Policy.BACKPRESSURE`: :meth:`EventBus.publish` waits until the subscriber has
  room. The subscriber sees every event and bounds the producer: while its queue is
  full, the controller stops recording results, so trials stall, at most until that
  subscriber has drained half its bound: waiting publishers resume together once the
  queue is down to ``maxsize // 2`` events, so that a full queue does not make the two
  sides take turns, one event and one trip through the event loop at a time. For sinks
  that must see everything: loggers, the journal.
- :attr:`Policy.DROP_RESULTS`: publishing never waits. When the queue is full, the
  oldest *result* (a non-lifecycle event, see :attr:`Event.lifecycle
  <atune._engine.events.Event.lifecycle>`) in it is dropped to make room, never a
  lifecycle event. If the queue holds only lifecycle events, an arriving result is
  dropped instead, and an arriving lifecycle event is queued beyond the bound: they
  are a few per trial, so the overshoot is small, and losing one would leave the
  subscriber with a wrong picture (a trial it never saw start or end). Each event
  received says how many results were dropped just before it
  (:attr:`Delivery.dropped_before`), and :attr:`Subscription.dropped` counts them all.
  For views that only need to keep up: progress, the live handle, the REST server.

Example:
    >>> import anyio
    >>> from atune._engine import events as E
    >>> async def main():
    ...     bus = EventBus()
    ...     sub = bus.subscribe("printer", maxsize=16, policy=Policy.BACKPRESSURE)
    ...     await bus.publish(E.TrialAdded(trial_id="a1b2c_00000", config={}))
    ...     await bus.publish(E.ExperimentEnded())
    ...     bus.close()
    ...     return [event.kind async for event in sub]
    >>> anyio.run(main)
    ['trial_added', 'experiment_ended']

Cost: publishing to subscribers that have room appends to one ``collections.deque``
per subscriber and wakes a waiting reader; there is no task or channel per event, and
neither :meth:`EventBus.publish` nor :meth:`Subscription.receive` yields to the event
loop unless it has to wait (like anyio's ``*_nowait`` calls). Results arrive at tens
of thousands per second, and a checkpoint per call would be a large share of that
budget; the producer and the consumers wait elsewhere often enough (an empty queue, a
full one, the next batch of results).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

from atune._engine.events import Event
from atune.errors import ConfigError, ConfigTypeError

__all__ = ["Delivery", "EventBus", "Policy", "Subscription", "SubscriptionStatistics"]


class Policy(enum.Enum):
    """What a subscription does when it falls behind the publisher."""

    #: The publisher waits for room: every event is delivered.
    BACKPRESSURE = "backpressure"
    #: The oldest queued result is dropped for room; lifecycle events never are.
    DROP_RESULTS = "drop_results"


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event as one subscription received it.

    Attributes:
        event: The event.
        dropped_before: How many results this subscription dropped between the event
            it received before this one and this one (always 0 for
            :attr:`Policy.BACKPRESSURE`).
    """

    event: Event
    dropped_before: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionStatistics:
    """A snapshot of one subscription, for debugging and docs.

    Attributes:
        name: The name it was subscribed with.
        policy: Its policy when it falls behind.
        maxsize: The bound of its queue.
        queued: Events waiting in its queue now (above ``maxsize`` only for lifecycle
            events of a :attr:`Policy.DROP_RESULTS` subscription).
        dropped: Results it dropped so far.
        closed: Whether it was closed (unsubscribed).
    """

    name: str
    policy: Policy
    maxsize: int
    queued: int
    dropped: int
    closed: bool


class Subscription:
    """One subscriber's bounded queue of events; made by :meth:`EventBus.subscribe`.

    Iterate it (``async for event in sub``) to receive events in publishing order; the
    iteration ends once the bus is closed and the queue is drained, or when the
    subscription is closed. To learn about dropped results, iterate
    :meth:`deliveries` instead, which yields :class:`Delivery` pairs.

    :meth:`close` (or leaving ``with sub:`` / ``async with sub:``) unsubscribes:
    queued events are discarded, a publisher waiting for room is released at once,
    and nothing more is queued.

    One task should read a subscription; readers of a shared one each get some of
    the events.
    """

    def __init__(self, bus: EventBus, name: str, maxsize: int, policy: Policy) -> None:
        self._bus = bus
        self._name = name
        self._maxsize = maxsize
        self._policy = policy
        self._drop_results = policy is Policy.DROP_RESULTS
        #: Oldest first: for DROP_RESULTS (event, results dropped just before it), for
        #: BACKPRESSURE the bare event (nothing is ever dropped before it), which saves
        #: a tuple per queued event for the garbage collector to walk.
        self._queue: deque[Any] = deque()
        #: DROP_RESULTS only: index of the oldest result in the queue (len if none).
        self._first_result = 0
        #: Results dropped after the last queued event, told by the next one.
        self._carry = 0
        self._dropped = 0
        self._closed = False
        self._ended = False  # the bus is closed and its last publish is done
        self._readable: anyio.Event | None = None  # set when an event arrives

    # -- introspection -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name it was subscribed with (for display and debugging)."""
        return self._name

    @property
    def maxsize(self) -> int:
        """The bound of the queue."""
        return self._maxsize

    @property
    def policy(self) -> Policy:
        """What happens when this subscription falls behind."""
        return self._policy

    @property
    def dropped(self) -> int:
        """Results dropped so far (always 0 for :attr:`Policy.BACKPRESSURE`)."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __len__(self) -> int:
        """Events waiting in the queue."""
        return len(self._queue)

    def statistics(self) -> SubscriptionStatistics:
        """A snapshot of the name, bound, policy, queue length and drop count."""
        return SubscriptionStatistics(
            name=self._name,
            policy=self._policy,
            maxsize=self._maxsize,
            queued=len(self._queue),
            dropped=self._dropped,
            closed=self._closed,
        )

    def __repr__(self) -> str:
        return (
            f"Subscription({self._name!r}, policy={self._policy.name}, "
            f"maxsize={self._maxsize}, queued={len(self._queue)}, dropped={self._dropped})"
        )

    # -- receiving -----------------------------------------------------------------

    async def receive(self) -> Event:
        """The next event, waiting for one if the queue is empty.

        Raises:
            anyio.EndOfStream: The bus is closed and every event was received.
            anyio.ClosedResourceError: This subscription was closed.
        """
        event, _ = await self._next()
        return event

    async def receive_delivery(self) -> Delivery:
        """Like :meth:`receive`, with how many results were dropped before the event."""
        event, dropped_before = await self._next()
        return Delivery(event, dropped_before)

    def receive_nowait(self) -> Event:
        """The next event if one is queued.

        Raises:
            anyio.WouldBlock: The queue is empty and more events may come.
            anyio.EndOfStream: The bus is closed and every event was received.
            anyio.ClosedResourceError: This subscription was closed.
        """
        if self._queue:
            item = self._take()
            return item[0] if self._drop_results else item  # type: ignore[no-any-return]
        self._check_open()
        raise anyio.WouldBlock

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            event, _ = await self._next()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        return event

    def deliveries(self) -> _Deliveries:
        """Iterate :class:`Delivery` pairs: ``async for d in sub.deliveries(): ...``."""
        return _Deliveries(self)

    async def _next(self) -> tuple[Event, int]:
        while not self._queue:
            self._check_open()
            if self._readable is None:
                self._readable = anyio.Event()
            await self._readable.wait()
        item = self._take()
        return item if self._drop_results else (item, 0)  # type: ignore[no-any-return]

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError(f"subscription {self._name!r} is closed")
        if self._ended:
            raise anyio.EndOfStream

    def _take(self) -> Any:
        """The oldest queued item: see ``_queue`` for its form."""
        item = self._queue.popleft()
        if self._drop_results:
            if self._first_result:
                self._first_result -= 1
            else:  # took the oldest result: find the next one
                self._first_result = self._skip_lifecycle(0)
        if self._bus._backlog and len(self._queue) <= self._maxsize // 2:
            self._bus._pump()
        return item

    # -- closing -------------------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe: discard queued events and never block the publisher again.

        Idempotent. A task waiting in :meth:`receive` gets
        ``anyio.ClosedResourceError``; iteration just ends.
        """
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._first_result = 0
        self._bus._unsubscribe(self)
        self._wake_reader()
        if self._bus._backlog:
            self._bus._pump()

    async def aclose(self) -> None:
        """Same as :meth:`close` (for ``async with`` and anyio's stream protocol)."""
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the publisher's side ------------------------------------------------------

    def _blocks(self) -> bool:
        """Would :meth:`_offer` refuse an event now?"""
        return not self._drop_results and not self._closed and len(self._queue) >= self._maxsize

    def _offer(self, event: Event) -> bool:
        """Queue the event if the policy allows now; False means "wait for room"."""
        if self._closed:
            return True  # a closed subscriber takes everything, and keeps nothing
        queue = self._queue
        n = len(queue)
        if n >= self._maxsize:
            if not self._drop_results:
                return False
            if self._first_result < n:
                self._drop_oldest_result()
                n -= 1
            elif not event.lifecycle:  # only lifecycle events queued: drop this result
                self._dropped += 1
                self._carry += 1
                return True
            # else: only lifecycle events queued, and this is one: queue beyond the bound
        if self._drop_results:
            queue.append((event, self._carry))
            self._carry = 0
        else:
            queue.append(event)
        if self._drop_results and self._first_result == n and event.lifecycle:
            self._first_result = n + 1
        self._wake_reader()
        return True

    def _drop_oldest_result(self) -> None:
        queue = self._queue
        i = self._first_result
        _, before = queue[i]
        del queue[i]
        self._dropped += 1
        # The next event, queued or still to come, tells of this result and the ones
        # dropped before it.
        if i < len(queue):
            event, n = queue[i]
            queue[i] = (event, n + before + 1)
        else:
            self._carry += before + 1
        self._first_result = self._skip_lifecycle(i)

    def _skip_lifecycle(self, i: int) -> int:
        # Amortised O(1): each lifecycle event is stepped over once on its way to the
        # front of the queue.
        queue = self._queue
        n = len(queue)
        while i < n and queue[i][0].lifecycle:
            i += 1
        return i

    def _end(self) -> None:
        self._ended = True
        self._wake_reader()

    def _wake_reader(self) -> None:
        if self._readable is not None:
            self._readable.set()
            self._readable = None


class _Deliveries:
    """Async iterator of :class:`Delivery` pairs of one subscription."""

    def __init__(self, sub: Subscription) -> None:
        self._sub = sub

    def __aiter__(self) -> _Deliveries:
        return self

    async def __anext__(self) -> Delivery:
        try:
            event, dropped_before = await self._sub._next()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        return Delivery(event, dropped_before)


@dataclass(slots=True)
class _Pending:
    """An event waiting for room, and the subscriptions that still have to get it."""

    event: Event
    rest: deque[Subscription]
    done: bool = False


class EventBus:
    """Publishes events in order to every subscriber, each with its own bounded queue.

    Events are delivered to each subscription in the order they were published,
    including by concurrent publishers (a publisher that must wait holds back those
    after it). A subscription made later sees only events published after it.

    The producer's contract: publish the :class:`~atune._engine.events.ExperimentEnded`
    event last, then :meth:`close`; subscriptions end once they have received
    everything published before the close.
    """

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()
        self._closed = False
        #: Events that some BACKPRESSURE subscription had no room for yet, in order,
        #: each with the subscriptions still to get it. Later events queue behind.
        self._backlog: deque[_Pending] = deque()
        #: Set (and replaced) each time the backlog moves: wakes every waiting publisher.
        self._moved: anyio.Event | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The open subscriptions, in subscribing order."""
        return self._subs

    def statistics(self) -> list[SubscriptionStatistics]:
        """A snapshot of every open subscription (bound, policy, queue, drops)."""
        return [sub.statistics() for sub in self._subs]

    def subscribe(self, name: str, *, maxsize: int, policy: Policy) -> Subscription:
        """A new subscription that receives every event published from now on.

        Args:
            name: For display and debugging (need not be unique).
            maxsize: The bound of its queue, >= 1.
            policy: What happens when it falls behind (see :class:`Policy`).

        Raises:
            anyio.ClosedResourceError: The bus is closed.
        """
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise ConfigTypeError(f"`maxsize` must be an int, got {maxsize!r}")
        if maxsize < 1:
            raise ConfigError(f"`maxsize` must be >= 1, got {maxsize}")
        if not isinstance(policy, Policy):
            raise ConfigTypeError(f"`policy` must be a Policy, got {policy!r}")
        if self._closed:
            raise anyio.ClosedResourceError("the event bus is closed")
        sub = Subscription(self, name, maxsize, policy)
        self._subs = (*self._subs, sub)
        return sub

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscription, after every event published before.

        Returns at once unless a :attr:`Policy.BACKPRESSURE` subscription is full (or
        an earlier event still waits for room); then it waits until the event is
        delivered. Waiting publishers are released together, in batches, as readers
        drain their queues to half their bound. If it is cancelled while waiting, the
        event stays queued on the bus and is delivered in its turn, so that every
        subscription sees the same events.

        Raises:
            anyio.ClosedResourceError: The bus is closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError("the event bus is closed")
        subs = self._subs
        if not self._backlog:
            i, n = 0, len(subs)
            while i < n and subs[i]._offer(event):
                i += 1
            if i == n:
                return
            subs = subs[i:]
        pending = _Pending(event, deque(subs))
        self._backlog.append(pending)
        self._pump()
        while not pending.done:
            if self._moved is None:
                self._moved = anyio.Event()
            await self._moved.wait()

    def publish_nowait(self, event: Event) -> None:
        """Deliver ``event`` to every subscription now, or to none.

        For sync code (lifecycle events outside a coroutine).

        Raises:
            anyio.WouldBlock: A :attr:`Policy.BACKPRESSURE` subscription is full, or an
                earlier event still waits for room; nothing was delivered.
            anyio.ClosedResourceError: The bus is closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError("the event bus is closed")
        subs = self._subs
        if self._backlog or any(sub._blocks() for sub in subs):
            raise anyio.WouldBlock
        for sub in subs:
            sub._offer(event)

    def close(self) -> None:
        """No more events: each subscription ends once it has received the rest.

        Publishing after this raises ``anyio.ClosedResourceError``; a publisher
        already waiting for room still delivers its event. Idempotent.
        """
        self._closed = True
        self._end_if_closed()

    def _pump(self) -> None:
        """Deliver waiting events, in order, while their subscriptions have room."""
        backlog = self._backlog
        moved = False
        while backlog:
            pending = backlog[0]
            rest = pending.rest
            while rest and rest[0]._offer(pending.event):
                rest.popleft()
            if rest:
                break
            backlog.popleft()
            pending.done = True
            moved = True
        if moved and self._moved is not None:
            self._moved.set()
            self._moved = None
        self._end_if_closed()

    def _end_if_closed(self) -> None:
        if self._closed and not self._backlog:
            for sub in self._subs:
                sub._end()

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)
