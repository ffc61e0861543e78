"""The 0.7 SuggestionAlgorithm base and the atune.suggest names."""

from __future__ import annotations

import threading

import pytest

import atune as tune
from atune.errors import ConfigError
from atune.search import SearchGenerator, SuggestionAlgorithm
from atune.search._wrappers import call_handler


class Grid07(SuggestionAlgorithm):
    """A 0.7-style searcher: overrides _suggest and on_trial_complete (without super())."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.n = 0
        self.told = []
        self.threads = set()

    def _suggest(self, trial_id):
        self.threads.add(threading.get_ident())
        self.n += 1
        return {"v": self.n}

    def on_trial_complete(self, trial_id, result=None, error=False, early_terminated=False):
        self.told.append((trial_id, result, error))


async def test_max_concurrent_holds_suggestions_until_a_trial_completes():
    searcher = Grid07(max_concurrent=2, metric="score", mode="max")
    assert await call_handler(searcher, "suggest", "a") == {"v": 1}
    assert await call_handler(searcher, "suggest", "b") == {"v": 2}
    assert await call_handler(searcher, "suggest", "c") is None
    assert searcher.n == 2  # _suggest was not even asked
    await call_handler(searcher, "on_trial_complete", "a", {"score": 1.0}, error=False)
    assert searcher.told == [("a", {"score": 1.0}, False)]  # the override still runs
    assert await call_handler(searcher, "suggest", "c") == {"v": 3}
    assert threading.get_ident() not in searcher.threads  # _suggest ran in a worker thread


def test_reward_attr_and_arguments():
    assert Grid07(reward_attr="acc").metric == "acc"
    assert Grid07(reward_attr="acc").mode == "max"
    with pytest.raises(ConfigError, match="`max_concurrent` must be None or an int >= 1"):
        Grid07(max_concurrent=0)
    with pytest.raises(ConfigError, match="not both"):
        Grid07(metric="loss", reward_attr="acc")


def test_unoverridden_suggest_is_a_clear_error():
    with pytest.raises(NotImplementedError):
        SuggestionAlgorithm().suggest("a")


async def test_without_a_limit_and_behind_the_tuners_wrapper():
    wrapped = SearchGenerator(Grid07(metric="score", mode="max"))
    wrapped.set_search_properties(None, None, {}, num_samples=3)
    configs = [await wrapped.suggest(f"t{i}") for i in range(4)]
    assert configs[:3] == [{"v": 1}, {"v": 2}, {"v": 3}]
    assert configs[3] == "FINISHED"


def test_the_07_package_names():
    from atune import suggest

    assert suggest.SearchAlgorithm is tune.search.Searcher
    assert suggest.SuggestionAlgorithm is SuggestionAlgorithm
    assert suggest.BasicVariantGenerator is tune.search.BasicVariantGenerator
    pytest.importorskip("hyperopt")
    from atune.search.hyperopt import HyperOptSearch

    assert suggest.HyperOptSearch is HyperOptSearch
    with pytest.raises(AttributeError, match="no attribute 'NoSuchSearch'"):
        suggest.NoSuchSearch  # noqa: B018
