"""Stoppers: each rule at its exact boundary, the validation errors and their messages."""

from __future__ import annotations

import datetime
import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import atune.stopper
from atune.errors import AtuneError, ConfigError, ConfigTypeError
from atune.stopper import (
    CombinedStopper,
    DictStopper,
    ExperimentPlateauStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
    as_stopper,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStopper(Stopper):
    """Records every call; stops trials and the experiment as told."""

    def __init__(self, stop_trial: bool = False, stop_all: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stop_all_calls = 0
        self._stop_trial = stop_trial
        self._stop_all = stop_all

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.calls.append((trial_id, result))
        return self._stop_trial

    def stop_all(self) -> bool:
        self.stop_all_calls += 1
        return self._stop_all


def feed(stopper: Stopper, trial_id: str, metric: str, values: list[float]) -> list[bool]:
    return [stopper(trial_id, {metric: value}) for value in values]


# ------------------------------------------------------------------------ public surface


def test_public_surface_is_pinned() -> None:
    assert sorted(atune.stopper.__all__) == [
        "CombinedStopper",
        "DictStopper",
        "ExperimentPlateauStopper",
        "FunctionStopper",
        "MaximumIterationStopper",
        "NoopStopper",
        "Stopper",
        "TimeoutStopper",
        "TrialPlateauStopper",
        "as_stopper",
    ]


def test_stopper_base_cannot_be_instantiated_without_call() -> None:
    with pytest.raises(TypeError):
        Stopper()  # type: ignore[abstract]


def test_stopper_subclass_stop_all_defaults_to_false() -> None:
    class OnlyCall(Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return True

    assert OnlyCall().stop_all() is False


def test_config_errors_are_value_errors_and_atune_errors() -> None:
    with pytest.raises(ValueError):
        MaximumIterationStopper(0)
    with pytest.raises(AtuneError):
        MaximumIterationStopper(0)


# ------------------------------------------------------------------------ MaximumIteration


def test_max_iteration_stops_on_the_max_iter_th_result() -> None:
    stopper = MaximumIterationStopper(max_iter=3)
    assert [stopper("t", {}) for _ in range(3)] == [False, False, True]


def test_max_iteration_of_one_stops_on_the_first_result() -> None:
    assert MaximumIterationStopper(max_iter=1)("t", {}) is True


def test_max_iteration_counts_each_trial_separately() -> None:
    stopper = MaximumIterationStopper(max_iter=2)
    assert stopper("a", {}) is False
    assert stopper("b", {}) is False
    assert stopper("a", {}) is True
    assert stopper("b", {}) is True


def test_max_iteration_counts_results_not_training_iteration() -> None:
    stopper = MaximumIterationStopper(max_iter=2)
    assert stopper("t", {"training_iteration": 50}) is False


def test_max_iteration_never_stops_all() -> None:
    stopper = MaximumIterationStopper(max_iter=1)
    stopper("t", {})
    assert stopper.stop_all() is False


@given(st.integers(min_value=1, max_value=50))
def test_max_iteration_stops_exactly_at_max_iter(max_iter: int) -> None:
    stopper = MaximumIterationStopper(max_iter)
    decisions = [stopper("t", {}) for _ in range(max_iter)]
    assert decisions == [False] * (max_iter - 1) + [True]


@pytest.mark.parametrize("bad", [0, -1])
def test_max_iteration_rejects_max_iter_below_one(bad: int) -> None:
    with pytest.raises(ConfigError, match=rf"`max_iter` must be >= 1, got {bad}"):
        MaximumIterationStopper(bad)


@pytest.mark.parametrize("bad", [1.5, "3", True])
def test_max_iteration_rejects_non_int(bad: Any) -> None:
    with pytest.raises(ConfigTypeError, match="`max_iter` must be an int"):
        MaximumIterationStopper(bad)


# ------------------------------------------------------------------------ TrialPlateau


def test_trial_plateau_stops_when_last_values_are_flat() -> None:
    stopper = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=3)
    assert feed(stopper, "t", "loss", [5.0, 1.0, 1.0, 1.0]) == [False, False, False, True]


def test_trial_plateau_waits_for_grace_period() -> None:
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=4)
    assert feed(stopper, "t", "loss", [1.0, 1.0, 1.0, 1.0]) == [False, False, False, True]


def test_trial_plateau_waits_for_num_results_values() -> None:
    stopper = TrialPlateauStopper("loss", num_results=4, grace_period=0)
    assert feed(stopper, "t", "loss", [1.0, 1.0, 1.0, 1.0]) == [False, False, False, True]


def test_trial_plateau_std_equal_to_threshold_does_not_stop() -> None:
    # values 0 and 1: population std 0.5 exactly
    stopper = TrialPlateauStopper("m", std=0.5, num_results=2, grace_period=0)
    assert feed(stopper, "t", "m", [0.0, 1.0]) == [False, False]


def test_trial_plateau_std_just_below_threshold_stops() -> None:
    stopper = TrialPlateauStopper("m", std=math.nextafter(0.5, 1.0), num_results=2, grace_period=0)
    assert feed(stopper, "t", "m", [0.0, 1.0]) == [False, True]


def test_trial_plateau_uses_only_the_last_num_results_values() -> None:
    stopper = TrialPlateauStopper("m", std=0.01, num_results=2, grace_period=0)
    assert feed(stopper, "t", "m", [100.0, 0.0, 3.0, 3.0]) == [False, False, False, True]


def test_trial_plateau_tracks_trials_separately() -> None:
    stopper = TrialPlateauStopper("m", num_results=2, grace_period=2)
    assert stopper("a", {"m": 1.0}) is False
    assert stopper("b", {"m": 1.0}) is False  # not a's second value
    assert stopper("a", {"m": 1.0}) is True


def test_trial_plateau_ignores_results_without_the_metric() -> None:
    stopper = TrialPlateauStopper("m", num_results=2, grace_period=2)
    assert stopper("t", {"m": 1.0}) is False
    assert stopper("t", {"other": 1.0}) is False
    assert stopper("t", {"m": None}) is False
    assert stopper("t", {"m": math.nan}) is False
    assert stopper("t", {"m": 1.0}) is True


def test_trial_plateau_reads_nested_metric() -> None:
    stopper = TrialPlateauStopper("info/loss", num_results=2, grace_period=0)
    assert [stopper("t", {"info": {"loss": 2.0}}) for _ in range(2)] == [False, True]


def test_trial_plateau_infinite_values_never_plateau() -> None:
    stopper = TrialPlateauStopper("m", num_results=2, grace_period=0)
    assert feed(stopper, "t", "m", [math.inf, math.inf, math.inf]) == [False, False, False]


def test_trial_plateau_threshold_min_requires_value_at_or_below_threshold() -> None:
    stopper = TrialPlateauStopper(
        "loss", num_results=2, grace_period=0, metric_threshold=1.0, mode="min"
    )
    assert feed(stopper, "a", "loss", [1.5, 1.5]) == [False, False]
    assert feed(stopper, "b", "loss", [1.0, 1.0]) == [False, True]


def test_trial_plateau_threshold_max_requires_value_at_or_above_threshold() -> None:
    stopper = TrialPlateauStopper(
        "acc", num_results=2, grace_period=0, metric_threshold=0.9, mode="max"
    )
    assert feed(stopper, "a", "acc", [0.89, 0.89]) == [False, False]
    assert feed(stopper, "b", "acc", [0.9, 0.9]) == [False, True]


def test_trial_plateau_never_stops_all() -> None:
    stopper = TrialPlateauStopper("m", num_results=1, grace_period=0)
    assert stopper("t", {"m": 1.0}) is True
    assert stopper.stop_all() is False


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=12),
    st.integers(1, 5),
    st.integers(0, 6),
)
def test_trial_plateau_stops_iff_rule_holds(values: list[float], n: int, grace: int) -> None:
    std = 0.5
    stopper = TrialPlateauStopper("m", std=std, num_results=n, grace_period=grace)
    for count, value in enumerate(values, start=1):
        window = values[:count][-n:]
        mean = math.fsum(window) / len(window)
        spread = math.sqrt(math.fsum((x - mean) ** 2 for x in window) / len(window))
        expected = count >= grace and len(window) == n and spread < std
        assert stopper("t", {"m": value}) is expected


