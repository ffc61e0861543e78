"""ResultGrid and Result, built from Trial records and real result.json files."""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atune._trial import Trial
from atune.checkpoint import Checkpoint
from atune.errors import AtuneError, ConfigError, TrialError
from atune.result_grid import Result, ResultGrid


def make_trial(
    tmp_path: pathlib.Path,
    index: int,
    history: list[dict[str, Any]],
    *,
    config: dict[str, Any] | None = None,
    status: str = Trial.TERMINATED,
    error: BaseException | None = None,
    write: bool = True,
) -> Trial:
    """A trial whose result.json holds ``history`` (with auto fields) and last_result its end."""
    trial_id = f"abcde_{index:05d}"
    config = config if config is not None else {"lr": 0.1 * (index + 1)}
    path = tmp_path / f"train_{trial_id}"
    path.mkdir()
    rows = [
        {**row, "training_iteration": i, "trial_id": trial_id, "config": config}
        for i, row in enumerate(history, start=1)
    ]
    if write:
        with open(path / "result.json", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return Trial(
        trial_id=trial_id,
        trainable_name="train",
        config=config,
        status=status,
        last_result=rows[-1] if rows else {},
        local_path=str(path),
        error=error,
        num_results=len(rows),
    )


def losses(tmp_path: pathlib.Path, *series: list[float]) -> list[Trial]:
    return [
        make_trial(tmp_path, i, [{"loss": v} for v in values]) for i, values in enumerate(series)
    ]


def best_id(grid: ResultGrid, **kwargs: Any) -> str:
    return grid.get_best_result(**kwargs).metrics["trial_id"]


# ---------------------------------------------------------------------------- container


def test_len_index_and_iteration_follow_trial_order(tmp_path: pathlib.Path) -> None:
    trials = losses(tmp_path, [1.0], [2.0], [3.0])
    grid = ResultGrid(trials, str(tmp_path))
    assert len(grid) == 3
    assert [r.metrics["loss"] for r in grid] == [1.0, 2.0, 3.0]
    assert grid[1].metrics["loss"] == 2.0
    assert grid[-1].metrics["loss"] == 3.0
    assert [r.metrics["loss"] for r in grid[:2]] == [1.0, 2.0]
    with pytest.raises(IndexError):
        grid[3]


def test_experiment_path(tmp_path: pathlib.Path) -> None:
    assert ResultGrid([], str(tmp_path)).experiment_path == str(tmp_path)


def test_result_fields_come_from_the_trial(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}], config={"lr": 0.5})
    ckpt = Checkpoint(os.path.join(trial.local_path, "checkpoint_000001"))
    trial.checkpoint = ckpt
    trial.checkpoints = [(ckpt, {"loss": 1.0})]
    result = ResultGrid([trial], str(tmp_path))[0]
    assert result.metrics == trial.last_result
    assert result.config == {"lr": 0.5}
    assert result.checkpoint == ckpt
    assert result.best_checkpoints == [(ckpt, {"loss": 1.0})]
    assert result.path == trial.local_path
    assert result.error is None


def test_errors_num_errors_and_num_terminated(tmp_path: pathlib.Path) -> None:
    boom = RuntimeError("boom")
    trials = [
        make_trial(tmp_path, 0, [{"loss": 1.0}]),
        make_trial(tmp_path, 1, [{"loss": 2.0}], status=Trial.ERROR, error=boom),
        make_trial(tmp_path, 2, [{"loss": 3.0}]),
        make_trial(tmp_path, 3, [{"loss": 4.0}], status=Trial.RUNNING),
    ]
    grid = ResultGrid(trials, str(tmp_path))
    assert grid.errors == [boom]
    assert grid.num_errors == 1
    assert grid.num_terminated == 2
    assert grid[1].error is boom
    assert grid[0].error is None


def test_error_trial_without_exception_gets_a_trial_error(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}], status=Trial.ERROR)
    grid = ResultGrid([trial], str(tmp_path))
    assert isinstance(grid[0].error, TrialError)
    assert grid.num_errors == len(grid.errors) == 1


def test_error_of_a_recovered_trial_is_not_reported(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}], error=RuntimeError("retried"))
    grid = ResultGrid([trial], str(tmp_path))
    assert grid.errors == []
    assert grid[0].error is None


