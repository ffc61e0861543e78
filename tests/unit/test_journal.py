"""The journal's files: framing, torn and corrupt records, snapshot fallback, replay."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from atune._engine import journal as J
from atune._trial import Trial
from atune.config import CheckpointConfig
from atune.errors import AtuneError


def _trial(i: int, root: Path) -> Trial:
    return Trial(
        trial_id=f"abcde_{i:05d}",
        trainable_name="train",
        config={"x": i, "arr": np.arange(3), "f": np.float32(0.5)},
        experiment_tag=str(i),
        local_path=str(root / f"t{i}"),
    )


def _write(root: Path, seq: int, state: J.JournalState, records: list[list]) -> None:
    d = root / J.JOURNAL_DIR
    d.mkdir(exist_ok=True)
    (d / f"snapshot-{seq:06d}.msgpack").write_bytes(J.frame(J.pack(state.to_snapshot(seq))))
    (d / f"segment-{seq:06d}.log").write_bytes(b"".join(J.frame(J.pack(r)) for r in records))


def _records(root: Path) -> list[list]:
    t0, t1 = _trial(0, root), _trial(1, root)
    return [
        [J._ADD, J._new_record(t0, False), pickle.dumps({"s": 1}), 1],
        [J._ADD, J._new_record(t1, False), pickle.dumps({"s": 2}), 2],
        [J._START, t0.trial_id, t0.config, {"CPU": 1.0}],
        [J._RES, t0.trial_id, 3, {"training_iteration": 3, "v": np.float64(1.5)}],
        [J._CKPT, t0.trial_id, str(root / "t0" / "checkpoint_000003"), 3, 1.0, {"v": 1.5}],
        [J._STATUS, t0.trial_id, Trial.TERMINATED, None],
    ]


def _empty(root: Path) -> J.JournalState:
    return J.JournalState(str(root), CheckpointConfig(), prefix="abcde")


def test_replay_rebuilds_the_state_with_numpy_values(tmp_path: Path) -> None:
    _write(tmp_path, 1, _empty(tmp_path), _records(tmp_path))
    state, warnings = J.load(str(tmp_path))
    assert warnings == []
    assert state.order == ["abcde_00000", "abcde_00001"]
    t0 = state.trials["abcde_00000"]
    assert t0["status"] == Trial.TERMINATED
    assert t0["num_results"] == 3
    assert t0["last_result"]["v"] == 1.5
    assert list(t0["config"]["arr"]) == [0, 1, 2]  # pickled: an ndarray again
    assert [k[1] for k in state.kept("abcde_00000")] == [3]
    assert pickle.loads(state.searcher) == {"s": 2}
    # The trial that ended after the searcher's last state is replayed into it.
    assert state.replay == [["abcde_00000", False]]
    assert state.next_index == 2


@pytest.mark.parametrize("cut", [1, 5, 9])
def test_a_torn_last_record_is_dropped_with_a_warning_naming_the_file(
    tmp_path: Path, cut: int
) -> None:
    _write(tmp_path, 1, _empty(tmp_path), _records(tmp_path))
    seg = tmp_path / J.JOURNAL_DIR / "segment-000001.log"
    data = seg.read_bytes()
    seg.write_bytes(data[:-cut])
    state, warnings = J.load(str(tmp_path))
    assert state.trials["abcde_00000"]["status"] == Trial.RUNNING  # the last record is lost
    assert len(warnings) == 1 and str(seg) in warnings[0] and "cut off" in warnings[0]


def test_a_flipped_byte_fails_the_checksum(tmp_path: Path) -> None:
    _write(tmp_path, 1, _empty(tmp_path), _records(tmp_path))
    seg = tmp_path / J.JOURNAL_DIR / "segment-000001.log"
    data = bytearray(seg.read_bytes())
    data[20] ^= 0xFF  # inside the first record
    seg.write_bytes(bytes(data))
    state, warnings = J.load(str(tmp_path))
    assert state.order == []
    assert "checksum" in warnings[0] and str(seg) in warnings[0]


def test_a_corrupt_newest_snapshot_falls_back_to_the_one_before(tmp_path: Path) -> None:
    records = _records(tmp_path)
    _write(tmp_path, 1, _empty(tmp_path), records[:2])
    later = J.load(str(tmp_path))[0]
    _write(tmp_path, 2, later, records[2:])
    snap2 = tmp_path / J.JOURNAL_DIR / "snapshot-000002.msgpack"
    snap2.write_bytes(snap2.read_bytes()[:40])
    state, warnings = J.load(str(tmp_path))
    # Snapshot 1 + segment 1 (the two trials) + segment 2 (the rest): nothing lost.
    assert state.trials["abcde_00000"]["status"] == Trial.TERMINATED
    assert str(snap2) in warnings[0] and "older snapshot" in warnings[0]


def test_no_readable_snapshot_is_refused_with_the_file_named(tmp_path: Path) -> None:
    _write(tmp_path, 1, _empty(tmp_path), [])
    snap = tmp_path / J.JOURNAL_DIR / "snapshot-000001.msgpack"
    snap.write_bytes(b"\x00\x00\x00\x05garbage")
    with pytest.raises(AtuneError, match=r"snapshot-000001\.msgpack") as info:
        J.load(str(tmp_path))
    assert "ResultGrid.from_path" in str(info.value)


def test_a_directory_without_a_journal(tmp_path: Path) -> None:
    assert not J.has_journal(str(tmp_path))
    with pytest.raises(AtuneError, match="holds no atune experiment"):
        J.load(str(tmp_path))


def test_unpicklable_values_are_recorded_as_their_repr() -> None:
    import threading

    lock = threading.Lock()
    back = J.unpack(J.pack({"lock": lock, "n": np.int64(3)}))
    assert back["n"] == 3 and isinstance(back["n"], int)
    assert "lock" in back["lock"]


def test_scheduler_state_keeps_trials_by_reference(tmp_path: Path) -> None:
    t = _trial(0, tmp_path)
    blob = J.dumps_with_trials({"live": [t], "by": {t.trial_id: t}}, controller=None)
    fresh = _trial(0, tmp_path)
    back = J.loads_with_trials(blob, {t.trial_id: fresh}, controller=None)
    assert back["live"][0] is fresh and back["by"][t.trial_id] is fresh


def test_snapshot_writes_are_atomic(tmp_path: Path) -> None:
    target = tmp_path / "snap"
    J._write_atomic(str(target), b"abc")
    assert target.read_bytes() == b"abc"
    assert not os.path.exists(f"{target}.tmp")


def test_result_from_path_orders_checkpoints_by_the_runs_score(tmp_path: Path) -> None:
    import json

    from atune.result_grid import Result

    config = CheckpointConfig(
        num_to_keep=3, checkpoint_score_attribute="score", checkpoint_score_order="max"
    )
    state = J.JournalState(str(tmp_path), config, prefix="abcde")
    _write(tmp_path, 1, state, [])
    trial_dir = tmp_path / "t0"
    trial_dir.mkdir()
    rows = [{"training_iteration": i, "score": s} for i, s in enumerate([3, 9, 1], start=1)]
    (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for i in (1, 2, 3):
        (trial_dir / f"checkpoint_{i:06d}").mkdir()
    result = Result.from_path(trial_dir)
    assert [m["score"] for _, m in result.best_checkpoints] == [1, 3, 9]  # best last
    assert result.checkpoint.path.endswith("checkpoint_000003")  # still the latest
