"""HyperBandScheduler and HyperBandForBOHB on synthetic results (FakeController, no Ray)."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atune._trial import Trial
from atune.errors import ConfigError
from atune.schedulers import TrialScheduler
from atune.schedulers.hb_bohb import HyperBandForBOHB
from atune.schedulers.hyperband import (
    HyperBandScheduler,
    _Bracket,
    bracket_size,
    brackets_per_band,
    first_milestone,
)
from tests.unit.fake_controller import FakeController, make_trial

CONTINUE, PAUSE, STOP = TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a scheduler handler to its end; it must never suspend (no I/O, no loop)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("a scheduler handler suspended")


class Sim:
    """Plays the controller: adds trials, starts what the scheduler picks, feeds results.

    A trial reports one ``training_iteration`` at a time, so it is always exactly at its
    sync point when one is due; PAUSE/STOP are applied at once.
    """

    def __init__(
        self,
        scheduler: HyperBandScheduler,
        n: int,
        score: Callable[[int, int], float],
        *,
        slots: int | None = None,
        metric: str = "score",
    ) -> None:
        self.sched = scheduler
        self.metric = metric
        self.ctl = FakeController(slots=slots)
        self.score = score
        self.time: dict[Trial, int] = {}
        self.decisions: list[tuple[int, int, str]] = []
        for _ in range(n):
            self.add()

    def add(self) -> Trial:
        t = self.ctl.add(make_trial(len(self.ctl.trials)))
        self.time[t] = 0
        drive(self.sched.on_trial_add(self.ctl, t))
        return t

    def trial(self, i: int) -> Trial:
        return self.ctl.trials[i]

    def choose(self) -> Trial | None:
        return drive(self.sched.choose_trial_to_run(self.ctl))

    def start_all(self) -> list[Trial]:
        started = []
        while (t := self.choose()) is not None:
            assert t.status in (Trial.PENDING, Trial.PAUSED)
            t.status = Trial.RUNNING
            started.append(t)
        return started

    def report(self, t: Trial) -> str:
        assert t.status == Trial.RUNNING
        self.time[t] += 1
        i = self.ctl.trials.index(t)
        result = {"training_iteration": self.time[t], self.metric: self.score(i, self.time[t])}
        decision = drive(self.sched.on_trial_result(self.ctl, t, result))
        self.decisions.append((i, self.time[t], decision))
        if decision == PAUSE:
            t.status = Trial.PAUSED
        elif decision == STOP:
            t.status = Trial.TERMINATED
        return decision

    def feed(self, i: int, upto: int) -> str:
        """Run trial ``i`` (RUNNING from now on) until ``upto`` or a decision other than
        CONTINUE; returns the last decision."""
        t = self.trial(i)
        t.status = Trial.RUNNING
        decision = CONTINUE
        while self.time[t] < upto:
            decision = self.report(t)
            if decision != CONTINUE:
                break
        return decision

    def run(self, max_rounds: int = 100_000) -> None:
        """Round robin over running trials until every trial is finished."""
        for _ in range(max_rounds):
            self.start_all()
            running = [t for t in self.ctl.trials if t.status == Trial.RUNNING]
            if not running:
                break
            for t in running:
                self.report(t)
        assert all(t.is_finished for t in self.ctl.trials), self.sched.debug_string()


def hb(**kwargs: Any) -> HyperBandScheduler:
    kwargs.setdefault("metric", "score")
    kwargs.setdefault("mode", "max")
    return HyperBandScheduler(**kwargs)


def bohb(**kwargs: Any) -> HyperBandForBOHB:
    kwargs.setdefault("metric", "score")
    kwargs.setdefault("mode", "max")
    return HyperBandForBOHB(**kwargs)


def by_index(values: dict[int, float]) -> Callable[[int, int], float]:
    """Score = quality of the trial (by index) times its iteration."""
    return lambda i, it: values.get(i, 0.0) * it


# ----------------------------------------------------------------- arithmetic
@pytest.mark.parametrize("max_t", [81, 100])
def test_five_brackets_of_5_8_15_34_81_for_max_t_81_and_100(max_t):
    s_max_1 = brackets_per_band(max_t, 3)
    assert s_max_1 == 5
    assert [bracket_size(s, s_max_1, 3) for s in range(5)] == [5, 8, 15, 34, 81]


def test_first_milestones_for_max_t_100_and_81():
    assert [first_milestone(s, 100, 3) for s in range(5)] == [100, 33, 11, 3, 1]
    assert [first_milestone(s, 81, 3) for s in range(5)] == [81, 27, 9, 3, 1]


def test_max_t_9_gives_three_brackets_of_3_5_9():
    assert brackets_per_band(9, 3) == 3
    assert [bracket_size(s, 3, 3) for s in range(3)] == [3, 5, 9]
    assert [first_milestone(s, 9, 3) for s in range(3)] == [9, 3, 1]


def _bracket(s: int, max_t: int, eta: int = 3) -> _Bracket:
    s_max_1 = brackets_per_band(max_t, eta)
    return _Bracket(
        s=s,
        n0=bracket_size(s, s_max_1, eta),
        r0=first_milestone(s, max_t, eta),
        max_t=max_t,
        eta=eta,
        time_attr="training_iteration",
        stop_last_trials=True,
    )


@pytest.mark.parametrize(
    ("max_t", "milestones", "sizes"),
    [(100, [11, 44, 100], [15, 5, 2]), (81, [9, 36, 81], [15, 5, 2])],
)
def test_milestones_are_cumulative_and_capped_at_max_t(max_t, milestones, sizes):
    bracket = _bracket(2, max_t)
    trials = [make_trial(i) for i in range(15)]
    for t in trials:
        bracket.add(t)
    seen_m, seen_n = [bracket.milestone], [bracket.n]
    while bracket.halves:
        for i, t in enumerate(list(bracket.live)):
            bracket.update(t, {"training_iteration": bracket.milestone, "score": i})
        good, bad = bracket.successive_halving("score", 1.0)
        for t in bad:
            bracket.remove(t)
        assert len(good) == bracket.n
        seen_m.append(bracket.milestone)
        seen_n.append(bracket.n)
    assert seen_m == milestones
    assert seen_n == sizes


def test_last_milestone_is_max_t_even_when_increments_fall_short():
    # 161 with eta 3: bracket s=4 starts at 1 -> 4 -> 13 -> 40; the capped increment
    # would end at 121. atune's last stage always runs to max_t.
    bracket = _bracket(4, 161)
    assert bracket.milestone == 1
    trial = make_trial(0)
    bracket.add(trial)
    stages = []
    while bracket.halves:
        for t in bracket.live:
            bracket.update(t, {"training_iteration": bracket.milestone, "score": 1})
        bracket.successive_halving("score", 1.0)
        stages.append(bracket.milestone)
    assert stages == [4, 13, 40, 161]


# ----------------------------------------------------------- filling brackets
async def test_trials_fill_smallest_bracket_first_then_next_band():
    sched = hb(max_t=81)
    ctl = FakeController()
    for i in range(144):
        await sched.on_trial_add(ctl, ctl.add(make_trial(i)))
    brackets = [sched._bracket_of[t] for t in ctl.trials]
    sizes = [len(b.trials) for b in dict.fromkeys(brackets)]
    assert sizes == [5, 8, 15, 34, 81, 1]
    assert [b.milestone for b in dict.fromkeys(brackets)] == [81, 27, 9, 3, 1, 81]
    assert sched.debug_string().splitlines()[-2:] == [
        "Round #1:",
        "  Bracket(Max Size (n)=5, Milestone (r)=81, completed=0.0%): {PENDING: 1} ",
    ]


async def test_brackets_with_first_milestone_zero_are_skipped():
    # max_t=20, eta=3: 4 brackets per band, but 20 * 3**-3 < 1.
    sched = hb(max_t=20)
    ctl = FakeController()
    for i in range(4 + 6 + 12 + 1):
        await sched.on_trial_add(ctl, ctl.add(make_trial(i)))
    assert [b is None for b in sched._bands[0]] == [False, False, False, True]
    assert [b.milestone for b in sched._bands[1] if b] == [20]
    assert "total_brackets=4" in sched.debug_string()


def test_empty_debug_string_matches_seed():
    expected = "Using HyperBand: num_stopped=0 total_brackets=0\nRound #0:"
    assert hb(max_t=100).debug_string() == expected


async def test_debug_string_with_20_trials_matches_seed():
    sim = Sim(hb(max_t=100), 20, by_index({}))
    sim.trial(3).status = Trial.RUNNING
    assert sim.sched.debug_string() == (
        "Using HyperBand: num_stopped=0 total_brackets=3\n"
        "Round #0:\n"
        "  Bracket(Max Size (n)=5, Milestone (r)=100, completed=0.0%): {PENDING: 4, RUNNING: 1} \n"
        "  Bracket(Max Size (n)=8, Milestone (r)=33, completed=0.0%): {PENDING: 8} \n"
        "  Bracket(Max Size (n)=15, Milestone (r)=11, completed=0.0%): {PENDING: 7} "
    )


async def test_debug_string_with_200_trials_matches_seed():
    sim = Sim(hb(max_t=100), 200, by_index({}))
    sim.trial(0).status = Trial.RUNNING
    assert sim.sched.debug_string() == (
        "Using HyperBand: num_stopped=0 total_brackets=9\n"
        "Round #0:\n"
        "  Bracket(Max Size (n)=5, Milestone (r)=100, completed=0.0%): {PENDING: 4, RUNNING: 1} \n"
        "  Bracket(Max Size (n)=8, Milestone (r)=33, completed=0.0%): {PENDING: 8} \n"
        "  Bracket(Max Size (n)=15, Milestone (r)=11, completed=0.0%): {PENDING: 15} \n"
        "  Bracket(Max Size (n)=34, Milestone (r)=3, completed=0.0%): {PENDING: 34} \n"
        "  Bracket(Max Size (n)=81, Milestone (r)=1, completed=0.0%): {PENDING: 81} \n"
        "Round #1:\n"
        "  Bracket(Max Size (n)=5, Milestone (r)=100, completed=0.0%): {PENDING: 5} \n"
        "  Bracket(Max Size (n)=8, Milestone (r)=33, completed=0.0%): {PENDING: 8} \n"
        "  Bracket(Max Size (n)=15, Milestone (r)=11, completed=0.0%): {PENDING: 15} \n"
        "  Bracket(Max Size (n)=34, Milestone (r)=3, completed=0.0%): {PENDING: 29} "
    )


# ------------------------------------------------- the seed's hyperband example
#: (height, width) of MyTrainableClass_0..19 in the seed's hyperband_example run.
SEED_CONFIGS = [
    (77, 28), (62, 47), (40, 38), (25, 75), (1, 28), (30, 32), (10, 49), (48, 64),
    (67, 90), (68, 39), (56, 13), (16, 37), (34, 66), (15, 17), (2, 18), (11, 76),
    (43, 44), (37, 34), (89, 62), (62, 93),
]  # fmt: skip
#: Iterations each trial ended at, from the seed's final status table.
SEED_FINAL_ITERS = [100, 100, 100, 100, 100, 33, 33, 33, 100, 100,
                    100, 33, 33, 44, 11, 11, 100, 44, 100, 44]  # fmt: skip


def seed_reward(i: int, it: int) -> float:
    height, width = SEED_CONFIGS[i]
    return math.tanh(it / width) * height


def make_seed_sim(slots: int | None = 8) -> Sim:
    sched = HyperBandScheduler(reward_attr="episode_reward_mean", max_t=100)
    return Sim(sched, 20, seed_reward, slots=slots, metric="episode_reward_mean")


@pytest.mark.parametrize("slots", [1, 3, 8, None])
def test_seed_example_ends_as_in_the_seed(slots):
    sim = make_seed_sim(slots)
    sim.run()
    assert [sim.time[t] for t in sim.ctl.trials] == SEED_FINAL_ITERS
    assert sim.sched.debug_string() == (
        "Using HyperBand: num_stopped=10 total_brackets=3\n"
        "Round #0:\n"
        "  Bracket(Max Size (n)=5, Milestone (r)=100, completed=100.0%): {TERMINATED: 5} \n"
        "  Bracket(Max Size (n)=3, Milestone (r)=100, completed=100.0%): {TERMINATED: 8} \n"
        "  Bracket(Max Size (n)=2, Milestone (r)=100, completed=100.0%): {TERMINATED: 7} "
    )


def test_seed_mid_run_status_matches_seed():
    sim = make_seed_sim(None)
    for i in range(5):
        assert sim.feed(i, 100) == STOP
    for i in (8, 9, 12):
        assert sim.feed(i, 33) == PAUSE
    for i, upto in ((5, 24), (6, 23), (7, 13)):
        assert sim.feed(i, upto) == CONTINUE
    for i in range(13, 20):
        sim.feed(i, 11)
    # The seventh trial at 11 halved the bracket: 14 and 15 were stopped.
    assert [sim.trial(i).status for i in (14, 15)] == [Trial.TERMINATED] * 2
    for i, upto in ((16, 30), (17, 21), (18, 20), (13, 11), (19, 11)):
        assert sim.feed(i, upto) == CONTINUE
    assert sim.sched.debug_string() == (
        "Using HyperBand: num_stopped=2 total_brackets=3\n"
        "Round #0:\n"
        "  Bracket(Max Size (n)=5, Milestone (r)=100, completed=100.0%): {TERMINATED: 5} \n"
        "  Bracket(Max Size (n)=8, Milestone (r)=33, completed=34.2%): "
        "{PAUSED: 3, PENDING: 2, RUNNING: 3} \n"
        "  Bracket(Max Size (n)=5, Milestone (r)=44, completed=22.6%): "
        "{RUNNING: 5, TERMINATED: 2} "
    )


def test_seed_milestones_11_44_100_seen_as_sync_points():
    sim = make_seed_sim(None)
    t18 = sim.trial(18)  # the bracket's best: it runs to the end
    seen = [sim.sched.sync_point(t18)]
    for upto in (11, 44, 100):
        for i in (13, 14, 15, 16, 17, 18, 19):
            if not sim.trial(i).is_finished:
                sim.feed(i, upto)
        seen.append(sim.sched.sync_point(t18))
    assert seen == [
        ("training_iteration", 11),
        ("training_iteration", 44),
        ("training_iteration", 100),
        ("training_iteration", 100),
    ]
    assert sim.time[t18] == 100 and t18.status == Trial.TERMINATED


# ------------------------------------------------------- pause and halving
def small() -> Sim:
    """max_t=9, eta=3: bracket 0 holds trials 0-2 (to 9), bracket 1 trials 3-7 (at 3)."""
    quality = {3: 1.0, 4: 5.0, 5: 2.0, 6: 4.0, 7: 3.0}
    return Sim(hb(max_t=9), 8, by_index(quality))


def test_trial_reaching_milestone_is_paused():
    sim = small()
    assert sim.sched.sync_point(sim.trial(3)) == ("training_iteration", 3)
    assert sim.feed(3, 3) == PAUSE
    assert sim.trial(3).status == Trial.PAUSED


def test_paused_trial_waiting_for_halving_is_never_chosen():
    sim = small()
    for i in (3, 4, 5, 6):
        sim.feed(i, 3)
    started = sim.start_all()
    assert {sim.ctl.trials.index(t) for t in started} == {0, 1, 2, 7}


def test_last_trial_at_milestone_halves_and_continues_if_good():
    sim = small()
    for i in (3, 5, 6, 7):
        assert sim.feed(i, 3) == PAUSE
    # Trial 4 is the best and the last one: halving right away, it goes on.
    assert sim.feed(4, 3) == CONTINUE
    assert sorted(sim.ctl.stopped) == ["t_00003", "t_00005", "t_00007"]
    assert sim.sched._num_stopped == 3
    assert sim.sched.sync_point(sim.trial(4)) == ("training_iteration", 9)
    # Trial 6 (second best) was promoted: it is the one paused trial that may run.
    assert sim.choose() is sim.trial(0)  # bracket 1 is further along: bracket 0 first
    for i in (0, 1, 2):
        sim.trial(i).status = Trial.RUNNING
    assert sim.choose() is sim.trial(6)


def test_last_trial_at_milestone_is_stopped_if_bad():
    sim = small()
    for i in (4, 5, 6, 7):
        sim.feed(i, 3)
    assert sim.feed(3, 3) == STOP
    assert sorted(sim.ctl.stopped) == ["t_00005", "t_00007"]
    assert sim.trial(4) in sim.sched._bracket_of[sim.trial(4)].promoted


def test_promoted_trials_run_to_max_t_and_stop_there():
    sim = small()
    for i in (3, 4, 5, 6, 7):
        sim.feed(i, 3)
    assert sim.feed(6, 9) == STOP
    assert sim.time[sim.trial(6)] == 9
    assert sim.sched.sync_point(sim.trial(6)) == ("training_iteration", 9)
    assert sim.sched._num_stopped == 3  # stops at max_t are not counted


def test_bracket_zero_trials_stop_at_max_t():
    sim = small()
    assert sim.sched.sync_point(sim.trial(0)) == ("training_iteration", 9)
    assert sim.feed(0, 9) == STOP
    assert [d for _, _, d in sim.decisions] == [CONTINUE] * 8 + [STOP]


def test_without_stop_last_trials_survivors_run_past_max_t():
    sim = Sim(hb(max_t=9, stop_last_trials=False), 1, by_index({0: 1.0}))
    assert sim.sched.sync_point(sim.trial(0)) is None
    assert sim.feed(0, 12) == CONTINUE
    assert sim.time[sim.trial(0)] == 12


def test_min_mode_keeps_the_lowest():
    sim = Sim(hb(max_t=9, mode="min"), 8, by_index({3: 1.0, 4: 5.0, 5: 2.0, 6: 4.0, 7: 3.0}))
    for i in (3, 4, 5, 6):
        sim.feed(i, 3)
    assert sim.feed(7, 3) == STOP  # the last to arrive, and halved out
    assert sorted(sim.ctl.stopped) == ["t_00004", "t_00006"]


@pytest.mark.parametrize("event", ["error", "complete", "remove"])
def test_losing_the_straggler_triggers_halving(event):
    sim = small()
    for i in (4, 5, 6, 7):
        sim.feed(i, 3)
    straggler = sim.trial(3)
    sim.feed(3, 2)
    straggler.status = Trial.ERROR if event == "error" else Trial.TERMINATED
    if event == "error":
        drive(sim.sched.on_trial_error(sim.ctl, straggler))
    elif event == "complete":
        drive(sim.sched.on_trial_complete(sim.ctl, straggler, {}))
    else:
        drive(sim.sched.on_trial_remove(sim.ctl, straggler))
    # Four left: keep ceil(5 / 3) = 2 (trials 4 and 6), stop 5 and 7.
    assert sorted(sim.ctl.stopped) == ["t_00005", "t_00007"]
    bracket = sim.sched._bracket_of[sim.trial(4)]
    assert bracket.promoted == {sim.trial(4), sim.trial(6)}


def test_removal_while_stopping_everything_does_not_halve():
    sim = small()
    for i in (4, 5, 6, 7):
        sim.feed(i, 3)
    sim.ctl.stopping = True  # type: ignore[attr-defined]
    drive(sim.sched.on_trial_remove(sim.ctl, sim.trial(3)))
    assert sim.ctl.stopped == []


def test_halved_out_trial_still_pausing_is_stopped_once_paused():
    sim = small()
    for i in (4, 6, 7, 3):
        sim.feed(i, 3)
    t5 = sim.trial(5)
    t5.status = Trial.RUNNING
    sim.time[t5] = 2
    # Trial 3 (worst) is told PAUSE but its save is still in flight (still RUNNING).
    sim.trial(3).status = Trial.RUNNING
    assert sim.report(t5) == STOP  # last one, halved out: 3, 5 and 7 lose
    sim.trial(3).status = Trial.RUNNING  # report() does not touch other trials
    assert sim.ctl.stopped == ["t_00007"]  # 3 is not stopped while RUNNING
    sim.trial(3).status = Trial.PAUSED  # the pause completed
    assert sim.choose() is not sim.trial(3)
    assert sim.ctl.stopped == ["t_00007", "t_00003"]


def test_result_after_being_halved_out_is_stop():
    sim = small()
    for i in (4, 6, 7, 3):
        sim.feed(i, 3)
    sim.trial(3).status = Trial.RUNNING  # still pausing
    sim.feed(5, 3)
    result = {"training_iteration": 4, "score": 0.0}
    assert drive(sim.sched.on_trial_result(sim.ctl, sim.trial(3), result)) == STOP


def test_time_attr_jumping_past_the_next_milestone_halves_again_at_once():
    # max_t=9: bracket 1 halves at 3 (keep 2 of 5), then its last stage runs to 9.
    sim = Sim(hb(max_t=9, time_attr="time_total_s"), 8, by_index({}))
    trials = [sim.trial(i) for i in range(3, 8)]
    decisions = []
    for k, t in enumerate(trials):
        t.status = Trial.RUNNING
        result = {"time_total_s": 3.5 + k, "score": float(k)}
        decisions.append(drive(sim.sched.on_trial_result(sim.ctl, t, result)))
    assert decisions == [PAUSE] * 4 + [CONTINUE]
    assert sim.sched.sync_point(trials[-1]) == ("time_total_s", 9)


def test_jump_past_every_milestone_goes_through_all_halvings():
    sim = Sim(hb(max_t=9, time_attr="time_total_s"), 17, by_index({}))
    bracket2 = [sim.trial(i) for i in range(8, 17)]  # 9 trials, milestones 1 -> 4 -> 9
    for k, t in enumerate(bracket2):
        t.status = Trial.RUNNING
        result = {"time_total_s": 5.0, "score": float(k)}
        decision = drive(sim.sched.on_trial_result(sim.ctl, t, result))
        if decision == PAUSE:
            t.status = Trial.PAUSED
    # The last one is the best: halved 9 -> 3 at 1 and 3 -> 1 at 4 in one go.
    assert decision == CONTINUE
    assert len(sim.ctl.stopped) == 8
    assert sim.sched._num_stopped == 8


# ------------------------------------------------------ choose_trial_to_run
def test_least_complete_bracket_runs_first():
    sim = Sim(hb(max_t=9), 8, by_index({}))
    sim.feed(0, 5)  # bracket 0 is 5 / 27 done
    sim.trial(0).status = Trial.PAUSED  # e.g. paused by something else
    assert sim.choose() is sim.trial(3)


def test_earlier_band_runs_first():
    sim = Sim(hb(max_t=9), 18, by_index({}))  # 3 + 5 + 9 = 17 per band
    for t in sim.ctl.trials[:17]:
        t.status = Trial.RUNNING
    assert sim.choose() is sim.trial(17)
    sim.trial(4).status = Trial.PENDING
    assert sim.choose() is sim.trial(4)


def test_nothing_is_chosen_without_resources():
    sim = Sim(hb(max_t=9), 4, by_index({}), slots=2)
    assert len(sim.start_all()) == 2
    assert sim.choose() is None


# ------------------------------------------------------------- validation
def test_missing_metric_is_a_config_error_naming_it():
    sim = Sim(hb(max_t=9), 1, by_index({}))
    t = sim.trial(0)
    t.status = Trial.RUNNING
    with pytest.raises(ConfigError, match="result field 'score'"):
        drive(sim.sched.on_trial_result(sim.ctl, t, {"training_iteration": 1, "loss": 1}))


def test_missing_time_attr_is_a_config_error_naming_it():
    sim = Sim(hb(max_t=9, time_attr="epoch"), 1, by_index({}))
    with pytest.raises(ConfigError, match="result field 'epoch'"):
        drive(sim.sched.on_trial_result(sim.ctl, sim.trial(0), {"score": 1.0}))


def test_strict_metric_checking_can_be_disabled(monkeypatch):
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    sim = Sim(hb(max_t=9), 1, by_index({}))
    result = {"training_iteration": 9}
    assert drive(sim.sched.on_trial_result(sim.ctl, sim.trial(0), result)) == CONTINUE


async def test_metric_and_mode_are_required_when_trials_arrive():
    sched = HyperBandScheduler()
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        await sched.on_trial_add(FakeController(), make_trial(0))
    sched.set_search_properties("acc", "max")
    await sched.on_trial_add(FakeController(), make_trial(0))


def test_reward_attr_means_maximise():
    sched = HyperBandScheduler(reward_attr="episode_reward_mean")
    assert (sched.metric, sched.mode) == ("episode_reward_mean", "max")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_t": 0}, "`max_t` must be >= 1, got 0"),
        ({"reduction_factor": 1}, "`reduction_factor` must be > 1, got 1"),
        ({"mode": "maximize"}, "`mode` must be 'min' or 'max'"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        HyperBandScheduler(**kwargs)


# ------------------------------------------------------------ HyperBandForBOHB
async def test_bohb_fills_largest_bracket_first():
    sched = bohb(max_t=81)
    ctl = FakeController()
    for i in range(81 + 34 + 1):
        await sched.on_trial_add(ctl, ctl.add(make_trial(i)))
    assert [(b.n, b.milestone) for b in sched._bands[0] if b] == [(81, 1), (34, 3), (15, 9)]


class RecordingSearcher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def on_pause(self, trial_id: str) -> None:
        self.calls.append(("pause", trial_id))

    async def on_unpause(self, trial_id: str) -> None:
        self.calls.append(("unpause", trial_id))


def bohb_sim(n: int) -> Sim:
    """max_t=9: brackets of 9 (milestone 1), then 5 (3), then 3 (9)."""
    sim = Sim(bohb(max_t=9), n, by_index({i: float(i) for i in range(20)}))
    sim.ctl.searcher = RecordingSearcher()  # type: ignore[attr-defined]
    return sim


def test_bohb_pauses_in_an_unfilled_bracket_even_when_all_wait():
    sim = bohb_sim(4)  # the first bracket holds 9; only 4 arrived
    for i in range(4):
        assert sim.feed(i, 1) == PAUSE
    assert sim.ctl.stopped == []
    assert sim.ctl.searcher.calls == [("pause", f"t_{i:05d}") for i in range(4)]  # type: ignore[attr-defined]


def test_bohb_result_carries_the_budget():
    sim = bohb_sim(2)
    t = sim.trial(0)
    t.status = Trial.RUNNING
    result: dict[str, Any] = {"training_iteration": 1, "score": 1.0}
    assert drive(sim.sched.on_trial_result(sim.ctl, t, result)) == PAUSE
    assert result["hyperband_info"] == {"budget": 1}
    other: dict[str, Any] = {"training_iteration": 1, "score": 1.0}
    sim.trial(1).status = Trial.RUNNING
    sim.sched._bracket_of[sim.trial(1)].milestone = 2
    assert drive(sim.sched.on_trial_result(sim.ctl, sim.trial(1), other)) == CONTINUE
    assert other["hyperband_info"] == {}


def test_bohb_halves_an_unfilled_bracket_once_nothing_runs():
    sim = bohb_sim(4)
    for i in range(4):
        sim.feed(i, 1)
    # Nothing runs and nothing is pending: halve with what there is (keep ceil(9/3)=3).
    chosen = sim.choose()
    assert sim.ctl.stopped == ["t_00000"]
    assert chosen is sim.trial(1)
    assert ("unpause", "t_00003") in sim.ctl.searcher.calls  # type: ignore[attr-defined]


def test_bohb_halves_a_full_bracket_on_the_last_result():
    sim = bohb_sim(9)
    for i in range(1, 9):
        assert sim.feed(i, 1) == PAUSE
    assert sim.feed(0, 1) == STOP  # the worst, and the last: halved out at once
    assert len(sim.ctl.stopped) == 5


def test_bohb_does_not_halve_while_a_trial_runs():
    sim = bohb_sim(10)  # trial 9 opens the second bracket
    for i in range(4):
        sim.feed(i, 1)
    sim.trial(9).status = Trial.RUNNING
    assert sim.choose() is sim.trial(4)  # pending trials first
    for i in range(4, 9):
        sim.trial(i).status = Trial.RUNNING
    assert sim.choose() is None
    assert sim.ctl.stopped == []


def test_bohb_scans_brackets_in_order_not_by_completion():
    sim = bohb_sim(10)
    sim.feed(9, 2)  # bracket 2 (milestone 3) has progress, bracket 1 none
    sim.trial(9).status = Trial.PAUSED
    assert sim.choose() is sim.trial(0)


# ----------------------------------------------------------------- properties
def _run_random(
    sched: HyperBandScheduler,
    n_trials: int,
    qualities: list[float],
    slots: int,
    events: list[int],
) -> None:
    """Random interleavings of results, pauses still being saved, starts, failures and
    early ends; then run everything to its end. Asserts STOP is final on the way."""
    ctl = FakeController(slots=slots)
    ctl.searcher = RecordingSearcher()  # type: ignore[attr-defined]
    time: dict[Trial, int] = {}
    pausing: list[Trial] = []  # told PAUSE, save still in flight (status RUNNING)
    final: set[Trial] = set()  # got STOP, or were stopped by the scheduler
    stopped_seen = 0
    max_t = sched.max_t

    def check_stops() -> None:
        nonlocal stopped_seen
        for tid in ctl.stopped[stopped_seen:]:
            t = next(x for x in ctl.trials if x.trial_id == tid)
            assert t not in final, f"{tid} stopped twice"
            assert t.status == Trial.TERMINATED, "stop_trial on a RUNNING trial"
            final.add(t)
        stopped_seen = len(ctl.stopped)

    def choose() -> Trial | None:
        t = drive(sched.choose_trial_to_run(ctl))
        check_stops()
        if t is not None:
            assert t not in final
            assert t.status in (Trial.PENDING, Trial.PAUSED)
            if t.status == Trial.PAUSED:  # only if it has somewhere to go
                assert time[t] < sched._bracket_of[t].milestone
            t.status = Trial.RUNNING
        return t

    def advance(t: Trial) -> None:
        assert t not in final
        if time[t] >= max_t + 2:  # without stop_last_trials: the trainable ends itself
            assert not sched._stop_last_trials
            t.status = Trial.TERMINATED
            drive(sched.on_trial_complete(ctl, t, {}))
            check_stops()
            final.add(t)
            return
        time[t] += 1
        assert time[t] <= max_t or not sched._stop_last_trials
        i = ctl.trials.index(t)
        result = {"training_iteration": time[t], "score": qualities[i] * time[t]}
        decision = drive(sched.on_trial_result(ctl, t, result))
        check_stops()
        if decision == STOP:
            final.add(t)
            t.status = Trial.TERMINATED
        elif decision == PAUSE:
            assert time[t] == sched._bracket_of[t].milestone
            pausing.append(t)

    def settle(t: Trial) -> None:
        pausing.remove(t)
        t.status = Trial.PAUSED

    def running() -> list[Trial]:
        return [t for t in ctl.trials if t.status == Trial.RUNNING and t not in pausing]

    for i in range(n_trials):
        t = ctl.add(make_trial(i))
        time[t] = 0
        drive(sched.on_trial_add(ctl, t))

    for e in events:
        kind, pick = e % 8, e // 8
        live = running()
        if kind <= 3 and live:
            advance(live[pick % len(live)])
        elif kind == 4 and pausing:
            settle(pausing[pick % len(pausing)])
        elif kind == 5:
            choose()
        elif kind == 6 and live:
            t = live[pick % len(live)]  # fails for good, or ends on its own
            t.status = Trial.ERROR if pick % 2 else Trial.TERMINATED
            if pick % 2:
                drive(sched.on_trial_error(ctl, t))
            else:
                drive(sched.on_trial_complete(ctl, t, {}))
            check_stops()
            final.add(t)
    for _ in range(10_000):  # drain: the experiment must always end
        for t in list(pausing):
            settle(t)
        while choose() is not None:
            pass
        live = running()
        if not live and not pausing:
            break
        for t in live:
            if t.status == Trial.RUNNING and t not in pausing:
                advance(t)
    assert all(t.is_finished for t in ctl.trials), sched.debug_string()
    assert all(t in final for t in ctl.trials)
    if sched._stop_last_trials:
        assert all(time[t] <= max_t for t in ctl.trials)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_trials=st.integers(1, 30),
    max_t=st.sampled_from([1, 3, 9, 10, 27]),
    eta=st.sampled_from([2, 3, 4]),
    slots=st.integers(1, 6),
    qualities=st.lists(st.floats(-5, 5, allow_nan=False), min_size=30, max_size=30),
    events=st.lists(st.integers(0, 10_000), max_size=200),
    for_bohb=st.booleans(),
    mode=st.sampled_from(["min", "max"]),
    stop_last=st.booleans(),
)
def test_stop_is_final_and_each_halving_keeps_ceil_n_over_eta(
    n_trials, max_t, eta, slots, qualities, events, for_bohb, mode, stop_last
):
    cls = HyperBandForBOHB if for_bohb else HyperBandScheduler
    sched = cls(
        metric="score", mode=mode, max_t=max_t, reduction_factor=eta, stop_last_trials=stop_last
    )
    halvings: list[tuple[int, int, int, float]] = []
    original = _Bracket.successive_halving

    def recording(self: _Bracket, metric: str, sign: float) -> Any:
        n, live = self.n, len(self.live)
        good, bad = original(self, metric, sign)
        halvings.append((n, live, len(good), self.eta))
        assert len(good) + len(bad) == live
        return good, bad

    with mock.patch.object(_Bracket, "successive_halving", recording):
        _run_random(sched, n_trials, qualities, slots, events)
    for n, live, kept, e in halvings:
        assert kept == min(live, math.ceil(n / e))
        if live >= math.ceil(n / e):
            assert kept == math.ceil(n / e)
