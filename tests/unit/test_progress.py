"""The status table of CLIReporter, its report timing, and the verbose result block."""

from __future__ import annotations

import datetime
import io
import math
from typing import Any

import numpy as np
import pytest

from atune._trial import Trial
from atune.callbacks import CLIReporter, ExperimentStatus, ProgressReporter
from atune.callbacks.progress import format_result
from atune.errors import ConfigError

START = datetime.datetime(2026, 11, 22, 10, 19, 30).timestamp()
NOW = START + 4.54


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_trial(
    index: int,
    status: str = Trial.RUNNING,
    params: dict[str, Any] | None = None,
    **result: Any,
) -> Trial:
    params = {"lr": 0.01 * (index + 1)} if params is None else params
    return Trial(
        trial_id=f"3a1f2_{index:05d}",
        trainable_name="train_fn",
        config=dict(params),
        evaluated_params=dict(params),
        status=status,
        last_result=dict(result),
        local_path=f"/results/exp/train_fn_3a1f2_{index:05d}",
    )


def status_info(**kwargs: Any) -> ExperimentStatus:
    defaults: dict[str, Any] = {
        "start_time": START,
        "scheduler_line": "Using FIFO scheduling algorithm.",
        "resources_line": "Logical resource usage: 4.0/8 CPUs, 0/0 GPUs",
        "logdir": "/results/exp",
        "total_samples": 20,
    }
    defaults.update(kwargs)
    return ExperimentStatus(**defaults)


def reporter(**kwargs: Any) -> CLIReporter:
    return CLIReporter(wall_clock=lambda: NOW, **kwargs)


def table_rows(text: str) -> list[list[str]]:
    """Cells of the first table in ``text`` (header included), stripped."""
    rows = []
    started = False
    for line in text.splitlines():
        if line.startswith("+"):
            if started and rows:
                break
            started = True
            continue
        if started and line.startswith("| "):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def column(text: str, header: str) -> list[str]:
    head, *rows = table_rows(text)
    index = head.index(header)
    return [row[index] for row in rows]


# ---------------------------------------------------------------------------- header


def test_status_header_lines() -> None:
    trials = [
        make_trial(0, Trial.RUNNING, training_iteration=3),
        make_trial(1, Trial.PENDING),
        make_trial(2, Trial.TERMINATED, training_iteration=10),
        make_trial(3, Trial.RUNNING, training_iteration=2),
    ]
    lines = reporter().render(trials, False, status_info()).splitlines()
    assert lines[:6] == [
        "== Status ==",
        "Current time: 2026-11-22 10:19:34 (running for 00:00:04.54)",
        "Using FIFO scheduling algorithm.",
        "Logical resource usage: 4.0/8 CPUs, 0/0 GPUs",
        "Result logdir: /results/exp",
        "Number of trials: 4/20 (1 PENDING, 2 RUNNING, 1 TERMINATED)",
    ]


def test_running_for_counts_hours_past_a_day() -> None:
    status = status_info(start_time=NOW - (26 * 3600 + 61.999))
    text = reporter().render([], False, status)
    assert "(running for 26:01:02.00)" in text


@pytest.mark.parametrize(
    ("total", "expected"),
    [(None, "Number of trials: 1 (1 RUNNING)"), (-1, "Number of trials: 1/infinite (1 RUNNING)")],
)
def test_trial_count_line_without_a_finite_total(total: int | None, expected: str) -> None:
    text = reporter().render([make_trial(0)], False, status_info(total_samples=total))
    assert expected in text.splitlines()


def test_reporter_total_samples_overrides_the_status() -> None:
    text = reporter(total_samples=50).render([make_trial(0)], False, status_info())
    assert "Number of trials: 1/50 (1 RUNNING)" in text


def test_extra_sys_info_strings_are_printed() -> None:
    text = reporter().render([], False, "Memory usage on this node: 4.3/16.8 GB")
    assert "Memory usage on this node: 4.3/16.8 GB" in text.splitlines()


def test_status_str_is_its_lines_for_custom_reporters() -> None:
    assert str(status_info()).splitlines() == [
        "Using FIFO scheduling algorithm.",
        "Logical resource usage: 4.0/8 CPUs, 0/0 GPUs",
        "Result logdir: /results/exp",
    ]


