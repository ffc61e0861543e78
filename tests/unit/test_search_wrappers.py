"""SearchGenerator, ConcurrencyLimiter, Repeater and AskTell on synthetic results."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

import atune as tune
from atune.errors import AtuneError, ConfigError
from atune.search import (
    FINISHED,
    AskTell,
    BasicVariantGenerator,
    ConcurrencyLimiter,
    Repeater,
    Searcher,
    SearchGenerator,
    SyncSearcher,
)
from atune.search._wrappers import call_handler


class Counting(Searcher):
    """Suggests {"i": 0}, {"i": 1}, ... with plain (sync) handlers; records completions."""

    def __init__(self):
        super().__init__(metric="m", mode="max")
        self.i = 0
        self.completed = []

    def suggest(self, trial_id):  # a sync handler: allowed
        self.i += 1
        return {"i": self.i - 1}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result, error))


def prepared(searcher, num_samples=-1):
    assert searcher.set_search_properties("m", "max", {}, num_samples=num_samples)
    return searcher


async def test_search_generator_enforces_num_samples():
    gen = prepared(SearchGenerator(Counting()), num_samples=2)
    assert [await gen.suggest("a"), await gen.suggest("b")] == [{"i": 0}, {"i": 1}]
    assert await gen.suggest("c") == FINISHED
    assert gen.is_finished()


async def test_limiter_caps_unfinished_trials():
    inner = Counting()
    lim = prepared(SearchGenerator(ConcurrencyLimiter(inner, 2)))
    assert await lim.suggest("a") == {"i": 0}
    assert await lim.suggest("b") == {"i": 1}
    assert await lim.suggest("c") is None
    await lim.on_trial_complete("a", {"m": 1})
    assert await lim.suggest("c") == {"i": 2}
    assert inner.completed == [("a", {"m": 1}, False)]


async def test_limiter_in_batch_mode_waits_for_the_whole_batch():
    inner = Counting()
    lim = prepared(ConcurrencyLimiter(inner, 2, batch=True))
    await lim.suggest("a")
    await lim.suggest("b")
    await lim.on_trial_complete("a", {"m": 1})
    assert inner.completed == []  # held until b is done
    assert await lim.suggest("c") is None
    await lim.on_trial_complete("b", {"m": 2})
    assert [c[0] for c in inner.completed] == ["a", "b"]
    assert await lim.suggest("c") == {"i": 2}


def test_wrapping_a_limiter_twice_is_a_clear_error():
    with pytest.raises(ConfigError, match="already a ConcurrencyLimiter"):
        ConcurrencyLimiter(ConcurrencyLimiter(Counting(), 2), 3)
    with pytest.raises(ConfigError, match="`max_concurrent` must be >= 1"):
        ConcurrencyLimiter(Counting(), 0)


def test_max_concurrent_trials_on_a_limited_searcher_is_a_clear_error():
    with pytest.raises(ConfigError, match="ConcurrencyLimiter"):
        tune.Tuner(
            lambda config: None,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(Counting(), 2), max_concurrent_trials=2
            ),
        )


async def test_repeater_repeats_and_reports_the_mean():
    inner = Counting()
    rep = prepared(Repeater(inner, repeat=3))
    configs = [await rep.suggest(f"t{k}") for k in range(4)]
    assert configs[:3] == [{"i": 0, "__trial_index__": k} for k in range(3)]
    assert configs[3] == {"i": 1, "__trial_index__": 0}
    for tid, value in (("t0", 1.0), ("t1", 2.0)):
        await rep.on_trial_complete(tid, {"m": value})
    assert inner.completed == []
    await rep.on_trial_complete("t2", None, error=True)
    ((tid, result, error),) = inner.completed
    assert (tid, result["m"], error) == ("t0", 1.5, False)


async def test_repeater_reports_an_error_when_every_repeat_failed():
    inner = Counting()
    rep = prepared(Repeater(inner, repeat=2, set_index=False))
    assert await rep.suggest("a") == {"i": 0}
    await rep.suggest("b")
    await rep.on_trial_complete("a", None, error=True)
    await rep.on_trial_complete("b", None, error=True)
    assert inner.completed == [("a", None, True)]


def test_ask_tell_from_sync_code():
    study = AskTell(
        BasicVariantGenerator(random_state=0),
        {"x": tune.uniform(-5, 5)},
        metric="loss",
        mode="min",
        num_samples=5,
    )
    told = 0
    while (trial := study.ask_sync()) is not None:
        study.tell_sync(trial, {"loss": (trial.config["x"] - 1) ** 2})
        told += 1
    assert told == 5 and study.finished
    best = study.best
    assert best is not None
    assert best.result["loss"] == min(t.result["loss"] for t in study.trials)


async def test_ask_tell_errors_are_clear():
    study = AskTell(ConcurrencyLimiter(Counting(), 1), metric="m", mode="max", num_samples=-1)
    trial = await study.ask()
    with pytest.raises(AtuneError, match="call tell\\(\\) first"):
        await study.ask()
    with pytest.raises(ConfigError, match="lacks the metric 'm'"):
        await study.tell(trial, {"other": 1})
    await study.tell(trial, {"m": 3})
    with pytest.raises(AtuneError, match="told already"):
        await study.tell(trial, {"m": 3})


# ----------------------------------------------------------------------- SyncSearcher


class SlowSync(SyncSearcher):
    """Each suggest 'fits a model' for 0.2 s; records overlap and the calling threads."""

    def __init__(self, offload: bool = True) -> None:
        super().__init__(metric="loss", mode="min")
        self.offload = offload  # type: ignore[misc]
        self.active = 0
        self.max_active = 0
        self.threads: set[int] = set()
        self.results: list[float] = []
        self.n = 0

    def suggest(self, trial_id):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.threads.add(threading.get_ident())
        time.sleep(0.2)
        self.active -= 1
        self.n += 1
        return {"x": self.n}

    def on_trial_result(self, trial_id, result):
        self.results.append(result["loss"])


async def test_sync_searcher_fits_in_a_thread_and_the_loop_stays_free():
    searcher = SlowSync()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        configs = [await call_handler(searcher, "suggest", f"t{i}") for i in range(2)]
        tg.cancel_scope.cancel()
    assert configs == [{"x": 1}, {"x": 2}]
    assert threading.get_ident() not in searcher.threads
    assert ticks >= 20  # 0.4 s of fitting, and the loop kept ticking


async def test_sync_searcher_handlers_never_overlap():
    searcher = SlowSync()
    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(call_handler, searcher, "suggest", f"t{i}")
    assert searcher.n == 4 and searcher.max_active == 1


async def test_sync_searcher_results_run_on_the_loop_and_offload_can_be_off():
    searcher = SlowSync(offload=False)
    await call_handler(searcher, "suggest", "a")
    await call_handler(searcher, "on_trial_result", "a", {"loss": 1.5})
    assert searcher.threads == {threading.get_ident()}
    assert searcher.results == [1.5]


async def test_sync_searcher_state_pickles_after_use(tmp_path):
    searcher = SlowSync()
    await call_handler(searcher, "suggest", "a")
    path = str(tmp_path / "s.pkl")
    searcher.save(path)
    restored = SlowSync()
    restored.restore(path)
    assert restored.n == 1
    assert await call_handler(restored, "suggest", "b") == {"x": 2}


async def test_sync_searcher_behind_the_wrappers_and_ask_tell():
    limited = SearchGenerator(ConcurrencyLimiter(SlowSync(), 1))
    limited.set_search_properties("loss", "min", {}, num_samples=10)
    assert await limited.suggest("a") == {"x": 1}
    assert await limited.suggest("b") is None  # the limit, not the searcher
    await limited.on_trial_complete("a", {"loss": 0.0})
    assert await limited.suggest("b") == {"x": 2}
    study = AskTell(SlowSync(), param_space={}, metric="loss", mode="min", num_samples=1)
    trial = await study.ask()
    assert trial is not None and trial.config == {"x": 1}


async def test_limiter_counts_a_paused_trial_until_it_completes():
    # As Ray Tune's ConcurrencyLimiter: pausing (HyperBandForBOHB at a milestone) does
    # not free the slot, so running + paused trials never exceed max_concurrent.
    limited = ConcurrencyLimiter(Counting(), 1)
    assert isinstance(await limited.suggest("a"), dict)
    await limited.on_pause("a")
    assert await limited.suggest("b") is None
    await limited.on_unpause("a")
    assert await limited.suggest("b") is None
    await limited.on_pause("a")
    await limited.on_trial_complete("a", {"loss": 0.5})  # stopped while paused
    assert isinstance(await limited.suggest("b"), dict)


async def test_limiter_in_batch_mode_keeps_paused_trials_in_the_batch():
    limited = ConcurrencyLimiter(Counting(), 1, batch=True)
    assert isinstance(await limited.suggest("a"), dict)
    await limited.on_pause("a")
    assert await limited.suggest("b") is None
