"""The on-disk format of checkpoints: directory names and class-trainable saves.

A class trainable's ``save_checkpoint(dir)`` writes files into ``dir`` or returns a
dict, which is pickled into ``dir``; a small JSON file records the iteration. Both the
worker and :meth:`atune.Trainable.save` use this module, which imports neither of them.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

__all__ = ["checkpoint_dir_name", "load_class_checkpoint", "save_class_checkpoint"]

#: Where the dict returned by ``save_checkpoint`` is pickled.
DICT_CHECKPOINT_FILE = "_dict_checkpoint.pkl"
#: Metadata of a class-trainable checkpoint (its iteration).
CHECKPOINT_META_FILE = ".atune_checkpoint.json"


def checkpoint_dir_name(iteration: int) -> str:
    """``checkpoint_000012``: the directory name of the checkpoint at an iteration."""
    return f"checkpoint_{iteration:06d}"


def save_class_checkpoint(trainable: Any, target: str, *, iteration: int) -> None:
    """Save a class trainable into directory ``target``."""
    os.makedirs(target, exist_ok=True)
    state = trainable.save_checkpoint(target)
    if isinstance(state, dict):
        with open(os.path.join(target, DICT_CHECKPOINT_FILE), "wb") as f:
            pickle.dump(state, f)
    with open(os.path.join(target, CHECKPOINT_META_FILE), "w") as f:
        json.dump({"iteration": iteration}, f)


def load_class_checkpoint(trainable: Any, path: str) -> int:
    """Restore a class trainable from ``path``; returns the checkpoint's iteration."""
    dict_file = os.path.join(path, DICT_CHECKPOINT_FILE)
    if os.path.exists(dict_file):
        with open(dict_file, "rb") as f:
            trainable.load_checkpoint(pickle.load(f))
    else:
        trainable.load_checkpoint(path)
    try:
        with open(os.path.join(path, CHECKPOINT_META_FILE)) as f:
            return int(json.load(f)["iteration"])
    except (OSError, ValueError, KeyError):
        return 0