def test_trial_plateau_rejects_bad_mode() -> None:
    with pytest.raises(ConfigError, match=r"`mode` must be 'min' or 'max', got 'maximize'"):
        TrialPlateauStopper("m", mode="maximize")


def test_trial_plateau_threshold_requires_mode() -> None:
    with pytest.raises(ConfigError, match=r"`mode` must be 'min' or 'max' when `metric_thresh"):
        TrialPlateauStopper("m", metric_threshold=1.0)


def test_trial_plateau_rejects_nan_threshold() -> None:
    with pytest.raises(ConfigError, match=r"`metric_threshold` must be a number"):
        TrialPlateauStopper("m", metric_threshold=math.nan, mode="min")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"std": 0}, r"`std` must be > 0, got 0"),
        ({"std": -0.1}, r"`std` must be > 0, got -0.1"),
        ({"num_results": 0}, r"`num_results` must be >= 1, got 0"),
        ({"grace_period": -1}, r"`grace_period` must be >= 0, got -1"),
    ],
)
def test_trial_plateau_rejects_bad_numbers(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrialPlateauStopper("m", **kwargs)


def test_trial_plateau_rejects_empty_metric() -> None:
    with pytest.raises(ConfigTypeError, match="`metric` must be a non-empty str"):
        TrialPlateauStopper("")


def test_trial_plateau_defaults_match_ray() -> None:
    stopper = TrialPlateauStopper("m")
    assert "std=0.01, num_results=4, grace_period=4" in repr(stopper)


# ------------------------------------------------------------------------ ExperimentPlateau


def test_experiment_plateau_stops_all_once_top_values_are_flat() -> None:
    stopper = ExperimentPlateauStopper("loss", top=3)
    assert stopper("a", {"loss": 1.0}) is False
    assert stopper("b", {"loss": 1.0}) is False
    assert stopper.stop_all() is False
    assert stopper("c", {"loss": 1.0}) is True
    assert stopper.stop_all() is True


def test_experiment_plateau_needs_top_values_before_it_can_stop() -> None:
    stopper = ExperimentPlateauStopper("loss", top=4)
    assert feed(stopper, "a", "loss", [1.0, 1.0, 1.0]) == [False, False, False]
    assert stopper.has_plateaued() is False


def test_experiment_plateau_patience_counts_consecutive_plateaued_results() -> None:
    stopper = ExperimentPlateauStopper("loss", top=2, patience=2)
    # plateaued from the 2nd result on; stops on the 3rd plateaued result (> patience)
    assert feed(stopper, "a", "loss", [1.0, 1.0, 1.0, 1.0]) == [False, False, False, True]


def test_experiment_plateau_patience_resets_when_top_values_move() -> None:
    stopper = ExperimentPlateauStopper("loss", top=2, patience=1, mode="min")
    assert feed(stopper, "a", "loss", [1.0, 1.0]) == [False, False]  # count 1
    assert stopper("a", {"loss": 0.0}) is False  # top becomes [0, 1]: count reset
    assert stopper("a", {"loss": 0.0}) is False  # top [0, 0]: count 1
    assert stopper("a", {"loss": 0.0}) is True  # count 2 > 1


def test_experiment_plateau_min_mode_keeps_smallest_values() -> None:
    stopper = ExperimentPlateauStopper("loss", top=2, mode="min")
    assert feed(stopper, "a", "loss", [1.0, 1.0]) == [False, True]
    stopper = ExperimentPlateauStopper("loss", top=2, mode="min")
    # the large values are never among the top two smallest: [1.0, 1.0] plateaus
    assert feed(stopper, "a", "loss", [1.0, 50.0, 90.0]) == [False, False, False]
    assert stopper("b", {"loss": 1.0}) is True


def test_experiment_plateau_max_mode_keeps_largest_values() -> None:
    stopper = ExperimentPlateauStopper("acc", top=2, mode="max")
    assert feed(stopper, "a", "acc", [0.9, 0.1, 0.2]) == [False, False, False]
    assert stopper("b", {"acc": 0.9}) is True


def test_experiment_plateau_std_equal_to_threshold_does_not_stop() -> None:
    stopper = ExperimentPlateauStopper("m", std=0.5, top=2, mode="max")
    assert feed(stopper, "a", "m", [0.0, 1.0]) == [False, False]


def test_experiment_plateau_ignores_results_without_the_metric() -> None:
    stopper = ExperimentPlateauStopper("m", top=2)
    assert stopper("a", {"m": 1.0}) is False
    assert stopper("a", {"x": 1.0}) is False
    assert stopper("a", {"m": math.nan}) is False
    assert stopper("a", {"m": 1.0}) is True


def test_experiment_plateau_result_after_stop_also_stops_its_trial() -> None:
    stopper = ExperimentPlateauStopper("m", top=2)
    feed(stopper, "a", "m", [1.0, 1.0])
    assert stopper("b", {"other": 3}) is True


@given(
    st.lists(st.floats(-10, 10).map(lambda v: round(v, 1)), max_size=30),
    st.integers(2, 4),
    st.sampled_from(["min", "max"]),
    st.integers(0, 3),
)
def test_experiment_plateau_matches_a_brute_force_model(
    values: list[float], top: int, mode: str, patience: int
) -> None:
    std = 0.3
    stopper = ExperimentPlateauStopper("m", std=std, top=top, mode=mode, patience=patience)
    consecutive = 0
    for count, value in enumerate(values, start=1):
        seen = sorted(values[:count], reverse=(mode == "max"))[:top]
        mean = math.fsum(seen) / len(seen)
        spread = math.sqrt(math.fsum((x - mean) ** 2 for x in seen) / len(seen))
        plateaued = len(seen) == top and spread < std
        consecutive = consecutive + 1 if plateaued else 0
        expected = plateaued and consecutive > patience
        assert stopper(f"t{count % 3}", {"m": value}) is expected
        assert stopper.stop_all() is expected


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mode": "maximize"}, ConfigError, r"`mode` must be 'min' or 'max', got 'maximize'"),
        ({"mode": None}, ConfigError, r"`mode` must be 'min' or 'max', got None"),
        ({"top": 1}, ConfigError, r"`top` must be >= 2, got 1"),
        ({"top": 0}, ConfigError, r"`top` must be >= 2, got 0"),
        ({"top": 2.5}, ConfigTypeError, r"`top` must be an int"),
        ({"std": 0}, ConfigError, r"`std` must be > 0, got 0"),
        ({"std": math.nan}, ConfigError, r"`std` must be > 0, got nan"),
        ({"patience": -1}, ConfigError, r"`patience` must be >= 0, got -1"),
    ],
)
def test_experiment_plateau_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ExperimentPlateauStopper("m", **kwargs)


