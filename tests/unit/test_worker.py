"""The trial worker, driven directly (no Ray): buffering, backpressure, lockstep, stop."""

from __future__ import annotations

import os
import threading

import anyio
import pytest

import atune
from atune._executor._base import WorkerSpec
from atune._executor._worker import TrialWorker
from atune.errors import TrialError
from atune.trainable.util import inspect_trainable


def make_spec(trainable, tmp_path, **kwargs) -> WorkerSpec:
    kwargs.setdefault("config", {})
    return WorkerSpec(
        trial_id="abcde_00000",
        trial_name="t_abcde_00000",
        experiment_id="exp",
        experiment_name="exp",
        trainable=inspect_trainable(trainable),
        trial_dir=str(tmp_path / "trial"),
        chdir=False,
        **kwargs,
    )


async def drain(worker: TrialWorker, *, lockstep: bool = False, max_results: int = 1000):
    """Collect every result until the trainable ends; returns (results, final batch)."""
    out, acked = [], 0
    while True:
        batch = await worker.next_results(max_results, acked, lockstep)
        out += [r for r, _ in batch.results]
        acked += len(batch.results)
        if batch.finished:
            return out, batch


async def test_results_come_in_order_with_auto_fields(tmp_path):
    def train(config):
        for i in range(50):
            atune.report({"i": i})

    worker = TrialWorker()
    info = await worker.start(make_spec(train, tmp_path), {})
    results, final = await drain(worker)
    assert info["pid"] == os.getpid()
    assert [r["i"] for r in results] == list(range(50))
    assert [r["training_iteration"] for r in results] == list(range(1, 51))
    assert all(r["trial_id"] == "abcde_00000" and r["done"] is False for r in results)
    assert final.error is None


async def test_report_blocks_when_the_buffer_is_full(tmp_path):
    reported = []

    def train(config):
        for i in range(10):
            atune.report({"i": i})
            reported.append(i)

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, buffer_size=3), {})
    with anyio.fail_after(10):
        while len(reported) < 3:
            await anyio.sleep(0.01)
    await anyio.sleep(0.1)
    assert len(reported) == 3  # the 4th report waits for room
    results, _ = await drain(worker, max_results=2)
    assert [r["i"] for r in results] == list(range(10))


async def test_lockstep_waits_for_each_acknowledgement(tmp_path):
    progress = []

    def train(config):
        for i in range(5):
            atune.report({"i": i})
            progress.append(i)

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, lockstep=True), {})
    first = await worker.next_results(100, 0, True)
    assert [r["i"] for r, _ in first.results] == [0]
    await anyio.sleep(0.1)
    assert progress == []  # still waiting for the decision on result 0
    rest, _ = await drain_from(worker, acked=1)
    assert [r["i"] for r in rest] == [1, 2, 3, 4]


async def drain_from(worker, acked):
    out = []
    while True:
        batch = await worker.next_results(100, acked, True)
        out += [r for r, _ in batch.results]
        acked += len(batch.results)
        if batch.finished:
            return out, batch


async def test_stop_ends_a_trainable_blocked_in_report(tmp_path):
    def train(config):
        while True:
            atune.report({"x": 1})

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, buffer_size=2), {})
    await worker.next_results(1, 0, False)
    assert await worker.stop(grace_s=5) is True


async def test_users_exception_travels_with_type_and_message(tmp_path):
    def train(config):
        atune.report({"a": 1})
        raise KeyError("missing thing")

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    results, final = await drain(worker)
    assert [r["a"] for r in results] == [1]
    assert isinstance(final.error, KeyError)
    assert "missing thing" in str(final.error)
    assert "KeyError" in final.error_traceback


class Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")
        self.lock = threading.Lock()


async def test_unpicklable_exception_becomes_trial_error(tmp_path):
    def train(config):
        raise Unpicklable(1, 2)

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    _, final = await drain(worker)
    assert isinstance(final.error, TrialError)
    assert final.error.exc_type == "Unpicklable"
    assert "1/2" in str(final.error)


async def test_returned_dict_is_the_final_result(tmp_path):
    def train(config):
        atune.report({"a": 1})
        return {"a": 2}

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    results, _ = await drain(worker)
    assert [(r["a"], r["done"]) for r in results] == [(1, False), (2, True)]