def test_best_trial_line_when_metric_and_mode_are_known() -> None:
    trials = [
        make_trial(0, mean_loss=0.5),
        make_trial(1, mean_loss=0.25),
        make_trial(2, mean_loss=float("nan")),
    ]
    text = reporter().render(trials, False, status_info(metric="mean_loss", mode="min"))
    assert (
        "Current best trial: 3a1f2_00001 with mean_loss=0.25 and parameters={'lr': 0.02}"
        in text.splitlines()
    )


@pytest.mark.parametrize("mode", ["min", "max"])
def test_best_trial_line_skips_nan_and_inf_like_get_best_result(mode: str) -> None:
    from atune.result_grid import ResultGrid

    bad = -math.inf if mode == "min" else math.inf
    trials = [
        make_trial(0, Trial.TERMINATED, score=bad),
        make_trial(1, Trial.TERMINATED, score=math.nan),
        make_trial(2, Trial.TERMINATED, score=np.float32(0.5)),
        make_trial(3, Trial.TERMINATED, score="n/a"),
    ]
    text = reporter().render(trials, False, status_info(metric="score", mode=mode))
    best = next(line for line in text.splitlines() if line.startswith("Current best trial"))
    assert best.startswith("Current best trial: 3a1f2_00002 with score=0.5 ")
    grid_best = ResultGrid(trials, "/results/exp").get_best_result("score", mode)
    assert grid_best.path == trials[2].local_path


def test_no_best_trial_line_when_every_value_is_nan_or_inf() -> None:
    trials = [make_trial(0, score=math.inf), make_trial(1, score=math.nan)]
    text = reporter().render(trials, False, status_info(metric="score", mode="max"))
    assert "Current best trial" not in text


# ----------------------------------------------------------------------------- table


def test_table_has_name_status_params_and_default_metrics() -> None:
    trials = [
        make_trial(0, mean_loss=0.4, training_iteration=7, time_total_s=3.2101),
        make_trial(1, Trial.PENDING),
    ]
    text = reporter().render(trials, False, status_info())
    assert table_rows(text) == [
        ["Trial name", "status", "lr", "loss", "iter", "total time (s)"],
        ["train_fn_3a1f2_00000", "RUNNING", "0.01", "0.4", "7", "3.2101"],
        ["train_fn_3a1f2_00001", "PENDING", "0.02", "", "", ""],
    ]


def test_table_is_a_psql_grid_with_numbers_right_aligned() -> None:
    trials = [make_trial(0, params={"act": "relu"}, mean_loss=0.5, training_iteration=12)]
    text = reporter().render(trials, False, status_info())
    table = [line for line in text.splitlines() if line[:1] in "+|"]
    assert table == [
        "+----------------------+---------+------+------+------+",
        "| Trial name           | status  | act  | loss | iter |",
        "|----------------------+---------+------+------+------|",
        "| train_fn_3a1f2_00000 | RUNNING | relu |  0.5 |   12 |",
        "+----------------------+---------+------+------+------+",
    ]


def test_rows_are_sorted_by_status_then_trial_id() -> None:
    trials = [
        make_trial(5, Trial.ERROR),
        make_trial(4, Trial.TERMINATED),
        make_trial(3, Trial.PENDING),
        make_trial(2, Trial.PAUSED),
        make_trial(1, Trial.RUNNING),
        make_trial(0, Trial.RUNNING),
    ]
    text = reporter().render(trials, False, status_info())
    assert column(text, "status") == [
        "RUNNING",
        "RUNNING",
        "PAUSED",
        "PENDING",
        "TERMINATED",
        "ERROR",
    ]
    assert column(text, "Trial name")[:2] == ["train_fn_3a1f2_00000", "train_fn_3a1f2_00001"]


def test_empty_columns_are_hidden() -> None:
    trials = [
        make_trial(0, params={"lr": 0.1, "unused": None}, mean_loss=0.5),
        make_trial(1, params={"lr": 0.2, "unused": None}, mean_loss=0.4),
    ]
    head = table_rows(reporter().render(trials, False, status_info()))[0]
    assert head == ["Trial name", "status", "lr", "loss"]


def test_experiment_metric_is_a_column() -> None:
    trials = [make_trial(0, score=0.9, training_iteration=1)]
    text = reporter().render(trials, False, status_info(metric="score", mode="max"))
    assert table_rows(text)[0] == ["Trial name", "status", "lr", "score", "iter"]