# ------------------------------------------------------------------------ Timeout


def test_timeout_stops_all_exactly_when_timeout_has_passed() -> None:
    clock = FakeClock()
    stopper = TimeoutStopper(10, clock=clock)
    assert stopper.stop_all() is False  # starts the clock at 100
    clock.now = 109.999
    assert stopper.stop_all() is False
    clock.now = 110.0
    assert stopper.stop_all() is True


def test_timeout_clock_starts_at_first_consultation_not_construction() -> None:
    clock = FakeClock(0.0)
    stopper = TimeoutStopper(5, clock=clock)
    clock.now = 1000.0
    assert stopper.stop_all() is False
    clock.now = 1004.0
    assert stopper.stop_all() is False


def test_timeout_first_result_starts_the_clock() -> None:
    clock = FakeClock(0.0)
    stopper = TimeoutStopper(5, clock=clock)
    assert stopper("t", {}) is False
    clock.now = 5.0
    assert stopper.stop_all() is True


def test_timeout_never_stops_single_trials() -> None:
    clock = FakeClock()
    stopper = TimeoutStopper(1, clock=clock)
    stopper.stop_all()
    clock.now += 100
    assert stopper("t", {}) is False
    assert stopper.stop_all() is True


def test_timeout_accepts_timedelta() -> None:
    clock = FakeClock(0.0)
    stopper = TimeoutStopper(datetime.timedelta(minutes=1), clock=clock)
    assert stopper.timeout_s == 60.0
    stopper.stop_all()
    clock.now = 59.0
    assert stopper.stop_all() is False
    clock.now = 60.0
    assert stopper.stop_all() is True


