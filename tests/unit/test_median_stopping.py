"""MedianStoppingRule on synthetic result sequences: the exact comparison and its inputs.

The rule (module docstring of ``atune.schedulers.median_stopping_rule``): at time t
past the grace period, stop a trial whose best reward so far is strictly worse than
the median, over the other trials that reached t, of their mean reward in
[grace_period, t].
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atune._trial import Trial
from atune.errors import ConfigError, ConfigTypeError
from atune.schedulers._base import TrialScheduler
from atune.schedulers.fifo import FIFOScheduler
from atune.schedulers.median_stopping_rule import MedianStoppingRule
from tests.unit.fake_controller import FakeController, make_trial

CONTINUE, PAUSE, STOP = TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP
IT = "training_iteration"


def decide(coro: Any) -> Any:
    """Run a handler coroutine that never awaits, without an event loop (for hypothesis)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("a scheduler handler awaited something")


def rule(**kwargs: Any) -> MedianStoppingRule:
    kwargs.setdefault("time_attr", IT)
    kwargs.setdefault("metric", "acc")
    kwargs.setdefault("mode", "max")
    kwargs.setdefault("grace_period", 2)
    return MedianStoppingRule(**kwargs)


def running(sched: MedianStoppingRule, ctl: FakeController, n: int) -> list[Trial]:
    trials = []
    for i in range(n):
        trial = ctl.add(make_trial(i))
        trial.status = Trial.RUNNING
        decide(sched.on_trial_add(ctl, trial))
        trials.append(trial)
    return trials


def report(sched, ctl, trial, t, value, *, metric="acc", time_attr=IT):
    return decide(sched.on_trial_result(ctl, trial, {time_attr: t, metric: value}))


def curve(sched, ctl, trial, values, start=1):
    """Report values[0] at t=start, values[1] at t=start+1, ...; return the decisions."""
    return [report(sched, ctl, trial, start + i, v) for i, v in enumerate(values)]


def three_others(sched, ctl, trials, sign=1.0):
    """Trials A, B, C report q * t for t = 1..4 with q = 1, 2, 3 (sign -1: negated)."""
    for trial, q in zip(trials, (1, 2, 3)):
        assert curve(sched, ctl, trial, [sign * q * t for t in range(1, 5)]) == [CONTINUE] * 4


# ------------------------------------------------------------------ construction
def test_defaults_and_debug_string():
    sched = MedianStoppingRule()
    assert isinstance(sched, FIFOScheduler)
    assert (sched._time_attr, sched._grace_period, sched._min_samples_required) == (
        "time_total_s",
        60.0,
        3,
    )
    assert (sched._min_time_slice, sched._hard_stop) == (0, True)
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=0."


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"grace_period": -1}, ConfigError, r"`grace_period` must be a finite number >= 0"),
        ({"grace_period": "60"}, ConfigTypeError, r"`grace_period` must be a number, got '60'"),
        ({"min_samples_required": 0}, ConfigError, r"`min_samples_required` must be >= 1, got 0"),
        ({"min_samples_required": 2.5}, ConfigTypeError, r"must be an int, got 2.5"),
        ({"min_time_slice": -1}, ConfigError, r"`min_time_slice` must be >= 0, got -1"),
        ({"mode": "best"}, ConfigError, r"`mode` must be 'min' or 'max', got 'best'"),
        ({"time_attr": None}, ConfigTypeError, r"`time_attr` must be a result field name"),
    ],
)
def test_invalid_arguments_are_rejected_naming_parameter_and_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        rule(**kwargs)


def test_reward_attr_means_maximise_that_field():
    sched = MedianStoppingRule(reward_attr="episode_reward_mean")
    assert (sched.metric, sched.mode) == ("episode_reward_mean", "max")


async def test_a_trial_cannot_be_added_without_metric_and_mode():
    with pytest.raises(ConfigError, match=r"needs a `metric` and a `mode`"):
        await MedianStoppingRule(mode="max").on_trial_add(FakeController(), make_trial(0))


