"""LibrarySearcher: the scaffolding the library-backed searchers share (no library needed)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import numpy as np
import pytest

from atune.errors import ConfigError, ConfigTypeError
from atune.search._library import LibrarySearcher, import_library, own_global_rng
from atune.search._wrappers import SearchGenerator, snapshot_of


class Toy(LibrarySearcher):
    """Suggests 1, 2, 3, ...; each suggestion is 'model work' of ``delay`` seconds."""

    _STATE_FIELDS = ("n", "delay")

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(metric="loss", mode="min")
        self._n = 0
        self._delay = delay
        self.restored = False

    def _work(self) -> int:
        time.sleep(self._delay)
        self._n += 1
        return self._n

    async def suggest(self, trial_id: str) -> dict[str, Any]:
        return {"x": await self._run_model(self._work)}

    def _after_restore(self) -> None:
        self.restored = True


def test_import_library_names_the_extra():
    with pytest.raises(ImportError, match=r'Toy needs the toy package: pip install "atune\[toy\]"'):
        import_library("atune_no_such_module", "Toy", "toy", "the toy package")


def test_argument_checks_name_the_searcher_and_argument():
    toy = Toy()
    assert toy._check_points(None) == []
    assert toy._check_points(({"x": 1},)) == [{"x": 1}]
    with pytest.raises(ConfigTypeError, match="Toy: `points_to_evaluate` must be a list of dicts"):
        toy._check_points([1])
    with pytest.raises(ConfigError, match="Toy: `seed` must be None or an int >= 0"):
        toy._check_seed(-1)
    with pytest.raises(ConfigTypeError, match="`n` must be an int"):
        toy._check_int(True, "n")


def test_readiness_and_space_given_twice_messages():
    toy = Toy()
    with pytest.raises(ConfigError, match="Toy has no search space: pass `space`"):
        toy._require_ready(False)
    toy._metric = None
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        toy._require_ready(True)
    with pytest.raises(ConfigError, match=r"defines search parameters \['a/b'\]"):
        toy._reject_second_space(["a/b"])
    toy._reject_second_space([])  # only constants: fine


def test_loss_negates_for_max_and_skips_missing_or_non_finite(caplog):
    toy = Toy()
    assert toy._loss("t", {"loss": 2}) == 2.0
    toy._mode = "max"
    assert toy._loss("t", {"loss": 2}) == -2.0
    assert toy._loss("t", {"loss": float("nan")}) is None
    assert toy._loss("t", {"loss": "high"}) is None
    assert toy._loss("t", {}) is None
    assert "ended without reporting 'loss'" in caplog.text


async def test_state_round_trip_and_version_check():
    toy = Toy()
    await toy.suggest("a")
    state = toy.get_state()
    assert state == {
        "version": 1,
        "metric": "loss",
        "mode": "min",
        "tuner_space": None,
        "n": 1,
        "delay": 0.0,
    }
    other = Toy()
    other.set_state(state)
    assert other.restored and (await other.suggest("b")) == {"x": 2}
    with pytest.raises(ConfigError, match="has version 0, this atune reads version 1"):
        other.set_state({**state, "version": 0})
    with pytest.raises(ConfigError, match=r"missing the fields \['delay'\]"):
        other.set_state({k: v for k, v in state.items() if k != "delay"})


async def test_snapshot_waits_for_model_work_without_blocking_the_loop():
    toy = Toy(delay=0.3)
    wrapped = SearchGenerator(toy)
    wrapped.set_search_properties("loss", "min", {}, num_samples=5)
    ticks = 0
    snapshot: dict[str, Any] = {}

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async def take() -> None:
        await anyio.sleep(0.05)  # the suggestion's model work is running by now
        snapshot.update(await snapshot_of(wrapped))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        tg.start_soon(take)
        await wrapped.suggest("a")
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert snapshot["searcher"]["n"] == 1  # taken after the model call, not in the middle
    assert ticks >= 15  # the loop ran while the snapshot waited


def test_own_global_rng_keeps_the_users_state_and_its_own():
    class Owner:
        _rng_state = np.random.RandomState(7).get_state()

    owner = Owner()
    np.random.seed(123)
    expected_user = np.random.RandomState(123).random_sample()
    with own_global_rng(owner):
        first = np.random.random_sample()
    with own_global_rng(owner):
        second = np.random.random_sample()
    assert np.random.random_sample() == expected_user
    reference = np.random.RandomState(7)
    assert [first, second] == [reference.random_sample(), reference.random_sample()]
