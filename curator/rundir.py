"""The run directory: the contract between stages (SPEC §2, §10).

Layout (names are a contract; see README):

    RUN/
      config.json          what was asked for (dataset options, recipe, overrides)
      provenance.json      versions, seed, data fingerprint, per-stage timings
      manifest.parquet     the dataset's manifest (all splits)
      problems.parquet     bad inputs found while reading the data
      stages/<name>.json   fingerprint of each finished stage's inputs, and size + checksum of each output
      run.lock             held (fcntl) by the one process writing the run; names it (pid, host, start)
      checkpoints/         SSL checkpoints
      embeddings.npy       N_train x d float16, rows in manifest order of the train split
      heads/<head>/...     per-head records
      signals.parquet, audit.parquet, classes.parquet, metrics.json, report.html
      decisions.parquet    review decisions saved by the explorer

Every write goes to a temporary file in the same directory and is renamed into place, so a
reader never sees a half-written file and a killed run leaves the previous version intact; files
get the permissions the umask allows (like any file the user creates), not `mkstemp`'s 0600.

A stage is skipped only when the fingerprint of its inputs matches the recorded one **and** every
output still has the size and checksum recorded when the stage finished: a missing, truncated or
altered output makes the stage run again. Readers outside the pipeline (explorer, export) check a
file the same way with `RunDir.verify_output`.

One process writes a run directory at a time: `RunDir.lock_for_writing` takes an exclusive
`fcntl.flock` on ``RUN/run.lock`` for the rest of the process's life (the kernel releases it when
the process ends, also after ``kill -9``) and writes who holds it; a second writer gets a
`RunLockedError` (exit code 2) naming the other process.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.problems import DataError
from curator.log import to_jsonable

LOG = logging.getLogger(__name__)

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
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
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


def package_versions() -> dict[str, str]:
    names = ["curator", "torch", "torchvision", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy",
             "faiss-cpu", "faiss-gpu-cu12", "umap-learn", "streamlit", "cleanlab"]
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def reset_peak_memory() -> None:
    """Reset this process's resident-memory high-water mark (Linux: /proc/self/clear_refs), so the next
    `peak_memory_mb` is the peak of what runs in between; a no-op where the kernel does not offer it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb() -> float | None:
    """Peak resident memory (MiB) of this process since start or the last `reset_peak_memory` (VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class RunDir:
    """A run directory with atomic I/O helpers and stage bookkeeping."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        """`create=False` for readers (explorer, export): the directory is not made if it is missing."""
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    # --- I/O -------------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> Path:
        write_json_atomic(self.path / name, obj)
        return self.path / name

    def read_json(self, name: str, default: Any = None) -> Any:
        p = self.path / name
        if not p.exists():
            return default
        return json.loads(p.read_text())

    def write_parquet(self, name: str, df: pd.DataFrame) -> Path:
        write_parquet_atomic(self.path / name, df)
        return self.path / name

    def read_parquet(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.path / name, columns=columns)

    def write_npy(self, name: str, array: np.ndarray) -> Path:
        write_npy_atomic(self.path / name, array)
        return self.path / name

    def read_npy(self, name: str, mmap: bool = False) -> np.ndarray:
        return np.load(self.path / name, mmap_mode="r" if mmap else None, allow_pickle=False)

    # --- stages ---------------------------------------------------------------------------
    def stage_record(self, stage: str) -> dict | None:
        return self.read_json(f"stages/{stage}.json")

    def forget_stage(self, stage: str) -> bool:
        """Drop `stage`'s record so its next `run_stage` runs it again (its outputs stay until rewritten);
        True if there was a record."""
        p = self.path / "stages" / f"{stage}.json"
        if not p.exists():
            return False
        p.unlink()
        return True

    def output_mismatch(self, name: str, recorded: dict | None) -> str | None:
        """Why output `name` no longer matches `recorded` (size + checksum), or None if it does."""
        p = self.path / name
        if not p.is_file():
            return "missing"
        if not recorded:
            return None
        size = p.stat().st_size
        if size != recorded.get("size"):
            return f"size {size} bytes, {recorded.get('size')} recorded (truncated or replaced)"
        if file_fingerprint(p) != recorded.get("sha256"):
            return "content differs from the recorded checksum (altered)"
        return None

    def is_fresh(self, stage: str, inputs_fp: str, outputs: list[str]) -> bool:
        """True if `stage` finished with inputs `inputs_fp` and its outputs are exactly what it wrote."""
        rec = self.stage_record(stage)
        if not rec or rec.get("inputs") != inputs_fp:
            return False
        files = rec.get("files")
        for o in outputs:
            why = self.output_mismatch(o, (files or {}).get(o))
            if why is None and files is not None and o not in files:
                why = "not recorded by the stage"
            if why is not None:
                LOG.warning("stage %s: output %s %s; running the stage again", stage, o, why)
                return False
        if files is None:  # a record from before checksums were kept: trust the files once, record them now
            rec["files"] = {o: file_record(self.path / o) for o in outputs}
            self.write_json(f"stages/{stage}.json", rec)
        return True

    def run_stage(self, stage: str, fn: Callable[[], Any], *, inputs: Any, outputs: list[str],
                  input_files: list[str] = ()) -> bool:
        """Run `fn()` unless the stage is up to date; return True if it ran.

        `inputs` is a JSON-able description (config values); `input_files` are run-dir-relative
        files whose content is part of the fingerprint (e.g. the embeddings a head reads). When
        the stage finishes, the size and checksum of every output are recorded; a later call
        re-runs the stage if any output is missing or no longer matches.
        """
        files = {f: file_fingerprint(self.path / f) for f in input_files}
        fp = fingerprint({"inputs": inputs, "files": files})
        if self.is_fresh(stage, fp, outputs):
            LOG.info("stage %s: up to date, skipped", stage)
            return False
        t0 = time.perf_counter()
        LOG.info("stage %s: running", stage)
        reset_peak_memory()
        fn()
        seconds = time.perf_counter() - t0
        peak = peak_memory_mb()
        missing = [o for o in outputs if not (self.path / o).exists()]
        if missing:
            raise RuntimeError(f"stage {stage} finished without writing {missing}")
        self.write_json(f"stages/{stage}.json", {"inputs": fp, "outputs": outputs,
                                                  "files": {o: file_record(self.path / o) for o in outputs},
                                                  "seconds": round(seconds, 3), "peak_memory_mb": peak,
                                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.record_timing(stage, seconds, peak)
        LOG.info("stage %s: done in %.1f s%s (wrote %s)", stage, seconds,
                 f", peak memory {peak / 1024:.2f} GiB" if peak else "", ", ".join(outputs))
        return True

    def record_files(self, stage: str, names: list[str]) -> None:
        """Record size + checksum of files written outside `run_stage` (e.g. ``prepare``'s manifest), so
        readers can `verify_output` them too. The record has no inputs: it never makes anything skip.
        It is rewritten only when a file differs from what it records."""
        files = {n: file_record(self.path / n) for n in names}
        if (self.stage_record(stage) or {}).get("files") == files:
            return
        self.write_json(f"stages/{stage}.json", {"inputs": None, "outputs": list(names), "files": files,
                                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def verify_output(self, name: str) -> None:
        """Raise `DataError` if `name` is missing or differs from what the stage that wrote it recorded.

        For readers outside the pipeline (export, explorer): a truncated or altered artefact is
        refused with a message that says how to recompute it, instead of a parser's traceback.
        A file no stage record mentions (e.g. written by an older curator) is only checked to exist.
        """
        p = self.path / name
        if not p.is_file():
            raise DataError(f"{str(p)!r} not found: run `curator audit --out {self.path}` first")
        for rec_path in sorted((self.path / "stages").glob("*.json")) if (self.path / "stages").is_dir() else []:
            try:
                rec = json.loads(rec_path.read_text())
            except (OSError, ValueError):
                continue
            recorded = (rec.get("files") or {}).get(name)
            if recorded:
                why = self.output_mismatch(name, recorded)
                if why:
                    raise DataError(f"{str(p)!r} does not match what stage {rec_path.stem!r} wrote ({why}); "
                                    f"re-run `curator audit --out {self.path}` to recompute it")
                return

    # --- the writer lock -------------------------------------------------------------------
    def lock_for_writing(self) -> None:
        """Become the one process writing this run directory (held until the process ends).

        Raises `RunLockedError` (a `DataError`: exit code 2) naming the process that holds it.
        Calling it again from the holding process does nothing.
        """
        acquire_writer_lock(self.path)

    def writer(self) -> dict | None:
        """The other process writing this run now ({pid, host, started, command}), or None."""
        return current_writer(self.path)

    # --- provenance ------------------------------------------------------------------------
    def record_timing(self, stage: str, seconds: float, peak_memory_mb: float | None = None) -> None:
        prov = self.read_json(runfiles.PROVENANCE, {}) or {}
        prov.setdefault("timings_s", {})[stage] = round(seconds, 3)
        if peak_memory_mb is not None:
            prov.setdefault("peak_memory_mb", {})[stage] = peak_memory_mb
        self.write_json(runfiles.PROVENANCE, prov)

    def write_provenance(self, *, seed: int | None, data_fingerprint: str, extra: dict | None = None) -> None:
        prov = self.read_json(runfiles.PROVENANCE, {}) or {}
        prov.update({
            "versions": package_versions(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "seed": seed,
            "data_fingerprint": data_fingerprint,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
        if extra:
            prov.update(extra)
        self.write_json(runfiles.PROVENANCE, prov)


# --- the writer lock (one process writes a run directory at a time) ----------------------------
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
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _HELD_GUARD:
        if key in _HELD_LOCKS:
            return
        fd = os.open(path / runfiles.LOCK, os.O_RDWR | os.O_CREAT, 0o666)
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
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder_info()).encode("utf-8"))
        os.fsync(fd)
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
