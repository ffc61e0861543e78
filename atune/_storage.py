"""Where an experiment's files live: a local directory, or any pyarrow filesystem.

``RunConfig(storage_path=..., storage_filesystem=...)`` as in Ray Tune 2.x:

- a local path or a ``file://`` URI: the experiment runs in that directory;
- a URI of another scheme (``s3://bucket/path``, ``gs://...``, ``hdfs://...``; query
  options such as ``?endpoint_override=host:port&scheme=http`` as pyarrow takes them),
  or any path with ``storage_filesystem=<pyarrow.fs.FileSystem>``: the experiment runs
  in a local staging directory, and :class:`RemoteSync` uploads what changed there to
  the storage, in a worker thread, every :data:`SYNC_PERIOD_S` and once more at the end.

An upload copies the trials' files first and the journal last, and deletes what is gone
(checkpoints no longer kept) only after that, so the journal in the storage never
describes a file the storage does not hold. ``Tuner.restore("s3://...")`` downloads the
experiment into the staging directory and goes on from there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from atune.errors import AtuneError, ConfigError

__all__ = ["RemoteSync", "Storage", "resolve_storage"]

log = logging.getLogger("atune")

#: Seconds between two uploads of a running experiment (``ATUNE_SYNC_PERIOD_S``).
SYNC_PERIOD_S = float(os.environ.get("ATUNE_SYNC_PERIOD_S", "5"))
#: Files being written atomically (temp names) are not uploaded.
_SKIP_SUFFIXES = (".tmp",)
_JOURNAL = "journal"


@dataclass(frozen=True)
class Storage:
    """A resolved storage location: the local root experiments run in, and the remote one."""

    #: Where experiment directories are, on this machine (a staging copy if remote).
    local_root: str
    #: The pyarrow filesystem and the root path in it, or None for local storage.
    filesystem: Any = None
    remote_root: str = ""
    #: How the user named it (for messages).
    uri: str = ""

    @property
    def remote(self) -> bool:
        return self.filesystem is not None

    def remote_path(self, name: str) -> str:
        return f"{self.remote_root.rstrip('/')}/{name}"

    def describe(self, name: str) -> str:
        return (
            f"{self.uri.rstrip('/')}/{name}" if self.remote else os.path.join(self.local_root, name)
        )


def _staging_root(uri: str, default_root: str) -> str:
    """A local directory per remote storage location, under the default storage path."""
    digest = hashlib.sha1(uri.encode()).hexdigest()[:10]
    return os.path.join(default_root, "_staging", digest)


def resolve_storage(
    storage_path: str | os.PathLike[str] | None, filesystem: Any, default_root: str
) -> Storage:
    """Resolve ``RunConfig.storage_path`` / ``storage_filesystem``; ConfigError if invalid."""
    if filesystem is not None:
        import pyarrow.fs

        if not isinstance(filesystem, pyarrow.fs.FileSystem):
            raise ConfigError(
                "`storage_filesystem` must be a pyarrow.fs.FileSystem (e.g. "
                f"pyarrow.fs.S3FileSystem(...)), got {filesystem!r}"
            )
        if storage_path is None:
            raise ConfigError(
                "`storage_filesystem` needs `storage_path`: the directory in that filesystem, "
                "e.g. storage_path='my-bucket/experiments'"
            )
        root = os.fspath(storage_path)
        if "://" in root:
            root = root.split("://", 1)[1]
        uri = f"{filesystem.type_name}://{root}"
        return Storage(_staging_root(uri, default_root), filesystem, root.rstrip("/"), uri)
    if storage_path is None:
        return Storage(default_root)
    path = os.fspath(storage_path)
    if "://" not in path:
        return Storage(os.path.abspath(os.path.expanduser(path)))
    import pyarrow.fs

    try:
        fs, root = pyarrow.fs.FileSystem.from_uri(path)
    except Exception as exc:
        raise ConfigError(
            f"`storage_path` {path!r} cannot be opened as a filesystem ({exc}). Give a local "
            "directory, a URI pyarrow knows (s3://bucket/path, gs://bucket/path, hdfs://...), "
            "or storage_filesystem=pyarrow.fs.S3FileSystem(...) with storage_path='bucket/path'."
        ) from exc
    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        return Storage(os.path.abspath(root))
    clean = path.split("?", 1)[0].rstrip("/")
    return Storage(_staging_root(clean, default_root), fs, root.rstrip("/"), clean)


def check_reachable(storage: Storage) -> None:
    """Fail early, with the fix, when the storage cannot be listed or written."""
    if not storage.remote:
        return
    import pyarrow.fs

    fs = storage.filesystem
    try:
        fs.create_dir(storage.remote_root, recursive=True)
        fs.get_file_info(pyarrow.fs.FileSelector(storage.remote_root, allow_not_found=True))
    except Exception as exc:
        raise ConfigError(
            f"the storage {storage.uri!r} cannot be reached or written ({exc}). Check the "
            "bucket exists, the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the "
            "filesystem's own), and for an S3-compatible server its endpoint "
            "(?endpoint_override=host:port&scheme=http)."
        ) from exc


# --------------------------------------------------------------------------- sync
def _walk(local_dir: str) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for root, _dirs, files in os.walk(local_dir):
        for name in files:
            if name.endswith(_SKIP_SUFFIXES):
                continue
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue  # deleted while walking
            out[os.path.relpath(full, local_dir)] = (st.st_size, st.st_mtime_ns)
    return out


class RemoteSync:
    """Uploads what changed in one local experiment directory to its remote copy."""

    def __init__(self, storage: Storage, local_dir: str, name: str) -> None:
        self.storage = storage
        self.local_dir = local_dir
        self.remote_dir = storage.remote_path(name)
        self._uploaded: dict[str, tuple[int, int]] = {}
        self._dirs: set[str] = set()
        self._warned = False
        self.last_error: BaseException | None = None

    def sync(self) -> None:
        """One upload (blocking: run it in a worker thread)."""
        try:
            self._sync()
            self.last_error = None
        except Exception as exc:
            self.last_error = exc
            if not self._warned:
                self._warned = True
                log.warning(
                    "Uploading the experiment to %s failed (%s); retrying at the next sync. "
                    "Everything is still in %s.",
                    self.storage.describe(os.path.basename(self.local_dir)),
                    exc,
                    self.local_dir,
                )

    def _sync(self) -> None:
        current = _walk(self.local_dir)
        changed = [rel for rel, sig in current.items() if self._uploaded.get(rel) != sig]
        # The trials' files first, the journal last: the storage's journal never
        # describes a file the storage does not hold.
        changed.sort(key=lambda rel: (rel.split(os.sep, 1)[0] == _JOURNAL, rel))
        for rel in changed:
            self._upload(rel)
            self._uploaded[rel] = current[rel]
        gone = [rel for rel in self._uploaded if rel not in current]
        fs = self.storage.filesystem
        for rel in gone:
            try:
                fs.delete_file(self._remote(rel))
            except FileNotFoundError:
                pass
            except OSError as exc:
                if "not found" not in str(exc).lower():
                    raise
            del self._uploaded[rel]

    def _remote(self, rel: str) -> str:
        return f"{self.remote_dir}/{rel.replace(os.sep, '/')}"

    def _upload(self, rel: str) -> None:
        fs = self.storage.filesystem
        target = self._remote(rel)
        parent = target.rsplit("/", 1)[0]
        if parent not in self._dirs:
            fs.create_dir(parent, recursive=True)
            self._dirs.add(parent)
        try:
            with open(os.path.join(self.local_dir, rel), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return  # deleted since the walk: the next sync deletes it remotely
        with fs.open_output_stream(target) as out:
            out.write(data)


def remote_exists(storage: Storage, name: str, *files: str) -> bool:
    import pyarrow.fs

    fs = storage.filesystem
    base = storage.remote_path(name)
    try:
        infos = fs.get_file_info([f"{base}/{f}" for f in files])
    except Exception:
        return False
    return all(i.type != pyarrow.fs.FileType.NotFound for i in infos)


def remote_has_journal(storage: Storage, name: str) -> bool:
    import pyarrow.fs

    selector = pyarrow.fs.FileSelector(
        f"{storage.remote_path(name)}/{_JOURNAL}", allow_not_found=True
    )
    try:
        infos = storage.filesystem.get_file_info(selector)
    except Exception:
        return False
    return any(i.base_name.startswith("snapshot-") for i in infos)


def download(storage: Storage, name: str, local_dir: str) -> None:
    """Copy the experiment ``name`` from the storage into ``local_dir`` (blocking)."""
    import pyarrow.fs

    start = time.monotonic()
    os.makedirs(local_dir, exist_ok=True)
    try:
        pyarrow.fs.copy_files(
            storage.remote_path(name),
            local_dir,
            source_filesystem=storage.filesystem,
            destination_filesystem=pyarrow.fs.LocalFileSystem(),
        )
    except Exception as exc:
        raise AtuneError(
            f"cannot download the experiment {storage.describe(name)} ({exc})"
        ) from exc
    log.debug("Downloaded %s in %.1f s", storage.describe(name), time.monotonic() - start)