async def test_returning_something_else_is_an_error(tmp_path):
    worker = TrialWorker()
    await worker.start(make_spec(lambda config: 42, tmp_path), {})
    _, final = await drain(worker)
    assert isinstance(final.error, TypeError)
    assert "dict of final metrics or None" in str(final.error)


async def test_async_trainable_waits_in_await_report(tmp_path):
    async def train(config):
        for i in range(6):
            await atune.report({"i": i})

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, buffer_size=2), {})
    results, final = await drain(worker, max_results=1)
    assert [r["i"] for r in results] == list(range(6))
    assert final.error is None


async def test_reported_checkpoint_is_copied_into_the_trial_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.txt").write_text("weights")

    def train(config):
        atune.report({"a": 1}, checkpoint=atune.Checkpoint.from_directory(str(src)))

    worker = TrialWorker()
    spec = make_spec(train, tmp_path)
    await worker.start(spec, {})
    batch = await worker.next_results(10, 0, False)
    path = batch.results[0][1]
    assert path == os.path.join(spec.trial_dir, "checkpoint_000001")
    with open(os.path.join(path, "w.txt")) as f:
        assert f.read() == "weights"


async def test_restore_continues_iteration_count(tmp_path):
    def train(config):
        ckpt = atune.get_checkpoint()
        atune.report({"restored_from": ckpt.path if ckpt else None})

    worker = TrialWorker()
    spec = make_spec(train, tmp_path, restore_path="/somewhere", start_iteration=7)
    await worker.start(spec, {})
    results, _ = await drain(worker)
    assert results[0]["training_iteration"] == 8
    assert results[0]["iterations_since_restore"] == 1
    assert results[0]["restored_from"] == "/somewhere"


async def test_with_parameters_values_reach_the_function(tmp_path):
    def train(config, data=None):
        atune.report({"n": len(data)})

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {"data": [1, 2, 3]})
    results, _ = await drain(worker)
    assert results[0]["n"] == 3


def test_report_outside_a_trial_explains_itself():
    with pytest.raises(atune.AtuneError, match="inside a trainable"):
        atune.report({"x": 1})


class Resettable(atune.Trainable):
    def setup(self, config):
        self.cleaned = False

    def step(self):
        return {"x": self.config["x"], "obj": id(self), "done": True}

    def reset_config(self, new_config):
        return new_config["x"] != "refuse"

    def cleanup(self):
        self.cleaned = True


async def test_kept_class_trainable_is_reset_or_replaced(tmp_path):
    worker = TrialWorker()
    await worker.start(make_spec(Resettable, tmp_path, config={"x": 1}, keep_for_reuse=True), {})
    (first,), _ = await drain(worker)
    await worker.reset(make_spec(Resettable, tmp_path, config={"x": 2}, keep_for_reuse=True), {})
    (second,), _ = await drain(worker)
    assert second["obj"] == first["obj"] and second["x"] == 2
    kept = worker._kept
    await worker.reset(make_spec(Resettable, tmp_path, config={"x": "refuse"}), {})
    (third,), _ = await drain(worker)
    assert third["obj"] != first["obj"]  # reset_config said no: a new instance
    assert kept.cleaned


async def test_final_stop_cleans_up_a_kept_trainable(tmp_path):
    worker = TrialWorker()
    await worker.start(make_spec(Resettable, tmp_path, config={"x": 1}, keep_for_reuse=True), {})
    await drain(worker)
    kept = worker._kept
    await worker.stop(final=False)
    assert not kept.cleaned
    await worker.stop(final=True)
    assert kept.cleaned


async def test_async_report_waits_for_room_before_buffering(tmp_path):
    reported = []

    async def train(config):
        for i in range(10):
            await atune.report({"i": i})
            reported.append(i)

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, buffer_size=3), {})
    with anyio.fail_after(10):
        while len(reported) < 3:
            await anyio.sleep(0.01)
    await anyio.sleep(0.1)
    # As in a thread: three results buffered, the 4th report waits, nothing beyond.
    assert len(reported) == 3
    assert len(worker._results._items) == 3
    results, final = await drain(worker, max_results=2)
    assert [r["i"] for r in results] == list(range(10))
    assert final.error is None