def test_bad_default_mode_is_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"`default_mode` must be 'min' or 'max', got 'up'"):
        ResultGrid([], str(tmp_path), default_mode="up")


# ---------------------------------------------------------------------------- best result


def test_best_last_min_and_max(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [0.0, 3.0], [9.0, 2.0], [1.0, 5.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min") == "abcde_00001"
    assert best_id(grid, metric="loss", mode="max") == "abcde_00002"


def test_best_uses_grid_defaults(tmp_path: pathlib.Path) -> None:
    trials = losses(tmp_path, [3.0], [1.0])
    grid = ResultGrid(trials, str(tmp_path), default_metric="loss", default_mode="min")
    assert best_id(grid) == "abcde_00001"
    assert best_id(grid, mode="max") == "abcde_00000"


def test_best_avg_uses_mean_of_all_results(tmp_path: pathlib.Path) -> None:
    # means: 2.0 and 3.0; last values favour the other trial
    grid = ResultGrid(losses(tmp_path, [1.0, 2.0, 3.0], [5.0, 3.0, 1.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="avg") == "abcde_00000"
    assert best_id(grid, metric="loss", mode="min", scope="last") == "abcde_00001"


def test_best_last_5_avg_uses_only_the_last_five(tmp_path: pathlib.Path) -> None:
    # a: huge first value then five 2.0s (last-5 mean 2.0, overall mean large)
    # b: six 3.0s (both means 3.0)
    grid = ResultGrid(losses(tmp_path, [100.0] + [2.0] * 5, [3.0] * 6), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="last-5-avg") == "abcde_00000"
    assert best_id(grid, metric="loss", mode="min", scope="avg") == "abcde_00001"


def test_best_last_10_avg_uses_only_the_last_ten(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [100.0] + [2.0] * 10, [3.0] * 11), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="last-10-avg") == "abcde_00000"
    assert best_id(grid, metric="loss", mode="min", scope="last-5-avg") == "abcde_00000"
    assert best_id(grid, metric="loss", mode="min", scope="avg") == "abcde_00001"


def test_best_last_n_avg_with_fewer_results_averages_all(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0, 5.0], [3.5]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="last-10-avg") == "abcde_00000"


def test_best_all_uses_the_best_value_ever(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [0.5, 9.0], [1.0, 1.0], [0.0, 10.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="all") == "abcde_00002"
    assert best_id(grid, metric="loss", mode="max", scope="all") == "abcde_00002"
    assert best_id(grid, metric="loss", mode="min", scope="last") == "abcde_00001"


def test_best_tie_goes_to_the_earlier_trial(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [1.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min") == "abcde_00000"
    assert best_id(grid, metric="loss", mode="max") == "abcde_00000"


def test_best_reads_nested_metric(tmp_path: pathlib.Path) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"val": {"loss": 2.0}}]),
        make_trial(tmp_path, 1, [{"val": {"loss": 1.0}}]),
    ]
    grid = ResultGrid(trials, str(tmp_path))
    assert best_id(grid, metric="val/loss", mode="min") == "abcde_00001"
    assert best_id(grid, metric="val/loss", mode="min", scope="avg") == "abcde_00001"


def test_best_skips_trials_that_never_reported_the_metric(tmp_path: pathlib.Path) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"other": 0.0}]),
        make_trial(tmp_path, 1, [{"loss": 5.0}]),
        make_trial(tmp_path, 2, []),
    ]
    grid = ResultGrid(trials, str(tmp_path))
    for scope in ("last", "avg", "all", "last-5-avg"):
        assert best_id(grid, metric="loss", mode="min", scope=scope) == "abcde_00001"


def test_best_includes_errored_trials_with_results(tmp_path: pathlib.Path) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"loss": 5.0}]),
        make_trial(tmp_path, 1, [{"loss": 1.0}], status=Trial.ERROR, error=ValueError("x")),
    ]
    best = ResultGrid(trials, str(tmp_path)).get_best_result(metric="loss", mode="min")
    assert best.metrics["trial_id"] == "abcde_00001"
    assert isinstance(best.error, ValueError)