def test_timeout_remaining_s() -> None:
    clock = FakeClock(0.0)
    stopper = TimeoutStopper(10, clock=clock)
    assert stopper.remaining_s() == 10.0
    clock.now = 4.0
    assert stopper.remaining_s() == 6.0
    clock.now = 40.0
    assert stopper.remaining_s() == 0.0


_SHARED_NOW = [0.0]


class SharedClock:
    """A clock that survives pickling: every copy reads the same module-level time."""

    def __call__(self) -> float:
        return _SHARED_NOW[0]


def test_timeout_pickle_keeps_the_time_spent_and_restarts_the_clock() -> None:
    _SHARED_NOW[0] = 0.0
    stopper = TimeoutStopper(10, clock=SharedClock())
    stopper.stop_all()
    _SHARED_NOW[0] = 7.0
    restored = pickle.loads(pickle.dumps(stopper))
    _SHARED_NOW[0] = 500.0  # e.g. the experiment resumes much later
    assert restored.remaining_s() == 3.0
    _SHARED_NOW[0] = 502.9
    assert restored.stop_all() is False
    _SHARED_NOW[0] = 503.0
    assert restored.stop_all() is True


def test_timeout_with_default_clock_pickles() -> None:
    restored = pickle.loads(pickle.dumps(TimeoutStopper(10)))
    assert restored.stop_all() is False


