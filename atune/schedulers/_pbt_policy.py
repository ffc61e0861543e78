"""PBT's policy logs: the file format PBT writes and its replay reads.

With ``log_config=True`` (the default) PBT appends every exploit to
``pbt_global.txt`` and keeps each trial's lineage in ``pbt_policy_<trial_id>.txt``,
both in the experiment directory: rows ``[target tag, clone tag, target iteration,
clone iteration, old config, new config]``, one JSON list per line.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from atune._util import encode_json
from atune.errors import ConfigError

__all__ = [
    "POLICY_FILE_PREFIX",
    "POLICY_GLOBAL_FILE",
    "encode_row",
    "load_policy",
    "write_policy",
]


#: The policy log of every exploit of the experiment, in the experiment directory.
POLICY_GLOBAL_FILE = "pbt_global.txt"
#: The policy log of one trial's lineage: ``pbt_policy_<trial_id>.txt``.
POLICY_FILE_PREFIX = "pbt_policy_"

#: Fields of one policy row: target tag, clone tag, target iteration, clone
#: iteration, old config, new config.
_ROW_FIELDS = 6


def encode_row(row: list[Any]) -> str:
    """One policy row as a JSON line (without the newline); never fails on odd values."""
    return encode_json(row)


def write_policy(exp_dir: str, trial_id: str, clone_id: str, line: str) -> None:
    """Append one exploit to the global log; the trial's log becomes the clone's + it.

    Blocking file I/O: call it on a worker thread.
    """
    os.makedirs(exp_dir, exist_ok=True)
    with open(os.path.join(exp_dir, POLICY_GLOBAL_FILE), "a") as f:
        f.write(line)
    trial_path = os.path.join(exp_dir, f"{POLICY_FILE_PREFIX}{trial_id}.txt")
    clone_path = os.path.join(exp_dir, f"{POLICY_FILE_PREFIX}{clone_id}.txt")
    # The trial continues the clone's lineage, so its history is the clone's.
    if os.path.exists(clone_path):
        shutil.copyfile(clone_path, trial_path)
        mode = "a"
    else:
        mode = "w"
    with open(trial_path, mode) as f:
        f.write(line)


def load_policy(policy_file: str) -> tuple[dict[str, Any] | None, list[tuple[int, dict]]]:
    """Read a PBT policy file; returns the initial config and ``[(iteration, config)]``.

    The file lists the exploits of one lineage, oldest first. Walking back from the
    last row, rows belong to the lineage while each row's target is the clone of the
    row after it; older rows were overwritten by a later exploit and are dropped. The
    initial config is the cloned config of the oldest row kept.
    """
    rows = []
    with open(policy_file) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"`policy_file` {policy_file!r} line {number} is not JSON: {exc}"
                ) from exc
            if not isinstance(row, list) or len(row) != _ROW_FIELDS:
                raise ConfigError(
                    f"`policy_file` {policy_file!r} line {number} must be a list of "
                    f"{_ROW_FIELDS} fields [target tag, clone tag, target iteration, clone "
                    f"iteration, old config, new config], got {line.strip()[:200]!r}"
                )
            rows.append(row)
    schedule: list[tuple[int, dict]] = []
    initial: dict[str, Any] | None = None
    expected_target: str | None = None
    for target_tag, clone_tag, _target_iter, clone_iter, old_config, new_config in reversed(rows):
        if expected_target is not None and target_tag != expected_target:
            break  # the lineage continues elsewhere: older rows do not apply
        expected_target = clone_tag
        initial = old_config
        schedule.append((int(clone_iter), new_config))
    schedule.reverse()
    return initial, schedule