def test_best_history_scopes_fall_back_to_last_result(tmp_path: pathlib.Path) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"loss": 5.0}], write=False),
        make_trial(tmp_path, 1, [{"loss": 1.0}], write=False),
    ]
    grid = ResultGrid(trials, str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="avg") == "abcde_00001"


def test_best_skips_a_partly_written_last_line(tmp_path: pathlib.Path) -> None:
    trials = losses(tmp_path, [1.0, 1.0], [2.0, 2.0])
    with open(os.path.join(trials[0].local_path, "result.json"), "a", encoding="utf-8") as f:
        f.write('{"loss": 100')
    grid = ResultGrid(trials, str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="avg") == "abcde_00000"


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.lists(st.integers(-50, 50).map(float), min_size=1, max_size=12), min_size=2, max_size=5
    ),
    st.sampled_from(["last", "avg", "last-5-avg", "last-10-avg", "all"]),
    st.sampled_from(["min", "max"]),
)
def test_best_matches_a_brute_force_model(
    tmp_path_factory: pytest.TempPathFactory, series: list[list[float]], scope: str, mode: str
) -> None:
    grid = ResultGrid(losses(tmp_path_factory.mktemp("exp"), *series), "exp")
    pick = max if mode == "max" else min

    def score(values: list[float]) -> float:
        if scope == "last":
            return values[-1]
        if scope == "all":
            return pick(values)
        window = {"avg": len(values), "last-5-avg": 5, "last-10-avg": 10}[scope]
        tail = values[-window:]
        return sum(tail) / len(tail)

    scores = [score(values) for values in series]
    expected = scores.index(pick(scores))  # first of the best
    assert best_id(grid, metric="loss", mode=mode, scope=scope) == f"abcde_{expected:05d}"


# ------------------------------------------------------------------------- NaN and inf


def test_best_last_skips_nan_and_inf_by_default(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0, math.nan], [-math.inf], [3.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min") == "abcde_00002"


def test_best_without_filter_lets_inf_win(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [-math.inf], [3.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", filter_nan_and_inf=False) == "abcde_00001"


def test_best_without_filter_ranks_nan_last(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [math.nan], [7.0]), str(tmp_path))
    for mode in ("min", "max"):
        assert best_id(grid, metric="loss", mode=mode, filter_nan_and_inf=False) == ("abcde_00001")


def test_best_all_ignores_nan_values_but_keeps_the_trial(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [math.nan, 0.5, math.inf], [1.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="all") == "abcde_00000"
    assert best_id(grid, metric="loss", mode="max", scope="all") == "abcde_00001"


def test_best_avg_with_a_nan_value_skips_the_trial(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [0.0, math.nan], [9.0, 9.0]), str(tmp_path))
    assert best_id(grid, metric="loss", mode="min", scope="avg") == "abcde_00001"


def test_best_when_every_value_is_filtered_says_so(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [math.nan], [math.inf]), str(tmp_path))
    with pytest.raises(
        ConfigError,
        match=r"no trial has a finite 'last' value of metric 'loss' .*filter_nan_and_inf=False",
    ):
        grid.get_best_result(metric="loss", mode="min")


# ------------------------------------------------------------------------- best: errors


def test_best_without_metric_explains_how_to_set_it(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [2.0]), str(tmp_path))
    with pytest.raises(ConfigError) as info:
        grid.get_best_result()
    message = str(info.value)
    assert "`metric` and `mode` are not set" in message
    assert "get_best_result(metric=..., mode=...)" in message
    assert "TuneConfig(metric=..., mode=...)" in message


def test_best_without_mode_names_the_mode(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [2.0]), str(tmp_path), default_metric="loss")
    with pytest.raises(ConfigError, match=r"but `mode` is not set"):
        grid.get_best_result()


def test_best_rejects_bad_mode(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [2.0]), str(tmp_path))
    with pytest.raises(ConfigError, match=r"`mode` must be 'min' or 'max', got 'minimize'"):
        grid.get_best_result(metric="loss", mode="minimize")


def test_best_rejects_bad_scope(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [2.0]), str(tmp_path))
    with pytest.raises(ConfigError, match=r"`scope` must be one of last, avg, .*got 'best'"):
        grid.get_best_result(metric="loss", mode="min", scope="best")