def test_timeout_with_infinite_budget_never_stops() -> None:
    clock = FakeClock(0.0)
    stopper = TimeoutStopper(math.inf, clock=clock)
    stopper.stop_all()
    clock.now = 1e12
    assert stopper.stop_all() is False


@pytest.mark.parametrize("bad", [0, -1, math.nan, datetime.timedelta(0)])
def test_timeout_rejects_non_positive(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"`timeout` must be > 0 seconds, got"):
        TimeoutStopper(bad)


@pytest.mark.parametrize("bad", ["10", None, True])
def test_timeout_rejects_wrong_type(bad: Any) -> None:
    with pytest.raises(
        ConfigTypeError, match=r"`timeout` must be a number of seconds or a datetime.timedelta"
    ):
        TimeoutStopper(bad)


# ------------------------------------------------------------------------ Combined


def test_combined_stops_trial_if_any_stopper_does() -> None:
    stopper = CombinedStopper(CountingStopper(), CountingStopper(stop_trial=True))
    assert stopper("t", {}) is True


def test_combined_does_not_stop_when_none_does() -> None:
    stopper = CombinedStopper(CountingStopper(), CountingStopper())
    assert stopper("t", {}) is False
    assert stopper.stop_all() is False


def test_combined_stops_all_if_any_stopper_does() -> None:
    stopper = CombinedStopper(CountingStopper(), CountingStopper(stop_all=True))
    assert stopper.stop_all() is True


def test_combined_consults_every_stopper_even_after_a_stop() -> None:
    first = CountingStopper(stop_trial=True, stop_all=True)
    second = CountingStopper()
    stopper = CombinedStopper(first, second)
    stopper("t", {"x": 1})
    stopper.stop_all()
    assert second.calls == [("t", {"x": 1})]
    assert second.stop_all_calls == 1


def test_combined_keeps_stateful_stoppers_counting() -> None:
    stopper = CombinedStopper(DictStopper({"x": 1}), MaximumIterationStopper(3))
    assert stopper("t", {"x": 5}) is True
    assert stopper("t", {"x": 0}) is False
    assert stopper("t", {"x": 0}) is True  # the max-iteration count saw all three


def test_combined_of_nothing_never_stops() -> None:
    stopper = CombinedStopper()
    assert stopper("t", {}) is False
    assert stopper.stop_all() is False


def test_combined_check_keys_checks_nested_dict_stoppers() -> None:
    stopper = CombinedStopper(NoopStopper(), DictStopper({"acc": 1}))
    stopper.check_keys({"acc": 0.5})
    with pytest.raises(ConfigError, match=r"stop criterion 'acc' is not a key"):
        stopper.check_keys({"loss": 0.5})


def test_combined_rejects_non_stoppers() -> None:
    with pytest.raises(ConfigTypeError, match=r"`stoppers\[1\]` must be an atune.Stopper"):
        CombinedStopper(NoopStopper(), {"x": 1})  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=6))