# -------------------------------------------------------------------- decisions
async def test_a_best_strictly_below_the_median_stops_and_a_tie_continues():
    sched = rule()
    ctl = FakeController()
    a, b, c, d, e = running(sched, ctl, 5)
    three_others(sched, ctl, (a, b, c))
    # At t=2 the others' means over [2, 2] are 2, 4, 6: median 4.
    assert curve(sched, ctl, d, [0, 4]) == [CONTINUE, CONTINUE]  # 4 == 4: continues
    assert curve(sched, ctl, e, [0, 3.9]) == [CONTINUE, STOP]
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=1."


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 5, 1], [CONTINUE] * 3),  # t=3: best 5 == median 5, though it reports 1
        ([0, 4, 4.5], [CONTINUE, CONTINUE, STOP]),  # t=3: best 4.5 < median 5
    ],
)
async def test_the_trial_is_judged_by_its_best_reward_so_far(values, expected):
    sched = rule()
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    three_others(sched, ctl, (a, b, c))
    # t=2: the others' means over [2, 2] are 2, 4, 6 (median 4);
    # t=3: over [2, 3] they are 2.5, 5, 7.5 (median 5).
    assert curve(sched, ctl, d, values) == expected


async def test_equally_good_trials_tie_exactly_despite_rounding():
    sched = rule()
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    for trial in (a, b, c):
        curve(sched, ctl, trial, [0.1, 0.1, 0.1, 0.1])
    # fsum([0.1] * 3) / 3 (and np.mean) is 0.10000000000000002 > 0.1: the mean is kept
    # within the range of the values it averages.
    assert curve(sched, ctl, d, [0.1, 0.1, 0.1, 0.1]) == [CONTINUE] * 4


async def test_the_best_counts_results_before_the_grace_period():
    sched = rule()
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    three_others(sched, ctl, (a, b, c))
    assert curve(sched, ctl, d, [10, 0]) == [CONTINUE, CONTINUE]  # best 10 >= median 4


async def test_the_running_means_count_results_from_the_grace_period_on():
    sched = rule(grace_period=2)
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    for trial in (a, b, c):
        curve(sched, ctl, trial, [100, 1])  # mean over [2, 2] is 1, not 50.5
    assert curve(sched, ctl, d, [0, 2]) == [CONTINUE, CONTINUE]


async def test_mode_min_stops_a_best_strictly_above_the_median():
    sched = rule(mode="min")
    ctl = FakeController()
    a, b, c, d, e = running(sched, ctl, 5)
    three_others(sched, ctl, (a, b, c), sign=-1.0)  # median at t=2 is -4
    assert curve(sched, ctl, d, [0, -4]) == [CONTINUE, CONTINUE]
    assert curve(sched, ctl, e, [0, -3.9]) == [CONTINUE, STOP]


async def test_reward_attr_decides_like_metric_with_mode_max():
    sched = MedianStoppingRule(time_attr=IT, grace_period=2, reward_attr="acc")
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    three_others(sched, ctl, (a, b, c))
    assert curve(sched, ctl, d, [0, 3.9]) == [CONTINUE, STOP]


async def test_nothing_is_judged_before_the_grace_period():
    sched = rule(grace_period=3)
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    three_others(sched, ctl, (a, b, c))
    assert curve(sched, ctl, d, [-100, -100, -100]) == [CONTINUE, CONTINUE, STOP]


async def test_only_trials_that_reached_the_same_time_are_compared():
    sched = rule()
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    three_others(sched, ctl, (a, b, c))  # they reached t=4 only
    assert curve(sched, ctl, d, [10, 10, 10, 10, -5]) == [CONTINUE] * 5  # t=5: no samples


async def test_too_few_samples_continue_when_no_trial_waits():
    sched = rule(min_samples_required=3)
    ctl = FakeController()
    a, b, d = running(sched, ctl, 3)
    for trial in (a, b):
        curve(sched, ctl, trial, [5, 5])
    assert curve(sched, ctl, d, [0, 0]) == [CONTINUE, CONTINUE]  # 2 samples < 3
    sched2 = rule(min_samples_required=2)
    ctl2 = FakeController()
    a, b, d = running(sched2, ctl2, 3)
    for trial in (a, b):
        curve(sched2, ctl2, trial, [5, 5])
    assert curve(sched2, ctl2, d, [0, 0]) == [CONTINUE, STOP]