def test_best_unknown_metric_lists_reported_metrics(tmp_path: pathlib.Path) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"loss": 1.0, "info": {"acc": 0.5}, "name": "x"}]),
        make_trial(tmp_path, 1, [{"loss": 2.0}]),
    ]
    grid = ResultGrid(trials, str(tmp_path))
    with pytest.raises(ConfigError) as info:
        grid.get_best_result(metric="accuracy", mode="max")
    message = str(info.value)
    assert message.startswith(
        "no trial reported the metric 'accuracy' (metrics reported: info/acc, loss, "
        "training_iteration)"
    )
    assert "config" not in message


def test_best_on_an_empty_grid(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"no best result for metric 'loss': the grid holds no"):
        ResultGrid([], str(tmp_path)).get_best_result(metric="loss", mode="min")


def test_best_of_a_single_trial_needs_no_metric(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0]), str(tmp_path))
    assert grid.get_best_result() is grid[0]


# ---------------------------------------------------------------------------- dataframe


def test_dataframe_has_one_row_per_trial_with_config_trial_id_and_logdir(
    tmp_path: pathlib.Path,
) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"loss": 3.0}, {"loss": 1.0}], config={"lr": 0.1}),
        make_trial(tmp_path, 1, [{"loss": 2.0}], config={"lr": 0.2}),
    ]
    df = ResultGrid(trials, str(tmp_path)).get_dataframe()
    assert len(df) == 2
    assert list(df["loss"]) == [1.0, 2.0]
    assert list(df["config/lr"]) == [0.1, 0.2]
    assert list(df["trial_id"]) == ["abcde_00000", "abcde_00001"]
    assert list(df["logdir"]) == [t.local_path for t in trials]
    assert "config" not in df.columns


def test_dataframe_flattens_nested_results_and_config(tmp_path: pathlib.Path) -> None:
    trial = make_trial(
        tmp_path,
        0,
        [{"val": {"loss": 1.0, "acc": 0.5}}],
        config={"model": {"lr": 0.01, "layers": 2}, "seed": 1},
    )
    df = ResultGrid([trial], str(tmp_path)).get_dataframe()
    for column in ("val/loss", "val/acc", "config/model/lr", "config/model/layers", "config/seed"):
        assert column in df.columns
    assert df["config/model/lr"][0] == 0.01


def test_dataframe_filter_takes_each_trials_best_row(tmp_path: pathlib.Path) -> None:
    trials = [
        make_trial(tmp_path, 0, [{"loss": 3.0}, {"loss": 1.0}, {"loss": 2.0}]),
        make_trial(tmp_path, 1, [{"loss": 0.5}, {"loss": math.nan}, {"loss": 4.0}]),
    ]
    grid = ResultGrid(trials, str(tmp_path))
    best_min = grid.get_dataframe(filter_metric="loss", filter_mode="min")
    assert list(best_min["loss"]) == [1.0, 0.5]
    assert list(best_min["training_iteration"]) == [2, 1]
    best_max = grid.get_dataframe(filter_metric="loss", filter_mode="max")
    assert list(best_max["loss"]) == [3.0, 4.0]
    assert list(best_max["config/lr"]) == [t.config["lr"] for t in trials]


def test_dataframe_filter_keeps_last_row_when_metric_missing(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"x": 1}, {"x": 2}])
    df = ResultGrid([trial], str(tmp_path)).get_dataframe(filter_metric="loss", filter_mode="min")
    assert list(df["x"]) == [2]


def test_dataframe_includes_trials_without_results(tmp_path: pathlib.Path) -> None:
    trials = [make_trial(tmp_path, 0, [{"loss": 1.0}]), make_trial(tmp_path, 1, [])]
    df = ResultGrid(trials, str(tmp_path)).get_dataframe()
    assert list(df["trial_id"]) == ["abcde_00000", "abcde_00001"]
    assert math.isnan(df["loss"][1])


def test_dataframe_of_empty_grid_is_empty(tmp_path: pathlib.Path) -> None:
    assert ResultGrid([], str(tmp_path)).get_dataframe().empty


