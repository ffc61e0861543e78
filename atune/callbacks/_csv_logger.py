"""``progress.csv``: one row per result, nested keys flattened into ``a/b`` columns."""

from __future__ import annotations

import csv
import io
import os
from typing import TYPE_CHECKING, Any

from atune._util import flatten_dict
from atune.callbacks._buffered import Batch, BufferedLoggerCallback
from atune.result import PROGRESS_FILE, TRAINING_ITERATION

if TYPE_CHECKING:
    from atune._trial import Trial

__all__ = ["DISCARDED_PROGRESS_FILE", "CSVLoggerCallback"]

#: Rows of attempts that failed past the point the trial continued from.
DISCARDED_PROGRESS_FILE = "progress.discarded.csv"


class CSVLoggerCallback(BufferedLoggerCallback):
    """Writes ``progress.csv``: one row per result.

    Nested dicts are flattened with ``/`` (``config`` too, into ``config/<key>``
    columns). The header comes from the trial's first result and never changes, so
    the file stays a valid CSV: a later result's missing keys become empty cells and
    its extra keys are dropped (``result.json`` keeps everything). A trial resumed
    into a directory that already has a ``progress.csv`` keeps appending under that
    file's header. When a trial runs again after a failure, the rows past the
    iteration it continues from move to ``progress.discarded.csv``.
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

    def _rewind_files(
        self, trial: Trial, step: int, discarded: list[tuple[int, float, dict[str, Any]]]
    ) -> None:
        """``progress.csv`` keeps the rows up to ``step``; the failed attempt's rows past
        it go to ``progress.discarded.csv`` (same header)."""
        header = self._headers.get(trial) or self._existing_header(trial)
        gone: list[str] = []
        if header is not None and TRAINING_ITERATION in header:
            column = header.index(TRAINING_ITERATION)

            def keep(line: str) -> bool:
                try:
                    return float(next(csv.reader([line]))[column]) <= step
                except (ValueError, IndexError, StopIteration):
                    return True  # not a row of ours: leave it

            gone = self._split_lines(trial, PROGRESS_FILE, keep, skip=1) or []
        if not (gone or discarded):
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        existing = self._existing_header(trial, DISCARDED_PROGRESS_FILE)
        columns = existing or header or list(flatten_dict(discarded[0][2]))
        if existing is None:
            writer.writerow(columns)
        if gone and columns == header:
            out.write("".join(gone))
        elif gone:  # another header: re-read the rows through it
            assert header is not None
            for row in csv.reader(gone):
                values = dict(zip(header, row, strict=False))
                writer.writerow([values.get(key) for key in columns])
        for _, _, result in discarded:
            flat = flatten_dict(result)
            writer.writerow([flat.get(key) for key in columns])
        self._append(trial, DISCARDED_PROGRESS_FILE, out.getvalue())

    def _existing_header(self, trial: Trial, name: str = PROGRESS_FILE) -> list[str] | None:
        """The header of a ``progress.csv`` written before (a resumed trial), if any."""
        path = os.path.join(trial.local_path, name)
        try:
            with open(path, encoding="utf-8", newline="") as f:
                first = f.readline()
        except OSError:
            return None
        if not first.strip():
            return None
        return next(csv.reader([first]))