def test_combined_is_the_or_of_its_stoppers(flags: list[tuple[bool, bool]]) -> None:
    stopper = CombinedStopper(*(CountingStopper(a, b) for a, b in flags))
    assert stopper("t", {}) is any(a for a, _ in flags)
    assert stopper.stop_all() is any(b for _, b in flags)


# ------------------------------------------------------------------------ Function / Noop


def test_function_stopper_calls_the_function_with_trial_id_and_result() -> None:
    seen = []

    def stop(trial_id: str, result: dict[str, Any]) -> bool:
        seen.append((trial_id, result))
        return result["x"] > 1

    stopper = FunctionStopper(stop)
    assert stopper("t", {"x": 1}) is False
    assert stopper("t", {"x": 2}) is True
    assert seen == [("t", {"x": 1}), ("t", {"x": 2})]
    assert stopper.stop_all() is False


def test_function_stopper_returns_bools_for_truthy_values() -> None:
    assert FunctionStopper(lambda trial_id, result: 1)("t", {}) is True
    assert FunctionStopper(lambda trial_id, result: None)("t", {}) is False


def test_function_stopper_accepts_varargs_and_defaults() -> None:
    FunctionStopper(lambda *args: False)
    FunctionStopper(lambda trial_id, result, extra=0: False)


def test_function_stopper_rejects_wrong_arity() -> None:
    with pytest.raises(ConfigError, match=r"`function` must accept two positional arguments"):
        FunctionStopper(lambda result: False)  # type: ignore[arg-type]


def test_function_stopper_rejects_non_callable() -> None:
    with pytest.raises(ConfigTypeError, match=r"`function` must be a function"):
        FunctionStopper(3)  # type: ignore[arg-type]


def test_function_stopper_rejects_duck_typed_stopper() -> None:
    class Duck:
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            return True

    with pytest.raises(ConfigTypeError, match=r"does not subclass atune.Stopper"):
        FunctionStopper(Duck())


def test_noop_stopper_never_stops() -> None:
    stopper = NoopStopper()
    assert stopper("t", {"training_iteration": 10**9}) is False
    assert stopper.stop_all() is False


# ------------------------------------------------------------------------ DictStopper


def test_dict_stopper_stops_when_value_reaches_threshold() -> None:
    stopper = DictStopper({"mean_accuracy": 0.8})
    assert stopper("t", {"mean_accuracy": 0.79}) is False
    assert stopper("t", {"mean_accuracy": 0.8}) is True
    assert stopper("t", {"mean_accuracy": 0.9}) is True


def test_dict_stopper_any_key_wins() -> None:
    stopper = DictStopper({"training_iteration": 10, "mean_accuracy": 0.8})
    assert stopper("t", {"training_iteration": 10, "mean_accuracy": 0.1}) is True
    assert stopper("t", {"training_iteration": 1, "mean_accuracy": 0.8}) is True
    assert stopper("t", {"training_iteration": 9, "mean_accuracy": 0.79}) is False


def test_dict_stopper_looks_into_nested_results() -> None:
    stopper = DictStopper({"info/loss": 3})
    assert stopper("t", {"info": {"loss": 2}}) is False
    assert stopper("t", {"info": {"loss": 3}}) is True


def test_dict_stopper_prefers_literal_slash_key() -> None:
    stopper = DictStopper({"info/loss": 3})
    assert stopper("t", {"info/loss": 5, "info": {"loss": 0}}) is True


def test_dict_stopper_skips_missing_and_none_values() -> None:
    stopper = DictStopper({"timesteps_total": 100})
    assert stopper("t", {}) is False
    assert stopper("t", {"timesteps_total": None}) is False


def test_dict_stopper_bool_threshold_on_done() -> None:
    stopper = DictStopper({"done": True})
    assert stopper("t", {"done": False}) is False
    assert stopper("t", {"done": True}) is True


def test_dict_stopper_never_stops_all() -> None:
    stopper = DictStopper({"x": 0})
    stopper("t", {"x": 1})
    assert stopper.stop_all() is False