def test_dataframe_filter_needs_both_metric_and_mode(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0]), str(tmp_path))
    with pytest.raises(ConfigError, match=r"`filter_mode` must be 'min' or 'max', got None"):
        grid.get_dataframe(filter_metric="loss")
    with pytest.raises(ConfigError, match=r"`filter_metric` must be set when `filter_mode` is"):
        grid.get_dataframe(filter_mode="min")
    with pytest.raises(ConfigError, match=r"`filter_mode` must be 'min' or 'max', got 'low'"):
        grid.get_dataframe(filter_metric="loss", filter_mode="low")


# ------------------------------------------------------------------------------ Result


def test_metrics_dataframe_has_every_result_flattened(tmp_path: pathlib.Path) -> None:
    trial = make_trial(
        tmp_path, 0, [{"loss": 3.0, "info": {"a": 1}}, {"loss": 2.0, "info": {"a": 2}}]
    )
    df = ResultGrid([trial], str(tmp_path))[0].metrics_dataframe
    assert isinstance(df, pd.DataFrame)
    assert list(df["loss"]) == [3.0, 2.0]
    assert list(df["info/a"]) == [1, 2]
    assert list(df["training_iteration"]) == [1, 2]
    assert "config/lr" in df.columns


def test_metrics_dataframe_is_empty_without_result_file(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}], write=False)
    df = ResultGrid([trial], str(tmp_path))[0].metrics_dataframe
    assert isinstance(df, pd.DataFrame)
    assert df.empty


def test_metrics_dataframe_is_read_once(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}])
    result = ResultGrid([trial], str(tmp_path))[0]
    assert result.metrics_dataframe is result.metrics_dataframe


def test_result_is_frozen() -> None:
    result = Result(metrics={"loss": 1.0})
    with pytest.raises(AttributeError):
        result.metrics = {}  # type: ignore[misc]


def test_result_repr_hides_config_and_noisy_auto_fields() -> None:
    result = Result(
        metrics={
            "score": 1,
            "config": {"lr": 0.1},
            "training_iteration": 3,
            "time_total_s": 1.5,
            "done": True,
            "trial_id": "abcde_00000",
        },
        path="/tmp/exp/t0",
    )
    assert repr(result) == (
        "Result(metrics={'score': 1, 'done': True, 'trial_id': 'abcde_00000'}, "
        "path='/tmp/exp/t0', error=None)"
    )


def test_result_repr_shows_error_and_checkpoint() -> None:
    result = Result(
        metrics={}, path="/p", error=ValueError("bad"), checkpoint=Checkpoint("/p/checkpoint_1")
    )
    assert repr(result) == (
        "Result(metrics={}, path='/p', error=ValueError('bad'), "
        "checkpoint=Checkpoint(path='/p/checkpoint_1'))"
    )


def test_result_grid_repr_lists_results(tmp_path: pathlib.Path) -> None:
    grid = ResultGrid(losses(tmp_path, [1.0], [2.0]), str(tmp_path))
    text = repr(grid)
    assert text.startswith("ResultGrid<[\n  Result(metrics={'loss': 1.0")
    assert text.count("Result(") == 2
    assert repr(ResultGrid([], str(tmp_path))) == "ResultGrid<[]>"


def test_result_log_dir_is_the_path() -> None:
    assert Result(metrics={}, path="/a/b").log_dir == pathlib.Path("/a/b")


def test_get_best_checkpoint(tmp_path: pathlib.Path) -> None:
    a, b, c = (Checkpoint(str(tmp_path / f"checkpoint_{i}")) for i in range(3))
    result = Result(
        metrics={},
        best_checkpoints=[(a, {"loss": 2.0}), (b, {"loss": 1.0}), (c, {"other": 0.0})],
    )
    assert result.get_best_checkpoint("loss", "min") == b
    assert result.get_best_checkpoint("loss", "max") == a
    with pytest.raises(ConfigError, match=r"`metric` 'acc' is not in the metrics of any checkp"):
        result.get_best_checkpoint("acc", "max")
    with pytest.raises(AtuneError, match=r"kept no checkpoint"):
        Result(metrics={}).get_best_checkpoint("loss", "min")


# ------------------------------------------------------------------------- from_path


