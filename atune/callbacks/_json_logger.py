"""``params.json`` and ``result.json``: the trial config and one JSON line per result."""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

from atune._util import encode_json
from atune.callbacks._buffered import Batch, BufferedLoggerCallback
from atune.result import PARAMS_FILE, RESULT_FILE, TRAINING_ITERATION

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["DISCARDED_RESULT_FILE", "JsonLoggerCallback"]

#: Results of attempts that failed past the point the trial continued from.
DISCARDED_RESULT_FILE = "result.discarded.json"


class JsonLoggerCallback(BufferedLoggerCallback):
    """Writes ``params.json`` and ``result.json`` (one JSON object per line).

    ``params.json`` holds the trial config, indented and with sorted keys; it is
    (re)written when the trial starts or restarts. Each result, ``config`` included,
    becomes one line of ``result.json``. numpy values become Python numbers and lists,
    sets become lists, other objects their ``repr``; NaN and infinities are written as
    ``NaN``/``Infinity``, as Python's json does. When a trial runs again after a
    failure, from a checkpoint at iteration ``k`` (or from scratch, ``k = 0``), the
    lines past ``k`` move to ``result.discarded.json``: ``result.json`` is then the
    history the trial continues, with no iteration twice.

    Example:
        >>> from atune.callbacks import JsonLoggerCallback
        >>> callbacks = [JsonLoggerCallback()]  # RunConfig(callbacks=callbacks)
    """

    def _write_batch(self, batch: Batch) -> None:
        for trial, config in batch.started.items():
            self._write_params(trial, config)
            self._append(trial, RESULT_FILE, "")  # result.json exists from the start
        for trial, entries in batch.results.items():
            lines = []
            for _step, _walltime, result in entries:
                lines.append(encode_json(result))
                lines.append("\n")
            self._append(trial, RESULT_FILE, "".join(lines))

    def _rewind_files(
        self, trial: Trial, step: int, discarded: list[tuple[int, float, dict[str, Any]]]
    ) -> None:
        """``result.json`` keeps the results up to ``step``; those of the failed
        attempt past it go to ``result.discarded.json``, in the order reported."""
        gone = self._split_lines(trial, RESULT_FILE, lambda line: _step(line) <= step) or []
        lines = gone + [encode_json(result) + "\n" for _, _, result in discarded]
        if lines:
            self._append(trial, DISCARDED_RESULT_FILE, "".join(lines))

    def _write_params(self, trial: Trial, config: dict[str, Any]) -> None:
        if not trial.local_path:
            return
        text = encode_json(config, indent=2, sort_keys=True)
        path = os.path.join(trial.local_path, PARAMS_FILE)
        tmp = f"{path}.tmp"
        try:
            os.makedirs(trial.local_path, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)  # readers never see a half-written params.json
        except OSError as exc:
            self._warn_once(trial, PARAMS_FILE, exc)


def _step(line: str) -> float:
    """The ``training_iteration`` of a ``result.json`` line (a damaged line: kept)."""
    try:
        value = json.loads(line).get(TRAINING_ITERATION, 0)
    except (ValueError, AttributeError):
        return -math.inf
    return value if isinstance(value, (int, float)) else -math.inf