async def test_too_few_samples_yield_to_a_waiting_trial_once_per_time_slice():
    sched = rule(min_time_slice=2)
    ctl = FakeController()
    (a,) = running(sched, ctl, 1)
    ctl.add(make_trial(1))  # PENDING
    # No other trial reached t >= 2, so nothing can be judged. The first yield is at
    # once (Ray Tune: the last pause defaults to -inf), the next after > 2 more steps.
    decisions = curve(sched, ctl, a, [1, 1, 1, 1, 1, 1, 1])
    assert decisions == [CONTINUE, PAUSE, CONTINUE, CONTINUE, PAUSE, CONTINUE, CONTINUE]
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=0."


async def test_with_min_time_slice_zero_a_trial_yields_on_every_unjudged_result():
    sched = rule()  # min_time_slice=0: "more than 0 since the last yield" holds each step
    ctl = FakeController()
    (a,) = running(sched, ctl, 1)
    paused = ctl.add(make_trial(1))
    paused.status = Trial.PAUSED  # a paused trial waits as much as a pending one
    assert curve(sched, ctl, a, [1, 1, 1]) == [CONTINUE, PAUSE, PAUSE]


async def test_without_hard_stop_a_trial_below_the_median_pauses_and_then_runs_fifo():
    sched = rule(hard_stop=False)
    ctl = FakeController()
    a, b, c, d, e = running(sched, ctl, 5)
    three_others(sched, ctl, (a, b, c))
    assert curve(sched, ctl, d, [0, 1]) == [CONTINUE, PAUSE]
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=1."
    # Resumed later, it is never judged again, and what it reports is not recorded:
    assert curve(sched, ctl, d, [1000, 1000], start=3) == [CONTINUE, CONTINUE]
    # For `e` at t=3 only a, b, c reached t (means over [2, 3]: 2.5, 5, 7.5; median 5).
    # Had `d`'s t=3 result counted, its mean 500.5 would raise the median to 6.25.
    assert curve(sched, ctl, e, [0, 3, 5.5]) == [CONTINUE] * 3


async def test_with_hard_stop_a_stop_is_final():
    sched = rule()
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    three_others(sched, ctl, (a, b, c))
    assert curve(sched, ctl, d, [0, 0]) == [CONTINUE, STOP]
    assert curve(sched, ctl, d, [1e9, 1e9], start=3) == [STOP, STOP]
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=1."


async def test_paused_trials_resume_after_pending_ones():
    sched = rule(hard_stop=False)
    ctl = FakeController(slots=1)
    paused, pending = ctl.add(make_trial(0)), ctl.add(make_trial(1))
    paused.status = Trial.PAUSED
    assert await sched.choose_trial_to_run(ctl) is pending
    pending.status = Trial.TERMINATED
    assert await sched.choose_trial_to_run(ctl) is paused


async def test_a_completed_trials_final_result_is_recorded_once():
    sched = rule()
    ctl = FakeController()
    a, b, c, d, e = running(sched, ctl, 5)
    for trial in (a, b, c):
        curve(sched, ctl, trial, [1, 2, 3])
        # The trainable returned after its last report: the same result comes again.
        result = {IT: 3, "acc": 3}
        await sched.on_trial_complete(ctl, trial, result)
        trial.status = Trial.TERMINATED
    # Means over [2, 3] are 2.5 (Ray Tune counts the last result twice: 2.67).
    assert curve(sched, ctl, d, [0, 2.5, 2.5]) == [CONTINUE] * 3
    # A result the rule never saw (a stopper ended the trial) is recorded.
    await sched.on_trial_complete(ctl, e, {IT: 4, "acc": 100})
    await sched.on_trial_complete(ctl, e, {IT: 4, "acc": 100})
    assert sched._histories[e.trial_id].times == [4]


async def test_trials_without_results_in_the_window_are_not_samples():
    # time_total_s jumps: `a` reported at 59 and 130 s, nothing in [60, 61].
    sched = rule(time_attr="time_total_s", grace_period=60, min_samples_required=1)
    ctl = FakeController()
    a, b = running(sched, ctl, 2)
    assert report(sched, ctl, a, 59.0, 50, time_attr="time_total_s") == CONTINUE
    assert report(sched, ctl, a, 130.0, 50, time_attr="time_total_s") == CONTINUE
    assert report(sched, ctl, b, 61.0, 1, time_attr="time_total_s") == CONTINUE


