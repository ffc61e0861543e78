"""atune.Checkpoint: a reference to a directory."""

from __future__ import annotations

import pickle

import pytest

import atune


def test_from_directory_as_directory_and_to_directory(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.bin").write_bytes(b"\x00\x01")
    ckpt = atune.Checkpoint.from_directory(src)
    assert ckpt.path == str(src)
    with ckpt.as_directory() as d:
        assert (tmp_path / "src" / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
        assert d == str(src)
    copy = ckpt.to_directory(tmp_path / "copy")
    assert (tmp_path / "copy" / "model.bin").read_bytes() == b"\x00\x01"
    assert copy == str(tmp_path / "copy")


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        atune.Checkpoint.from_directory(tmp_path / "nope")


def test_checkpoints_compare_and_pickle_by_path(tmp_path):
    a = atune.Checkpoint(tmp_path)
    assert a == atune.Checkpoint(str(tmp_path))
    assert pickle.loads(pickle.dumps(a)) == a
    assert len({a, atune.Checkpoint(tmp_path)}) == 1