def test_from_path_rebuilds_metrics_config_and_checkpoints(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 3.0}, {"loss": 1.0}], config={"lr": 0.3})
    path = pathlib.Path(trial.local_path)
    (path / "params.json").write_text(json.dumps({"lr": 0.3}))
    (path / "checkpoint_000002").mkdir()
    (path / "checkpoint_000001").mkdir()
    result = Result.from_path(path)
    assert result.metrics["loss"] == 1.0
    assert result.metrics["training_iteration"] == 2
    assert result.config == {"lr": 0.3}
    assert result.path == str(path)
    assert result.checkpoint == Checkpoint(str(path / "checkpoint_000002"))
    assert [c.path for c, _ in result.best_checkpoints] == [
        str(path / "checkpoint_000001"),
        str(path / "checkpoint_000002"),
    ]
    assert [m["loss"] for _, m in result.best_checkpoints] == [3.0, 1.0]
    assert result.error is None
    assert list(result.metrics_dataframe["loss"]) == [3.0, 1.0]


def test_from_path_takes_config_from_results_without_params_json(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}], config={"lr": 0.7})
    assert Result.from_path(trial.local_path).config == {"lr": 0.7}


def test_from_path_reads_error_file(tmp_path: pathlib.Path) -> None:
    trial = make_trial(tmp_path, 0, [{"loss": 1.0}])
    traceback = "Traceback (most recent call last):\n  File x\nValueError: bad lr\n"
    (pathlib.Path(trial.local_path) / "error.txt").write_text(traceback)
    error = Result.from_path(trial.local_path).error
    assert isinstance(error, TrialError)
    assert str(error) == "ValueError: bad lr"
    assert error.exc_type == "ValueError"
    assert error.traceback == traceback


def test_from_path_rejects_a_directory_without_trial_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"`path` must be a trial directory holding result.json"):
        Result.from_path(tmp_path)


# ------------------------------------------------------------- damaged trial files
def _damaged_trial(tmp_path, tail: bytes, params: bytes | None = None):
    trial = tmp_path / "trial_0"
    trial.mkdir()
    lines = [
        json.dumps({"loss": 3.0 - i, "training_iteration": i, "config": {"lr": 0.1}})
        for i in (1, 2)
    ]
    (trial / "result.json").write_bytes(("\n".join(lines) + "\n").encode() + tail)
    if params is not None:
        (trial / "params.json").write_bytes(params)
    return trial


def test_a_cut_off_last_line_is_skipped_with_a_warning_naming_the_file(tmp_path, caplog):
    trial = _damaged_trial(tmp_path, b'{"loss": 0.5, "training_it')
    with caplog.at_level("WARNING", logger="atune"):
        result = Result.from_path(trial)
    assert result.metrics["training_iteration"] == 2
    assert str(trial / "result.json") in caplog.text
    assert "skipped 1 line(s)" in caplog.text and "line 3" in caplog.text


def test_a_non_utf8_byte_does_not_break_the_best_result(tmp_path, caplog):
    trial = _damaged_trial(tmp_path, b'{"loss": \xff0.1, "training_iteration": 3}\n')
    with caplog.at_level("WARNING", logger="atune"):
        result = Result.from_path(trial)
    assert result.metrics["loss"] == 1.0  # the damaged line is left out, not fatal
    assert list(result.metrics_dataframe["training_iteration"]) == [1, 2]
    assert "line 3" in caplog.text


def test_an_empty_params_json_falls_back_to_the_config_in_the_results(tmp_path, caplog):
    trial = _damaged_trial(tmp_path, b"", params=b"")
    with caplog.at_level("WARNING", logger="atune"):
        result = Result.from_path(trial)
    assert result.config == {"lr": 0.1}
    assert f"{trial / 'params.json'} is damaged" in caplog.text


def test_a_truncated_searcher_state_is_refused_naming_the_file(tmp_path):
    import pickle

    from atune.errors import AtuneError
    from atune.search import BasicVariantGenerator

    path = tmp_path / "searcher-state.pkl"
    path.write_bytes(pickle.dumps({"state": list(range(100))})[:20])
    with pytest.raises(AtuneError, match=r"searcher-state\.pkl cannot be read back") as info:
        BasicVariantGenerator().restore_from_dir(str(tmp_path))
    assert "damaged or truncated (20 bytes)" in str(info.value)