def test_explicit_columns_replace_the_defaults() -> None:
    trials = [make_trial(0, params={"lr": 0.1, "wd": 0.2}, mean_loss=0.5, custom=3)]
    rep = reporter(metric_columns={"custom": "my metric"}, parameter_columns=["wd"])
    head = table_rows(rep.render(trials, False, status_info(metric="mean_loss", mode="min")))[0]
    assert head == ["Trial name", "status", "wd", "my metric"]


def test_added_columns_follow_the_defaults() -> None:
    trials = [make_trial(0, mean_loss=0.5, custom={"inner": 2})]
    trials[0].config["batch"] = 64
    rep = reporter()
    rep.add_metric_column("custom/inner", "inner")
    rep.add_parameter_column("batch")
    head = table_rows(rep.render(trials, False, status_info()))[0]
    assert head == ["Trial name", "status", "lr", "batch", "loss", "inner"]
    assert table_rows(rep.render(trials, False, status_info()))[1][-1] == "2"


def test_adding_an_existing_column_is_an_error() -> None:
    rep = reporter()
    with pytest.raises(ConfigError, match="mean_loss"):
        rep.add_metric_column("mean_loss")
    rep.add_parameter_column("lr")
    with pytest.raises(ConfigError, match="lr"):
        rep.add_parameter_column("lr")


def test_floats_have_five_significant_digits() -> None:
    trials = [
        make_trial(0, mean_loss=0.123456789),
        make_trial(1, mean_loss=123456.789),
        make_trial(2, mean_loss=np.float32(1.5e-7)),
        make_trial(3, mean_loss=math.nan),
    ]
    text = reporter().render(trials, False, status_info())
    assert column(text, "loss") == ["0.12346", "1.2346e+05", "1.5e-07", "nan"]


def test_bools_and_ints_are_printed_as_is() -> None:
    trials = [make_trial(0, params={"flag": True, "n": np.int64(12)}, mean_loss=1)]
    text = reporter().render(trials, False, status_info())
    assert column(text, "flag") == ["True"]
    assert column(text, "n") == ["12"]


def test_long_values_and_headers_are_cut_with_an_ellipsis() -> None:
    trials = [make_trial(0, params={"model/optimizer/learning_rate": "adam_with_warmup_schedule"})]
    text = reporter(max_column_length=12).render(trials, False, status_info())
    head, row = table_rows(text)
    assert head[2] == "…arning_rate"
    assert row[2] == "adam_with_w…"
    assert row[0] == "train_fn_3a1f2_00000"  # trial names are never cut


def test_rows_beyond_the_limit_are_summarised() -> None:
    trials = [make_trial(i, Trial.RUNNING) for i in range(3)]
    trials += [make_trial(i, Trial.TERMINATED) for i in range(3, 10)]
    text = reporter(max_progress_rows=4).render(trials, False, status_info())
    assert column(text, "status") == ["RUNNING", "RUNNING", "TERMINATED", "TERMINATED"]
    assert "... 6 more trials not shown (1 RUNNING, 5 TERMINATED)" in text.splitlines()


def test_the_final_report_lists_every_trial() -> None:
    trials = [make_trial(i, Trial.TERMINATED) for i in range(30)]
    text = reporter(max_progress_rows=4).render(trials, True, status_info())
    assert len(table_rows(text)) == 31
    assert "more trials not shown" not in text


def test_sort_by_metric_puts_the_best_first_within_each_status() -> None:
    trials = [
        make_trial(0, Trial.TERMINATED, score=0.2),
        make_trial(1, Trial.TERMINATED, score=0.9),
        make_trial(2, Trial.TERMINATED),
        make_trial(3, Trial.TERMINATED, score=0.5),
        make_trial(4, Trial.RUNNING, score=0.1),
    ]
    rep = reporter(sort_by_metric=True, metric="score", mode="max")
    names = column(rep.render(trials, False, status_info()), "Trial name")
    assert [name[-1] for name in names] == ["4", "1", "3", "0", "2"]


# ----------------------------------------------------------------------- error table


