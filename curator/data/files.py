"""What a file is, and what the machine refused: checks shared by every reader and writer of run files.

`check_regular` refuses a directory, FIFO, device or socket where a file belongs (reading a FIFO would hang);
`storage_error` turns a write the machine refused (disk full, quota, read-only file system, no permission) into a
`StorageError` (a `DataError`: one line, exit code 2) naming the file and what ran out.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from curator.data.problems import DataError


class StorageError(DataError):
    """The machine refused a write: no space left, quota, read-only file system, no permission."""


_REASONS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted", errno.EFBIG: "file too large for the file system"}
STORAGE_ERRNOS = frozenset(_REASONS)
MIN_FREE_BYTES = 1 << 20   # below this, a failed write is taken for a full disk (torch reports it as a RuntimeError)


def storage_error(exc: BaseException, path: str | os.PathLike) -> StorageError | None:
    """The `StorageError` for `exc` raised while writing `path`, or None when it is something else."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return StorageError(f"cannot write {str(path)!r}: {_REASONS[exc.errno]}")
    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return None
    if free < MIN_FREE_BYTES:
        return StorageError(f"cannot write {str(path)!r}: no space left on the device ({free} bytes free)")
    return None


def file_kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket"
            if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def check_regular(path: str | os.PathLike, *, missing_ok: bool = False) -> bool:
    """True if `path` is a regular file (after symlinks); False if it is missing and `missing_ok`;
    `DataError` naming the file and what it is otherwise (a directory, FIFO, device, socket)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return False
        raise DataError(f"{str(path)!r} does not exist") from None
    except OSError as exc:
        raise DataError(f"{str(path)!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{str(path)!r} is {file_kind(mode)}, not a file curator wrote; remove it")
    return True


def load_user_npy(path: Path, where: str, *, mmap: bool = False):
    """A .npy file someone handed us (``--embeddings``, ``--pred-probs``) as an ndarray, never unpickling
    (``allow_pickle=False``); `DataError` naming `where` for a pickled object array, a truncated or corrupt file,
    or an .npz archive under a .npy name."""
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        if any(k in str(exc) for k in ("allow_pickle", "Object arrays", "Python objects")):
            raise DataError(f"{where} holds Python objects (a pickled object array), which curator never unpickles; "
                            "save a numeric array, e.g. np.save(path, x.astype(np.float32))") from None
        raise DataError(f"{where} is not a readable .npy file (truncated or corrupt: {exc})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{where} is not a readable .npy file (truncated or corrupt: {exc})") from None
    if not isinstance(arr, np.ndarray):  # np.load returns an NpzFile for a zip archive, whatever the suffix
        raise DataError(f"{where} is an .npz archive, not a .npy array; save one array with np.save")
    return arr
