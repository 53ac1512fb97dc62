"""The run directory: the contract between stages (ARCHITECTURE.md / README "The run directory").

The names of its files are in `curator.runfiles` (one constant per artefact, with what it holds); the
module that owns an artefact's format owns its one reader. This module keeps the stage records:

    RUN/stages/<stage>.json   fingerprint of a finished stage's inputs, and size + checksum of each output

A stage is skipped only when the fingerprint of its inputs matches the recorded one **and** every
output still has the size and checksum recorded when the stage finished: a missing, truncated or
altered output makes the stage run again, and so does a stage record that is not a valid record.
Readers outside the pipeline (explorer, export, `curator verify`) check a file the same way with
`RunDir.verify_output`.

The other jobs live next door: atomic writes and checksums in `curator.atomic`, the one-writer lock
(``RUN/run.lock``) in `curator.runlock`, versions, timings and memory peaks (``RUN/provenance.json``)
in `curator.provenance`. `RunDir` is the one object stages and readers hold; it re-exports what
callers used to import from here.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from curator import runfiles
from curator.atomic import (StorageError, atomic_path, check_regular, current_umask, file_fingerprint,  # noqa: F401
                            file_record, fingerprint, storage_error, write_json_atomic, write_npy_atomic,
                            write_parquet_atomic)
from curator.data.problems import DataError
from curator.provenance import (check_provenance, environment, package_versions, peak_memory_mb,  # noqa: F401
                                reset_peak_memory, with_timing)
from curator.runlock import (RunLockedError, acquire_writer_lock, current_writer, describe_holder,  # noqa: F401
                             release_writer_lock)

LOG = logging.getLogger(__name__)
MAX_JSON_BYTES = 256 << 20   # the largest JSON record a run holds is the SSL history: kilobytes


class RunDir:
    """A run directory with atomic I/O helpers and stage bookkeeping."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        """`create=False` for readers (explorer, export): the directory is not made if it is missing.

        A run "directory" that is a file, or one that cannot be created (read-only, no space), is a
        one-line `DataError`."""
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise DataError(f"run directory {str(self.path)!r} is a file, not a directory; choose another --out")
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, self.path / ".") or DataError(
                    f"cannot create run directory {str(self.path)!r}: {exc.strerror}") from None

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def file(self, name: str) -> Path:
        """RUN/`name`, refused (`DataError`) when a symlink on the way leads out of the run directory:
        nothing curator reads or writes through a run's names lives elsewhere."""
        p = self.path / name
        try:
            inside = p.resolve().is_relative_to(self.path.resolve())
        except (OSError, RuntimeError):   # a symlink loop
            inside = False
        if not inside:
            raise DataError(f"{str(p)!r} leads out of the run directory (a symlink); remove it")
        return p

    # --- I/O -------------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> Path:
        write_json_atomic(self.file(name), obj)
        return self.path / name

    def read_json(self, name: str, default: Any = None, *, recompute: bool = False) -> Any:
        """RUN/`name` as a JSON object (every JSON file of a run holds one), `default` when it is missing.

        A file that is not a regular file, not valid JSON, larger than `MAX_JSON_BYTES` or not an object is
        refused with a `DataError` naming it; with ``recompute=True`` (a stage output or bookkeeping that can be
        made again) it is logged and `default` is returned instead, so the caller recomputes it."""
        p = self.file(name)
        if not check_regular(p, missing_ok=True):
            return default
        try:
            size = p.stat().st_size
            if size > MAX_JSON_BYTES:
                raise ValueError(f"{size} bytes, more than the {MAX_JSON_BYTES} a record can be")
            obj = json.loads(p.read_bytes().decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError(f"holds {type(obj).__name__} {str(obj)[:40]!r}, not a record")
        except (OSError, ValueError, RecursionError) as exc:
            why = f"{str(p)!r} is not a valid record ({str(exc)[:200]})"
            if recompute:
                LOG.warning("%s; computing it again", why)
                return default
            raise DataError(why) from None
        return obj

    def write_parquet(self, name: str, df: pd.DataFrame) -> Path:
        write_parquet_atomic(self.file(name), df)
        return self.path / name

    def read_parquet(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        p = self.file(name)
        check_regular(p)
        try:
            return pd.read_parquet(p, columns=columns)
        except (OSError, ValueError, KeyError, TypeError) as exc:   # pyarrow's errors are OSError / ValueError
            raise DataError(f"{str(p)!r} is not a readable table ({str(exc)[:200]}); re-run the stage that "
                            "writes it") from None

    def write_npy(self, name: str, array: np.ndarray) -> Path:
        write_npy_atomic(self.file(name), array)
        return self.path / name

    def read_npy(self, name: str, mmap: bool = False) -> np.ndarray:
        p = self.file(name)
        check_regular(p)
        try:
            return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{str(p)!r} is not a readable array ({str(exc)[:200]})") from None

    # --- stages ---------------------------------------------------------------------------
    def stage_record(self, stage: str) -> dict | None:
        """RUN/stages/`stage`.json, or None when it is missing or not a valid stage record (the stage then runs
        again): inputs a fingerprint string (None for `record_files`), files name -> {size >= 0, sha256}."""
        name = f"stages/{stage}.json"
        rec = self.read_json(name, recompute=True)
        if rec is None:
            return None
        why = stage_record_problem(rec)
        if why:
            LOG.warning("%s is not a valid stage record (%s); the stage runs again", self / name, why)
            return None
        return rec

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
                  input_files: list[str] = (), ids: str | None = None) -> bool:
        """Run `fn()` unless the stage is up to date; return True if it ran.

        `inputs` is a JSON-able description (config values); `input_files` are run-dir-relative
        files whose content is part of the fingerprint (e.g. the embeddings a head reads). When
        the stage finishes, the size and checksum of every output are recorded; a later call
        re-runs the stage if any output is missing or no longer matches. `ids` (the digest of the sample ids whose
        rows the outputs hold, `curator.data.cache.ids_digest`) joins the fingerprint and the record, where readers
        of arrays without room for it (``.npy``) find it with `recorded_ids`.
        """
        for o in outputs:   # a symlinked folder (RUN/heads -> elsewhere) must not take a stage's writes out of the run
            self.file(o)
        files = {f: file_fingerprint(self.file(f)) for f in input_files}
        fp = fingerprint({"inputs": inputs, "files": files} | ({"ids": ids} if ids is not None else {}))
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
                                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
                        | ({"ids": ids} if ids is not None else {}))
        self.record_timing(stage, seconds, peak)
        LOG.info("stage %s: done in %.1f s%s (wrote %s)", stage, seconds,
                 f", peak memory {peak / 1024:.2f} GiB" if peak else "", ", ".join(outputs))
        return True

    def recorded_ids(self, stage: str) -> str | None:
        """The ids digest `stage` recorded for the rows of its outputs, or None (no record, or written before)."""
        ids = (self.stage_record(stage) or {}).get("ids")
        return ids if isinstance(ids, str) else None

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
        p = self.file(name)
        if not check_regular(p, missing_ok=True):
            raise DataError(f"{str(p)!r} not found: run `curator audit --out {self.path}` first")
        for rec_path in sorted((self.path / "stages").glob("*.json")) if (self.path / "stages").is_dir() else []:
            rec = self.stage_record(rec_path.stem)
            if rec is None:
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
        self.write_json(runfiles.PROVENANCE, with_timing(self.provenance(), stage, seconds, peak_memory_mb))

    def write_provenance(self, *, seed: int | None, data_fingerprint: str, extra: dict | None = None) -> None:
        self.write_json(runfiles.PROVENANCE, self.provenance() | environment(seed, data_fingerprint) | (extra or {}))

    def provenance(self) -> dict[str, Any]:
        """RUN/provenance.json as a record (bookkeeping: one that is not a valid record is started afresh)."""
        return check_provenance(self.read_json(runfiles.PROVENANCE, {}, recompute=True), self / runfiles.PROVENANCE)


def stage_record_problem(rec: Any) -> str | None:
    """What is wrong with a stage record (RUN/stages/<stage>.json), or None when it is valid."""
    if not isinstance(rec, dict):
        return f"holds {type(rec).__name__}, not a record"
    if not (rec.get("inputs") is None or isinstance(rec.get("inputs"), str)):
        return "field 'inputs' is not a fingerprint"
    files = rec.get("files")
    if files is None:
        return None
    if not isinstance(files, dict):
        return "field 'files' is not a table"
    for name, f in files.items():
        if not (isinstance(f, dict) and isinstance(f.get("size"), int) and not isinstance(f.get("size"), bool)
                and f["size"] >= 0 and isinstance(f.get("sha256"), str)):
            return f"field 'files.{name}' is not {{size, sha256}}"
    return None