def test_error_table_lists_failures_and_error_files() -> None:
    failed = make_trial(1, Trial.ERROR)
    failed.num_failures = 3
    trials = [make_trial(0, Trial.TERMINATED), failed]
    text = reporter().render(trials, False, status_info())
    after = text.split("Number of errored trials: 1\n", 1)[1]
    assert table_rows(after) == [
        ["Trial name", "# failures", "error file"],
        ["train_fn_3a1f2_00001", "3", "/results/exp/train_fn_3a1f2_00001/error.txt"],
    ]


def test_error_table_is_limited_until_the_final_report() -> None:
    trials = [make_trial(i, Trial.ERROR) for i in range(5)]
    rep = reporter(max_error_rows=2)
    text = rep.render(trials, False, status_info())
    after = text.split("Number of errored trials: 5\n", 1)[1]
    assert len(table_rows(after)) == 3
    assert "... 3 more errored trials not shown" in text.splitlines()
    final = rep.render(trials, True, status_info()).split("Number of errored trials: 5\n", 1)[1]
    assert len(table_rows(final)) == 6


def test_no_error_table_without_errors() -> None:
    text = reporter().render([make_trial(0)], False, status_info())
    assert "errored" not in text


# --------------------------------------------------------------------------- timing


def test_should_report_at_most_once_per_period() -> None:
    clock = FakeClock()
    rep = CLIReporter(max_report_frequency=5, clock=clock)
    assert rep.should_report([]) is True  # the first report comes at once
    clock.now += 4.9
    assert rep.should_report([]) is False
    clock.now += 0.1
    assert rep.should_report([]) is True
    clock.now += 1
    assert rep.should_report([]) is False


def test_should_report_always_when_done() -> None:
    clock = FakeClock()
    rep = CLIReporter(clock=clock)
    assert rep.should_report([]) is True
    assert rep.should_report([], done=True) is True


def test_report_prints_the_rendered_text() -> None:
    out = io.StringIO()
    rep = CLIReporter(file=out, wall_clock=lambda: NOW)
    trials = [make_trial(0, mean_loss=0.5)]
    rep.report(trials, False, status_info())
    assert out.getvalue() == rep.render(trials, False, status_info()) + "\n"


def test_progress_reporter_is_an_interface() -> None:
    with pytest.raises(NotImplementedError):
        ProgressReporter().should_report([])
    with pytest.raises(NotImplementedError):
        ProgressReporter().report([], False)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_progress_rows": 0}, "max_progress_rows"),
        ({"max_error_rows": 0}, "max_error_rows"),
        ({"max_column_length": 1}, "max_column_length"),
        ({"max_report_frequency": -1}, "max_report_frequency"),
        ({"mode": "maximize"}, "mode"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=f"`{name}`"):
        CLIReporter(**kwargs)


# -------------------------------------------------------------------------- verbose=2


def test_format_result_is_a_sorted_yaml_like_block() -> None:
    trial = make_trial(0)
    result = {
        "training_iteration": 3,
        "mean_loss": 0.125,
        "done": False,
        "date": "2026-11-22_10-19-34",
        "node_ip": "10.0.0.1",
        "config": {"lr": 0.01},
        "info": {"grad": {"norm": np.float32(2.5)}, "count": np.int64(4)},
        "timesteps_total": None,
        "tags": ["a", "b"],
        "answer": "yes",
    }
    assert format_result(trial, result) == "\n".join(
        [
            "Result for train_fn_3a1f2_00000:",
            "  answer: 'yes'",
            "  date: 2026-11-22_10-19-34",
            "  done: false",
            "  info:",
            "    count: 4",
            "    grad:",
            "      norm: 2.5",
            "  mean_loss: 0.125",
            "  node_ip: 10.0.0.1",
            "  tags: [a, b]",
            "  training_iteration: 3",
        ]
    )


def test_format_result_quotes_strings_yaml_would_misread() -> None:
    text = format_result(make_trial(0), {"a": "", "b": "x: y", "c": "1.5", "d": "plain text"})
    assert text.splitlines()[1:] == ["  a: ''", "  b: 'x: y'", "  c: '1.5'", "  d: plain text"]


def test_format_result_writes_non_finite_floats_as_yaml_does() -> None:
    text = format_result(make_trial(0), {"a": math.nan, "b": math.inf, "c": -math.inf})
    assert text.splitlines()[1:] == ["  a: .nan", "  b: .inf", "  c: -.inf"]
