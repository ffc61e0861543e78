"""Checkpoints: a directory of files a trainable can restore from."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

__all__ = ["Checkpoint"]


class Checkpoint:
    """A reference to a directory that holds a trial's saved state.

    Create one from a directory your trainable wrote and hand it to
    :func:`atune.report`; atune copies it into the trial directory
    (``checkpoint_<iteration>``) so it outlives the temporary directory.

    Example:
        >>> import tempfile, pathlib
        >>> d = tempfile.mkdtemp()
        >>> _ = (pathlib.Path(d) / "state.txt").write_text("42")
        >>> ckpt = Checkpoint.from_directory(d)
        >>> with ckpt.as_directory() as path:
        ...     (pathlib.Path(path) / "state.txt").read_text()
        '42'
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: str = os.fspath(path)

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Refer to an existing directory."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"Checkpoint.from_directory: {path!r} is not a directory")
        return cls(os.path.abspath(path))

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """Yield a local directory with the checkpoint's files (the checkpoint itself)."""
        yield self.path

    def to_directory(self, path: str | os.PathLike[str] | None = None) -> str:
        """Copy the checkpoint's files into ``path`` (a new temporary dir if None)."""
        target = os.fspath(path) if path is not None else tempfile.mkdtemp(prefix="checkpoint_")
        shutil.copytree(self.path, target, dirs_exist_ok=True)
        return target

    def __fspath__(self) -> str:
        return self.path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __reduce__(self) -> tuple[type[Checkpoint], tuple[str]]:
        return (Checkpoint, (self.path,))

    def __repr__(self) -> str:
        return f"Checkpoint(path={self.path!r})"