def test_dict_stopper_uncomparable_value_names_the_key() -> None:
    stopper = DictStopper({"x": 1})
    with pytest.raises(ConfigTypeError, match=r"stop criterion 'x': the reported value 'abc'"):
        stopper("t", {"x": "abc"})


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.floats(allow_nan=False, allow_infinity=False),
        min_size=1,
    ),
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.floats(allow_nan=False),
    ),
)
def test_dict_stopper_stops_iff_some_value_reaches_its_threshold(
    criteria: dict[str, float], result: dict[str, float]
) -> None:
    expected = any(key in result and result[key] >= t for key, t in criteria.items())
    assert DictStopper(criteria)("t", result) is expected


def test_dict_stopper_rejects_non_number_threshold() -> None:
    with pytest.raises(ConfigError, match=r"`stop\['acc'\]` must be a number .*got str '0.8'"):
        DictStopper({"acc": "0.8"})  # type: ignore[dict-item]


def test_dict_stopper_rejects_nan_threshold() -> None:
    with pytest.raises(ConfigError, match=r"`stop\['acc'\]` must be a number"):
        DictStopper({"acc": math.nan})


def test_dict_stopper_rejects_non_str_key() -> None:
    with pytest.raises(ConfigTypeError, match=r"`stop` keys must be non-empty"):
        DictStopper({1: 2})  # type: ignore[dict-item]


def test_check_keys_accepts_reported_and_auto_filled_keys() -> None:
    stopper = DictStopper({"acc": 1, "training_iteration": 5, "timesteps_total": 9, "n/x": 1})
    stopper.check_keys({"acc": 0.1, "n": {"x": 0}})


def test_check_keys_names_the_unknown_key_the_known_keys_and_the_fix() -> None:
    stopper = DictStopper({"acc": 0.8})
    with pytest.raises(ConfigError) as info:
        stopper.check_keys({"mean_accuracy": 0.5, "training_iteration": 1, "config": {"lr": 0.1}})
    message = str(info.value)
    assert message.startswith(
        "stop criterion 'acc' is not a key of the reported results "
        "(keys: mean_accuracy, training_iteration)."
    )
    assert message.endswith("Report it, or fix the name in `stop`.")
    assert "config" not in message


def test_check_keys_suggests_a_close_name() -> None:
    stopper = DictStopper({"mean_acuracy": 0.8})
    with pytest.raises(ConfigError, match=r"Did you mean 'mean_accuracy' for 'mean_acuracy'\?"):
        stopper.check_keys({"mean_accuracy": 0.5})


def test_check_keys_lists_every_unknown_key() -> None:
    stopper = DictStopper({"acc": 0.8, "foo": 1, "loss": 2})
    with pytest.raises(
        ConfigError,
        match=r"stop criteria 'acc', 'foo' are not keys of the reported results "
        r"\(keys: info/a, loss\)\. Report them, or fix the names in `stop`\.",
    ):
        stopper.check_keys({"loss": 1, "info": {"a": 1}})


# ------------------------------------------------------------------------ as_stopper


def test_as_stopper_none_and_empty_dict_give_none() -> None:
    assert as_stopper(None) is None
    assert as_stopper({}) is None


def test_as_stopper_dict_gives_dict_stopper() -> None:
    stopper = as_stopper({"training_iteration": 3})
    assert isinstance(stopper, DictStopper)
    assert stopper.criteria == {"training_iteration": 3}


def test_as_stopper_returns_stopper_unchanged() -> None:
    stopper = NoopStopper()
    assert as_stopper(stopper) is stopper


def test_as_stopper_wraps_functions() -> None:
    stopper = as_stopper(lambda trial_id, result: result["x"] > 0)
    assert isinstance(stopper, FunctionStopper)
    assert stopper("t", {"x": 1}) is True


def test_as_stopper_function_of_wrong_arity_names_stop() -> None:
    with pytest.raises(ConfigError, match=r"`stop` must accept two positional arguments"):
        as_stopper(lambda: True)


@pytest.mark.parametrize("bad", [3, "training_iteration", [("a", 1)]])
def test_as_stopper_rejects_other_types(bad: Any) -> None:
    with pytest.raises(
        ConfigTypeError, match=rf"`stop` must be None, a dict .*got {type(bad).__name__}"
    ):
        as_stopper(bad)
