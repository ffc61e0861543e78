"""``progress.csv``: one row per result, nested keys flattened into ``a/b`` columns."""

from __future__ import annotations

import csv
import io
import os
from typing import TYPE_CHECKING

from atune._util import flatten_dict
from atune.callbacks._buffered import Batch, BufferedLoggerCallback
from atune.result import PROGRESS_FILE

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["CSVLoggerCallback"]


class CSVLoggerCallback(BufferedLoggerCallback):
    """Writes ``progress.csv``: one row per result.

    Nested dicts are flattened with ``/`` (``config`` too, into ``config/<key>``
    columns). The header comes from the trial's first result and never changes, so
    the file stays a valid CSV: a later result's missing keys become empty cells and
    its extra keys are dropped (``result.json`` keeps everything). A trial resumed
    into a directory that already has a ``progress.csv`` keeps appending under that
    file's header.
    """

    def __init__(self) -> None:
        super().__init__()
        # Header per trial; touched only by the writer thread.
        self._headers: dict[Trial, list[str]] = {}

    def _write_batch(self, batch: Batch) -> None:
        for trial in batch.started:
            self._append(trial, PROGRESS_FILE, "")
        for trial, entries in batch.results.items():
            header = self._headers.get(trial)
            if header is None:
                header = self._existing_header(trial)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            if header is None:
                header = list(flatten_dict(entries[0][2]))
                writer.writerow(header)
            for _step, _walltime, result in entries:
                flat = flatten_dict(result)
                writer.writerow([flat.get(key) for key in header])
            if self._append(trial, PROGRESS_FILE, out.getvalue()):
                self._headers[trial] = header
        for trial in batch.ended:
            self._headers.pop(trial, None)
        if batch.end_all:
            self._headers.clear()

    def _existing_header(self, trial: Trial) -> list[str] | None:
        """The header of a ``progress.csv`` written before (a resumed trial), if any."""
        path = os.path.join(trial.local_path, PROGRESS_FILE)
        try:
            with open(path, encoding="utf-8", newline="") as f:
                first = f.readline()
        except OSError:
            return None
        if not first.strip():
            return None
        return next(csv.reader([first]))
