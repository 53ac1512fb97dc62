"""The writer lock: one process writes a run directory at a time (RUN/run.lock).

`acquire_writer_lock` takes an exclusive `fcntl.flock` on ``RUN/run.lock`` for the rest of the
process's life (the kernel releases it when the process ends, also after ``kill -9``) and writes who
holds it; a second writer gets a `RunLockedError` (exit code 2) naming the other process.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from curator import runfiles
from curator.atomic import file_kind, storage_error
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)


class RunLockedError(DataError):
    """Another process is writing the run directory."""


_HELD_LOCKS: dict[str, int] = {}  # resolved run directory -> fd holding its flock (this process)
_HELD_GUARD = threading.Lock()


def _holder_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv and sys.argv[0] else "python"}


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 1 << 16)
        info = json.loads(data.decode("utf-8")) if data.strip() else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def describe_holder(info: dict[str, Any]) -> str:
    if not info:
        return "another process (it has not written its details yet)"
    cmd = f", running `{info['command']}`" if info.get("command") else ""
    return f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, started {info.get('started', '?')}{cmd}"


def acquire_writer_lock(path: str | os.PathLike) -> None:
    """Take the exclusive lock on ``path/run.lock`` for this process's life (see `RunDir.lock_for_writing`)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"run directory {str(path)!r} is a file, not a directory; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, path / ".") or DataError(f"cannot create {str(path)!r}: {exc.strerror}") from None
    key = str(path.resolve())
    with _HELD_GUARD:
        if key in _HELD_LOCKS:
            return
        lock = path / runfiles.LOCK
        if lock.is_symlink() or (lock.exists() and not lock.is_file()):
            raise DataError(f"{str(lock)!r} is {'a symlink' if lock.is_symlink() else file_kind(lock.stat().st_mode)}, "
                            "not the run's lock file; remove it")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise storage_error(exc, lock) or DataError(f"cannot open {str(lock)!r}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(f"run directory {str(path)!r} is being written by {describe_holder(other)}; "
                                 "wait for it to finish (or stop it), or choose another --out") from None
        except OSError as exc:  # a file system without flock support
            os.close(fd)
            LOG.warning("cannot lock %s (%s); make sure no other curator process writes this run", path / runfiles.LOCK, exc)
            return
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(_holder_info()).encode("utf-8"))
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise storage_error(exc, lock) or DataError(f"cannot write {str(lock)!r}: {exc.strerror}") from None
        _HELD_LOCKS[key] = fd


def release_writer_lock(path: str | os.PathLike) -> None:
    """Give up the writer lock this process holds on `path` (library users; the CLI keeps it to the end)."""
    key = str(Path(path).resolve())
    with _HELD_GUARD:
        fd = _HELD_LOCKS.pop(key, None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def current_writer(path: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds the writer lock on `path` if it is another process; None if nobody (or this process)."""
    path = Path(path)
    lock = path / runfiles.LOCK
    if str(path.resolve()) in _HELD_LOCKS or not lock.exists():
        return None
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or {"pid": None}
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