async def test_an_unawaited_async_report_that_must_wait_fails_the_next_one(tmp_path):
    async def train(config):
        for i in range(5):
            atune.report({"i": i})  # not awaited

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, buffer_size=2), {})
    results, final = await drain(worker)
    # The 3rd report finds the buffer full: it would have waited, but was not awaited.
    assert [r["i"] for r in results] == [0, 1]
    assert isinstance(final.error, RuntimeError)
    assert "await atune.report(...)" in str(final.error)


async def test_unawaited_async_reports_are_fine_while_nothing_has_to_wait(tmp_path):
    async def train(config):
        for i in range(5):
            atune.report({"i": i})

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    results, final = await drain(worker)
    assert [r["i"] for r in results] == list(range(5))
    assert final.error is None


async def test_async_checkpoint_is_copied_off_the_event_loop(tmp_path, monkeypatch):
    from atune._executor import _worker

    src = tmp_path / "src"
    src.mkdir()
    (src / "w.txt").write_text("weights")
    copied_on = []
    real_copytree = _worker.shutil.copytree

    def copytree(*args, **kwargs):
        copied_on.append(threading.get_ident())
        return real_copytree(*args, **kwargs)

    monkeypatch.setattr(_worker.shutil, "copytree", copytree)

    async def train(config):
        await atune.report({"a": 1}, checkpoint=atune.Checkpoint.from_directory(str(src)))

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    batch = await worker.next_results(10, 0, False)
    path = batch.results[0][1]
    with open(os.path.join(path, "w.txt")) as f:
        assert f.read() == "weights"
    assert copied_on and threading.get_ident() not in copied_on


async def test_stop_joins_the_trainables_thread(tmp_path):
    def train(config):
        while True:
            atune.report({"x": 1})

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path, buffer_size=2), {})
    thread = worker._thread
    await worker.next_results(1, 0, False)
    assert await worker.stop(grace_s=5) is True
    assert not thread.is_alive()
    assert not worker.alive


async def test_stop_gives_up_on_a_thread_that_never_reports_again(tmp_path, monkeypatch):
    from atune._executor import _worker

    release = threading.Event()

    def train(config):
        atune.report({"x": 1})
        release.wait()

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    await worker.next_results(1, 0, False)
    assert await worker.stop(grace_s=0.2) is False  # a thread cannot be killed
    assert worker.alive
    monkeypatch.setattr(_worker, "STOP_GRACE_S", 0.2)
    with pytest.raises(RuntimeError, match="previous trial is still running"):
        await worker.reset(make_spec(train, tmp_path), {})
    release.set()
    assert await worker.stop(grace_s=5) is True
    assert not worker.alive


async def test_stopping_an_async_trainable_before_it_ran_ends_it_at_once(tmp_path):
    async def train(config):
        await atune.report({"x": 1})

    worker = TrialWorker()
    await worker.start(make_spec(train, tmp_path), {})
    with anyio.fail_after(1):  # well within the grace: the task was cancelled, not awaited
        assert await worker.stop(grace_s=5) is True
    assert worker._results.closed


async def test_concurrent_workers_in_one_process_each_have_their_own_session(tmp_path):
    def sync_train(config):
        for _ in range(200):
            atune.report({"seen": atune.get_context().get_trial_id()})

    async def async_train(config):
        for _ in range(200):
            await anyio.sleep(0)
            await atune.report({"seen": atune.get_context().get_trial_id()})

    workers = {}
    for n, train in enumerate([sync_train, async_train, sync_train, async_train]):
        spec = make_spec(train, tmp_path / str(n))
        spec.trial_id = f"trial{n}"
        workers[spec.trial_id] = TrialWorker()
        await workers[spec.trial_id].start(spec, {})
    seen = {}

    async def collect(trial_id):
        results, final = await drain(workers[trial_id], max_results=7)
        assert final.error is None
        seen[trial_id] = {r["seen"] for r in results}

    async with anyio.create_task_group() as tg:
        for trial_id in workers:
            tg.start_soon(collect, trial_id)
    assert seen == {tid: {tid} for tid in workers}
    with pytest.raises(atune.AtuneError, match="inside a trainable"):
        atune.report({"x": 1})  # the driver's own context has no session
