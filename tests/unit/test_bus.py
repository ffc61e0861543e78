"""EventBus: order per subscriber, backpressure, dropping results, closing, unsubscribing."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from anyio.lowlevel import checkpoint
from hypothesis import given
from hypothesis import strategies as st

from atune._engine import events as E
from atune._engine.bus import Delivery, EventBus, Policy, Subscription, SubscriptionStatistics
from atune.errors import ConfigError, ConfigTypeError

BP = Policy.BACKPRESSURE
DROP = Policy.DROP_RESULTS


# Events carry a fixed time, so that two made alike compare equal.
ENDED = E.ExperimentEnded(time=0.0)


def result(i: int) -> E.ResultRecorded:
    return E.ResultRecorded(trial_id="abcde_00000", result={"i": i}, time=0.0)


def started(i: int) -> E.TrialStarted:
    return E.TrialStarted(trial_id=f"abcde_{i:05d}", resources={"CPU": 1.0}, time=0.0)


async def take(sub: Subscription, n: int) -> list[E.Event]:
    return [await sub.receive() for _ in range(n)]


async def take_deliveries(sub: Subscription, n: int) -> list[Delivery]:
    return [await sub.receive_delivery() for _ in range(n)]


def queued(sub: Subscription) -> list[E.Event]:
    """Everything in the queue now, without waiting (an assertion fails, never hangs)."""
    return [sub.receive_nowait() for _ in range(len(sub))]


async def collect(sub: Subscription) -> list[E.Event]:
    return [event async for event in sub]


# -- order and independence ---------------------------------------------------------


async def test_each_subscription_receives_every_event_in_publishing_order() -> None:
    bus = EventBus()
    bp = bus.subscribe("bp", maxsize=100, policy=BP)
    drop = bus.subscribe("drop", maxsize=100, policy=DROP)
    events: list[E.Event] = [started(0), *(result(i) for i in range(50)), ENDED]
    for event in events:
        await bus.publish(event)
    bus.close()

    assert await collect(bp) == events
    assert await collect(drop) == events


async def test_subscriptions_read_independently() -> None:
    bus = EventBus()
    fast = bus.subscribe("fast", maxsize=10, policy=BP)
    slow = bus.subscribe("slow", maxsize=10, policy=BP)
    await bus.publish(result(0))
    await bus.publish(result(1))

    assert await take(fast, 2) == [result(0), result(1)]
    assert len(fast) == 0
    assert len(slow) == 2
    assert await slow.receive() == result(0)


async def test_a_late_subscription_sees_only_events_published_after_it() -> None:
    bus = EventBus()
    early = bus.subscribe("early", maxsize=10, policy=BP)
    await bus.publish(result(0))
    late = bus.subscribe("late", maxsize=10, policy=BP)
    await bus.publish(result(1))
    bus.close()

    assert await collect(early) == [result(0), result(1)]
    assert await collect(late) == [result(1)]


async def test_a_waiting_reader_wakes_when_an_event_is_published() -> None:
    bus = EventBus()
    sub = bus.subscribe("reader", maxsize=10, policy=BP)
    got: list[E.Event] = []

    async def read() -> None:
        got.append(await sub.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        await bus.publish(result(7))
    assert got == [result(7)]


# -- BACKPRESSURE ---------------------------------------------------------------------


async def test_backpressure_blocks_the_publisher_until_the_subscriber_has_room() -> None:
    bus = EventBus()
    sub = bus.subscribe("logger", maxsize=2, policy=BP)
    await bus.publish(result(0))
    await bus.publish(result(1))
    done = anyio.Event()

    async def publish_third() -> None:
        await bus.publish(result(2))
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(publish_third)
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set()
        assert len(sub) == 2

        assert await sub.receive() == result(0)
        await done.wait()
    assert await take(sub, 2) == [result(1), result(2)]


async def test_backpressure_loses_no_event_under_a_slow_reader() -> None:
    bus = EventBus()
    sub = bus.subscribe("logger", maxsize=3, policy=BP)
    events: list[E.Event] = [started(0), *(result(i) for i in range(200)), ENDED]
    got: list[E.Event] = []

    async def slow_reader() -> None:
        async for event in sub:
            got.append(event)
            await checkpoint()
            await checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow_reader)
        for event in events:
            await bus.publish(event)
            assert len(sub) <= 3
        bus.close()
    assert got == events
    assert sub.dropped == 0


async def test_a_waiting_publisher_holds_back_later_publishers_to_keep_the_order() -> None:
    bus = EventBus()
    sub = bus.subscribe("logger", maxsize=1, policy=BP)
    other = bus.subscribe("view", maxsize=100, policy=DROP)
    await bus.publish(result(0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(bus.publish, result(1))
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(bus.publish, result(2))
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.WouldBlock):
            bus.publish_nowait(result(3))
        assert await take(sub, 3) == [result(0), result(1), result(2)]
    assert await take(other, 3) == [result(0), result(1), result(2)]


async def test_a_cancelled_publisher_still_delivers_its_event_to_every_subscriber() -> None:
    bus = EventBus()
    before = bus.subscribe("before", maxsize=10, policy=BP)
    full = bus.subscribe("full", maxsize=1, policy=BP)
    after = bus.subscribe("after", maxsize=1, policy=BP)
    await bus.publish(result(0))  # `full` and `after` are full now

    with anyio.CancelScope() as scope:
        scope.cancel()
        await bus.publish(result(1))

    # The event waits on the bus for its turn; no subscriber is given more than its
    # bound, none misses it, and later events queue behind it.
    assert (len(before), len(full), len(after)) == (2, 1, 1)
    with pytest.raises(anyio.WouldBlock):
        bus.publish_nowait(result(2))
    assert queued(full) == [result(0)]  # reading frees room: result(1) moves in
    assert queued(full) == [result(1)]
    assert queued(after) == [result(0)]
    assert queued(after) == [result(1)]
    await bus.publish(result(2))
    assert queued(before) == [result(0), result(1), result(2)]


async def test_waiting_publishers_are_released_together_at_half_the_bound() -> None:
    bus = EventBus()
    sub = bus.subscribe("logger", maxsize=4, policy=BP)
    for i in range(4):
        await bus.publish(result(i))
    done: list[int] = []

    async def publish(i: int) -> None:
        await bus.publish(result(i))
        done.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(4, 7):
            tg.start_soon(publish, i)
        await anyio.wait_all_tasks_blocked()
        assert done == []
        sub.receive_nowait()  # 3 queued: above half, nobody moves
        await anyio.wait_all_tasks_blocked()
        assert done == []
        sub.receive_nowait()  # 2 queued: half; the waiting events fill the queue again
        assert len(sub) == 4
        await anyio.wait_all_tasks_blocked()
        assert done == [4, 5]  # released together; 6 still waits for room
        assert queued(sub) == [result(i) for i in range(2, 6)]
        await anyio.wait_all_tasks_blocked()
    assert done == [4, 5, 6]
    assert queued(sub) == [result(6)]


async def test_publish_nowait_delivers_to_all_or_raises_would_block_and_delivers_none() -> None:
    bus = EventBus()
    roomy = bus.subscribe("roomy", maxsize=10, policy=BP)
    tight = bus.subscribe("tight", maxsize=1, policy=BP)
    view = bus.subscribe("view", maxsize=1, policy=DROP)
    bus.publish_nowait(started(0))

    with pytest.raises(anyio.WouldBlock):
        bus.publish_nowait(started(1))
    assert (len(roomy), len(tight), len(view)) == (1, 1, 1)

    await tight.receive()
    bus.publish_nowait(started(1))
    assert await take(roomy, 2) == [started(0), started(1)]
    assert await tight.receive() == started(1)


# -- DROP_RESULTS ---------------------------------------------------------------------


async def test_drop_results_drops_the_oldest_result_to_make_room() -> None:
    bus = EventBus()
    sub = bus.subscribe("progress", maxsize=3, policy=DROP)
    for i in range(5):
        await bus.publish(result(i))  # never waits

    assert sub.dropped == 2
    assert await take(sub, 3) == [result(2), result(3), result(4)]


async def test_the_next_event_received_tells_how_many_results_were_dropped_before_it() -> None:
    bus = EventBus()
    sub = bus.subscribe("progress", maxsize=3, policy=DROP)
    await bus.publish(started(0))
    for i in range(6):
        await bus.publish(result(i))
    # queue: started(0), result(4) after dropping result(0..3), result(5)

    assert await take_deliveries(sub, 3) == [
        Delivery(started(0), 0),
        Delivery(result(4), 4),
        Delivery(result(5), 0),
    ]
    await bus.publish(result(6))
    assert await sub.receive_delivery() == Delivery(result(6), 0)
    assert sub.dropped == 4


async def test_drop_results_never_drops_a_lifecycle_event() -> None:
    bus = EventBus()
    sub = bus.subscribe("progress", maxsize=3, policy=DROP)
    await bus.publish(result(0))
    await bus.publish(started(0))
    await bus.publish(result(1))
    await bus.publish(started(1))  # full: result(0) goes
    await bus.publish(started(2))  # full: result(1) goes

    assert await take_deliveries(sub, 3) == [
        Delivery(started(0), 1),
        Delivery(started(1), 1),
        Delivery(started(2), 0),
    ]


async def test_lifecycle_events_queue_beyond_the_bound_when_no_result_can_make_room() -> None:
    bus = EventBus()
    sub = bus.subscribe("progress", maxsize=2, policy=DROP)
    for i in range(5):
        await bus.publish(started(i))

    assert len(sub) == 5
    assert sub.statistics().queued == 5
    assert sub.dropped == 0
    assert await take(sub, 5) == [started(i) for i in range(5)]


async def test_a_result_arriving_at_a_queue_of_lifecycle_events_only_is_dropped() -> None:
    bus = EventBus()
    sub = bus.subscribe("progress", maxsize=2, policy=DROP)
    await bus.publish(started(0))
    await bus.publish(started(1))
    await bus.publish(result(0))  # no result queued to drop: this one goes
    await bus.publish(result(1))
    await sub.receive()
    await bus.publish(result(2))  # room again

    assert sub.dropped == 2
    assert await take_deliveries(sub, 2) == [Delivery(started(1), 0), Delivery(result(2), 2)]


async def test_every_dropped_result_is_told_by_the_event_after_it() -> None:
    bus = EventBus()
    sub = bus.subscribe("live", maxsize=2, policy=DROP)
    for i in range(10):
        await bus.publish(result(i))
    await bus.publish(ENDED)
    bus.close()

    deliveries = [d async for d in sub.deliveries()]
    assert deliveries == [Delivery(result(9), 9), Delivery(ENDED, 0)]
    assert sub.dropped == 9


# -- closing and unsubscribing --------------------------------------------------------


async def test_close_ends_iteration_after_the_queue_is_drained() -> None:
    bus = EventBus()
    sub = bus.subscribe("journal", maxsize=10, policy=BP)
    await bus.publish(result(0))
    await bus.publish(ENDED)
    bus.close()

    assert await collect(sub) == [result(0), ENDED]
    with pytest.raises(anyio.EndOfStream):
        await sub.receive()
    with pytest.raises(anyio.EndOfStream):
        sub.receive_nowait()


async def test_close_wakes_a_reader_waiting_on_an_empty_queue() -> None:
    bus = EventBus()
    sub = bus.subscribe("journal", maxsize=10, policy=DROP)
    got: list[list[E.Event]] = []

    async def read() -> None:
        got.append(await collect(sub))

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        bus.close()
    assert got == [[]]


async def test_an_event_waiting_for_room_when_the_bus_closes_is_still_delivered() -> None:
    bus = EventBus()
    sub = bus.subscribe("journal", maxsize=1, policy=BP)
    await bus.publish(result(0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(bus.publish, ENDED)
        await anyio.wait_all_tasks_blocked()
        bus.close()
        got = await collect(sub)
    assert got == [result(0), ENDED]


async def test_publishing_or_subscribing_after_close_raises() -> None:
    bus = EventBus()
    bus.close()
    with pytest.raises(anyio.ClosedResourceError):
        await bus.publish(result(0))
    with pytest.raises(anyio.ClosedResourceError):
        bus.publish_nowait(result(0))
    with pytest.raises(anyio.ClosedResourceError):
        bus.subscribe("late", maxsize=1, policy=BP)


async def test_unsubscribing_releases_a_publisher_blocked_on_that_subscriber() -> None:
    bus = EventBus()
    stuck = bus.subscribe("stuck", maxsize=1, policy=BP)
    healthy = bus.subscribe("healthy", maxsize=10, policy=BP)
    await bus.publish(result(0))
    done = anyio.Event()

    async def publish() -> None:
        await bus.publish(result(1))
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(publish)
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set()
        stuck.close()
        await done.wait()
    assert await take(healthy, 2) == [result(0), result(1)]
    assert bus.subscriptions == (healthy,)


async def test_a_closed_subscription_never_blocks_and_keeps_nothing() -> None:
    bus = EventBus()
    sub = bus.subscribe("gone", maxsize=1, policy=BP)
    await bus.publish(result(0))
    sub.close()
    sub.close()  # idempotent
    for i in range(5):
        bus.publish_nowait(result(i))

    assert len(sub) == 0
    assert sub.closed
    with pytest.raises(anyio.ClosedResourceError):
        await sub.receive()
    assert await collect(sub) == []


async def test_closing_a_subscription_ends_a_reader_waiting_on_it() -> None:
    bus = EventBus()
    sub = bus.subscribe("gone", maxsize=1, policy=BP)
    got: list[list[E.Event]] = []

    async def read() -> None:
        got.append(await collect(sub))

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        sub.close()
    assert got == [[]]


async def test_leaving_the_context_manager_unsubscribes() -> None:
    bus = EventBus()
    with bus.subscribe("sync", maxsize=1, policy=BP) as sync_sub:
        assert bus.subscriptions == (sync_sub,)
    async with bus.subscribe("async", maxsize=1, policy=BP) as async_sub:
        assert bus.subscriptions == (async_sub,)

    assert sync_sub.closed and async_sub.closed
    assert bus.subscriptions == ()


# -- introspection and validation -----------------------------------------------------


async def test_bound_policy_and_drops_are_introspectable() -> None:
    bus = EventBus()
    logger = bus.subscribe("logger", maxsize=8, policy=BP)
    view = bus.subscribe("view", maxsize=1, policy=DROP)
    await bus.publish(result(0))
    await bus.publish(result(1))

    assert (view.name, view.maxsize, view.policy, view.dropped) == ("view", 1, DROP, 1)
    assert bus.statistics() == [
        SubscriptionStatistics("logger", BP, 8, queued=2, dropped=0, closed=False),
        SubscriptionStatistics("view", DROP, 1, queued=1, dropped=1, closed=False),
    ]
    assert repr(logger) == (
        "Subscription('logger', policy=BACKPRESSURE, maxsize=8, queued=2, dropped=0)"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"maxsize": 0, "policy": BP}, ConfigError, "`maxsize` must be >= 1, got 0"),
        ({"maxsize": 2.5, "policy": BP}, ConfigTypeError, "`maxsize` must be an int, got 2.5"),
        ({"maxsize": True, "policy": BP}, ConfigTypeError, "`maxsize` must be an int"),
        ({"maxsize": 1, "policy": "drop"}, ConfigTypeError, "`policy` must be a Policy"),
    ],
)
def test_subscribe_rejects_a_bad_bound_or_policy(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    bus = EventBus()
    with pytest.raises(error, match=message.replace("(", r"\(")):
        bus.subscribe("bad", **kwargs)  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------


def model_drop_results(
    ops: Sequence[tuple[str, int]], maxsize: int
) -> tuple[list[tuple[int, int]], int]:
    """The DROP_RESULTS rules on a plain list: the (event index, dropped_before) each
    consume step receives, and the number of results dropped."""
    queue: list[list[int]] = []  # [event index, dropped before, is lifecycle]
    received: list[tuple[int, int]] = []
    carry = dropped = 0
    published = 0
    for op, arg in ops:
        if op == "consume":
            for _ in range(min(arg, len(queue))):
                index, before, _ = queue.pop(0)
                received.append((index, before))
            continue
        lifecycle = op == "lifecycle"
        if len(queue) >= maxsize:
            victim = next((k for k, item in enumerate(queue) if not item[2]), None)
            if victim is not None:
                _, before, _ = queue.pop(victim)
                dropped += 1
                if victim < len(queue):
                    queue[victim][1] += before + 1
                else:
                    carry += before + 1
            elif not lifecycle:
                dropped += 1
                carry += 1
                published += 1
                continue
        queue.append([published, carry, lifecycle])
        carry = 0
        published += 1
    return received, dropped


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["result", "result", "result", "lifecycle"]), st.just(0)),
        st.tuples(st.just("consume"), st.integers(0, 6)),
    ),
    max_size=80,
)


@given(ops=ops_strategy, maxsize=st.integers(1, 5))
async def test_drop_results_delivers_the_published_events_minus_the_dropped_in_order(
    ops: list[tuple[str, int]], maxsize: int
) -> None:
    bus = EventBus()
    sub = bus.subscribe("view", maxsize=maxsize, policy=DROP)
    published: list[E.Event] = []
    received: list[Delivery] = []
    steps: list[tuple[str, int]] = []
    for op, arg in ops:
        if op == "consume":
            n = min(arg, len(sub))
            received += await take_deliveries(sub, n)
        else:
            event: E.Event = (
                started(len(published)) if op == "lifecycle" else result(len(published))
            )
            published.append(event)
            await bus.publish(event)
        steps.append((op, arg))
        # The queue passes its bound only by lifecycle events.
        assert len(sub) <= max(maxsize, sum(e.lifecycle for e in published))
    published.append(ENDED)
    await bus.publish(ENDED)
    bus.close()
    received += [d async for d in sub.deliveries()]
    steps.append(("lifecycle", 0))
    steps.append(("consume", len(published)))

    got = [d.event for d in received]
    positions = [published.index(e) for e in got]
    assert positions == sorted(set(positions)), "delivered in publishing order, once each"
    assert len(got) == len(published) - sub.dropped
    assert [e for e in got if e.lifecycle] == [e for e in published if e.lifecycle]
    assert sum(d.dropped_before for d in received) == sub.dropped
    # Exactly the reference rules, including which results go and who tells of them.
    expected, dropped = model_drop_results(steps, maxsize)
    assert [(positions[k], d.dropped_before) for k, d in enumerate(received)] == expected
    assert sub.dropped == dropped


@given(
    pauses=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60),
    maxsize=st.integers(1, 4),
)
async def test_backpressure_delivers_everything_in_order_under_any_interleaving(
    pauses: list[tuple[int, int]], maxsize: int
) -> None:
    bus = EventBus()
    subs = [bus.subscribe(f"s{k}", maxsize=maxsize, policy=BP) for k in range(2)]
    events: list[E.Event] = [started(i) if i % 7 == 0 else result(i) for i in range(len(pauses))]
    got: list[list[E.Event]] = [[], []]

    async def read(k: int) -> None:
        async for event in subs[k]:
            got[k].append(event)
            for _ in range(pauses[len(got[k]) - 1][k]):
                await checkpoint()

    async with anyio.create_task_group() as tg:
        for k in range(2):
            tg.start_soon(read, k)
        for event in events:
            await bus.publish(event)
            assert all(len(sub) <= maxsize for sub in subs)
        bus.close()
    assert got == [events, events]