async def test_a_result_without_the_metric_fails_unless_strict_checking_is_off(monkeypatch):
    monkeypatch.delenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", raising=False)
    sched = rule()
    ctl = FakeController()
    (a,) = running(sched, ctl, 1)
    with pytest.raises(ConfigError, match=r"field 'acc'.*reported \['loss'\]"):
        await sched.on_trial_result(ctl, a, {IT: 1, "loss": 0.5})
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    assert await sched.on_trial_result(ctl, a, {IT: 1, "loss": 0.5}) == CONTINUE


# ------------------------------------------------------------------ sync points
def test_sync_points_hold_the_trial_where_it_may_be_paused():
    sched = rule(hard_stop=False)
    ctl = FakeController()
    a, b, c, d = running(sched, ctl, 4)
    assert sched.sync_point(a) == (IT, 2.0)  # nothing can pause it before the grace period
    curve(sched, ctl, a, [1, 1, 1])
    assert sched.sync_point(a) == (IT, 3)  # every result from here on
    for trial in (b, c):
        curve(sched, ctl, trial, [5, 5, 5])
    assert report(sched, ctl, d, 1, 0) == CONTINUE
    assert report(sched, ctl, d, 2, 0) == PAUSE  # below the median, paused
    assert sched.sync_point(d) is None  # no decision after this one: runs FIFO when resumed


def test_with_hard_stop_sync_points_skip_the_time_slice_after_a_yield():
    sched = rule(min_time_slice=5)
    ctl = FakeController()
    (a,) = running(sched, ctl, 1)
    ctl.add(make_trial(1))  # PENDING
    assert curve(sched, ctl, a, [1, 1]) == [CONTINUE, PAUSE]
    assert sched.sync_point(a) == (IT, math.nextafter(7.0, math.inf))
    stopped = rule(min_samples_required=1)
    ctl2 = FakeController()
    x, y = running(stopped, ctl2, 2)
    curve(stopped, ctl2, x, [5, 5])
    assert curve(stopped, ctl2, y, [0, 0]) == [CONTINUE, STOP]
    assert stopped.sync_point(y) is None  # stopped: no further decision to hold for


# -------------------------------------------------------------------- properties
STREAMS = st.lists(
    st.tuples(st.integers(0, 4), st.floats(-100, 100, allow_nan=False)),
    min_size=1,
    max_size=80,
)


@given(stream=STREAMS, hard_stop=st.booleans(), mode=st.sampled_from(["min", "max"]))
def test_stop_is_final_and_nothing_is_judged_before_the_grace_period(stream, hard_stop, mode):
    sched = rule(grace_period=3, min_samples_required=2, hard_stop=hard_stop, mode=mode)
    ctl = FakeController()
    trials = running(sched, ctl, 5)
    clock = dict.fromkeys(range(5), 0)
    judged_out: set[int] = set()
    for index, value in stream:
        clock[index] += 1
        decision = report(sched, ctl, trials[index], clock[index], value)
        if clock[index] < 3:
            assert decision == CONTINUE
        if index in judged_out:
            assert decision == (STOP if hard_stop else CONTINUE)
        elif decision != CONTINUE:  # no trial waits, so PAUSE means below the median
            judged_out.add(index)
    assert sched.debug_string() == f"Using MedianStoppingRule: num_stopped={len(judged_out)}."


@given(stream=STREAMS, mode=st.sampled_from(["min", "max"]))
def test_a_trial_at_least_as_good_as_every_other_result_is_never_stopped(stream, mode):
    # Each running mean lies within its trial's rewards, so the median of the means
    # can't beat a best that beats every reward the other trials recorded.
    sched = rule(grace_period=2, min_samples_required=1, mode=mode)
    ctl = FakeController()
    trials = running(sched, ctl, 5)
    clock = dict.fromkeys(range(5), 0)
    best_of = {i: -math.inf for i in range(5)}  # in "higher is better" terms
    sign = 1.0 if mode == "max" else -1.0
    for index, value in stream:
        clock[index] += 1
        best_of[index] = max(best_of[index], sign * value)
        if report(sched, ctl, trials[index], clock[index], value) == STOP:
            assert any(best_of[i] > best_of[index] for i in range(5) if i != index)
            break
