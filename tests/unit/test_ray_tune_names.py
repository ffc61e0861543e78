"""Ray Tune's public names: those atune provides resolve, the others are documented.

The table of names atune does not provide is read from
docs/differences_from_ray_tune.md, so the page and the package cannot drift apart.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

import atune

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "differences_from_ray_tune.md"
SECTION = "## Names of `ray.tune`"


def _documented_missing() -> set[str]:
    """The names in the first column of the table under SECTION."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC.name} lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_every_ray_tune_name_is_provided_or_documented_as_missing():
    import ray.tune

    ray_names = set(ray.tune.__all__)
    provided = {name for name in ray_names if hasattr(atune, name)}
    missing = _documented_missing()
    assert not provided & missing, f"documented as missing but provided: {provided & missing}"
    assert not missing - ray_names, f"documented but not in ray.tune: {missing - ray_names}"
    assert provided | missing == ray_names, f"neither: {ray_names - provided - missing}"
    assert provided <= set(atune.__all__)


def test_names_under_another_path_are_the_same_objects():
    from atune.schedulers import create_scheduler
    from atune.search import create_searcher
    from atune.session import TuneContext

    assert atune.create_searcher is create_searcher
    assert atune.create_scheduler is create_scheduler
    assert atune.TuneContext is TuneContext


#: (Ray Tune module, atune module, names both have).
SUBMODULES = [
    ("ray.tune.logger", "atune.logger", None),  # None: every name of Ray's __all__
    ("ray.tune.callback", "atune.callback", ["Callback"]),
    ("ray.tune.experiment", "atune.experiment", ["Trial"]),
    ("ray.tune.experiment.trial", "atune.experiment.trial", ["Trial"]),
    ("ray.tune.progress_reporter", "atune.progress_reporter", ["CLIReporter", "ProgressReporter"]),
    ("ray.tune.schedulers", "atune.schedulers", None),
    ("ray.tune.schedulers.trial_scheduler", "atune.schedulers.trial_scheduler",
     ["TrialScheduler", "FIFOScheduler"]),
    ("ray.tune.schedulers.pbt", "atune.schedulers.pbt",
     ["PopulationBasedTraining", "PopulationBasedTrainingReplay"]),
    ("ray.tune.schedulers.async_hyperband", "atune.schedulers.async_hyperband",
     ["ASHAScheduler", "AsyncHyperBandScheduler"]),
    ("ray.tune.schedulers.hb_bohb", "atune.schedulers.hb_bohb", ["HyperBandForBOHB"]),
    ("ray.tune.stopper", "atune.stopper", None),
    ("ray.tune.search.searcher", "atune.search.searcher", ["Searcher", "ConcurrencyLimiter"]),
    ("ray.tune.search.concurrency_limiter", "atune.search.concurrency_limiter",
     ["ConcurrencyLimiter"]),
    ("ray.tune.search.repeater", "atune.search.repeater", ["Repeater", "TRIAL_INDEX"]),
    ("ray.tune.search.basic_variant", "atune.search.basic_variant", ["BasicVariantGenerator"]),
    ("ray.tune.search.sample", "atune.search.sample",
     ["Domain", "Float", "Integer", "Categorical", "Function", "uniform", "choice"]),
    ("ray.tune.trainable", "atune.trainable", ["Trainable", "with_parameters"]),
    ("ray.tune.trainable.util", "atune.trainable.util", ["with_parameters", "with_resources"]),
    ("ray.tune.result", "atune.result",
     ["DONE", "TRAINING_ITERATION", "TIME_TOTAL_S", "SHOULD_CHECKPOINT", "MEAN_ACCURACY",
      "MEAN_LOSS", "EPISODE_REWARD_MEAN", "TIMESTEPS_TOTAL", "EXPR_RESULT_FILE",
      "EXPR_PROGRESS_FILE", "EXPR_PARAM_FILE", "EXPR_ERROR_FILE"]),
]  # fmt: skip


@pytest.mark.parametrize(("ray_path", "atune_path", "names"), SUBMODULES)
def test_ray_tune_submodule_paths_resolve(ray_path, atune_path, names):
    ray_module = importlib.import_module(ray_path)
    module = importlib.import_module(atune_path)
    if names is None:
        names = ray_module.__all__
    for name in names:
        assert hasattr(ray_module, name), f"{ray_path}.{name} is not in Ray Tune"
        assert hasattr(module, name), f"{atune_path} lacks {name}"
        value = getattr(ray_module, name)
        if isinstance(value, str):  # constants: same value
            assert getattr(module, name) == value, name


def test_logger_names_are_the_callbacks_themselves():
    from atune import callbacks
    from atune.logger import (
        CSVLoggerCallback,
        JsonLoggerCallback,
        LegacyLoggerCallback,
        Logger,
        LoggerCallback,
        TBXLoggerCallback,
    )

    assert LoggerCallback is callbacks.LoggerCallback
    assert JsonLoggerCallback is callbacks.JsonLoggerCallback
    assert CSVLoggerCallback is callbacks.CSVLoggerCallback
    assert TBXLoggerCallback is callbacks.TBXLoggerCallback
    assert Logger is callbacks.Logger and LegacyLoggerCallback is callbacks.LegacyLoggerCallback


def test_pretty_print_matches_ray_tune():
    from ray.tune.logger import pretty_print as ray_pretty_print

    from atune.logger import pretty_print

    result = {
        "loss": 0.5,
        "done": False,
        "info": {"lr": 0.1, "name": "a b", "none": None},
        "config": {"lr": 0.1},
        "hist_stats": {"x": [1, 2]},
        "skipped": None,
        "word": "yes",
        "date": "2026-01-01_10-00-00",
        "nan": float("nan"),
    }
    assert pretty_print(result) == ray_pretty_print(result)
    assert pretty_print(result, exclude={"loss"}) == ray_pretty_print(result, exclude={"loss"})
    assert "loss" not in pretty_print(result, exclude={"loss"})
