"""Atomic writes, checked opens and checksums of run-directory files (curator.rundir).

Every write goes to a temporary file in the same directory and is renamed into place, so a reader
never sees a half-written file and a killed run leaves the previous version intact; files get the
permissions the umask allows (like any file the user creates), not `mkstemp`'s 0600. The rename
replaces a symlink at the target instead of writing through it.

A write the machine refuses (disk full, quota, read-only file system, no permission) is a
`StorageError` (a `DataError`: one line, exit code 2) naming the file and what ran out; the
temporary file is removed. A file is read only when it is what it claims: `check_regular` refuses
a directory, FIFO, device or socket where a file belongs (reading a FIFO would hang).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from curator.data.files import StorageError, check_regular, file_kind, storage_error  # noqa: F401
from curator.data.problems import DataError
from curator.log import to_jsonable

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (not thread-safe against other umask users)
        old = os.umask(0o022)
        os.umask(old)
    return old


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds.

    The file ends with mode ``0o666 & ~umask`` (what ``open(target, "w")`` would give), not the
    0600 of `tempfile.mkstemp`, so a shared run directory stays readable to whom the umask allows.
    A target that exists as something other than a file or symlink (a directory, a FIFO) is refused.
    """
    target = Path(target)
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise StorageError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise DataError(f"cannot write {str(target)!r}: it is {file_kind(mode)}; remove it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except (OSError, RuntimeError) as exc:
        err = storage_error(exc, target)
        if err is None:
            raise
        raise err from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    except (OSError, RuntimeError) as exc:
        err = storage_error(exc, target)
        if err is None:
            raise
        raise err from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2))


def write_parquet_atomic(path: str | os.PathLike, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def file_fingerprint(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes (first 16 hex digits)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """What a stage records about one output: its size in bytes and `file_fingerprint`."""
    return {"size": os.stat(path).st_size, "sha256": file_fingerprint(path)}


def fingerprint(obj: Any) -> str:
    """Stable hash of a JSON-able description of a stage's inputs."""
    return hashlib.sha256(json.dumps(to_jsonable(obj), sort_keys=True).encode()).hexdigest()[:16]
