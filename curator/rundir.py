"""The run directory: the contract between stages (SPEC §2, §10).

Layout (names are a contract; see README):

    RUN/
      config.json          what was asked for (dataset options, recipe, overrides)
      provenance.json      versions, seed, data fingerprint, per-stage timings
      manifest.parquet     the dataset's manifest (all splits)
      problems.parquet     bad inputs found while reading the data
      stages/<name>.json   fingerprint of each finished stage's inputs (for skipping)
      checkpoints/         SSL checkpoints
      embeddings.npy       N_train x d float16, rows in manifest order of the train split
      heads/<head>/...     per-head records
      signals.parquet, audit.parquet, classes.parquet, metrics.json, report.html
      decisions.parquet    review decisions saved by the explorer

Every write goes to a temporary file in the same directory and is renamed into place, so a
reader never sees a half-written file and a killed run leaves the previous version intact.
A stage is skipped when the fingerprint of its inputs matches the recorded one and its outputs
exist.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from curator.log import to_jsonable

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
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


class RunDir:
    """A run directory with atomic I/O helpers and stage bookkeeping."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
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

    # --- stages ----------------------------------------------------------------------------
    def stage_record(self, stage: str) -> dict | None:
        return self.read_json(f"stages/{stage}.json")

    def is_fresh(self, stage: str, inputs_fp: str, outputs: list[str]) -> bool:
        rec = self.stage_record(stage)
        return bool(rec) and rec.get("inputs") == inputs_fp and all((self.path / o).exists() for o in outputs)

    def run_stage(self, stage: str, fn: Callable[[], Any], *, inputs: Any, outputs: list[str],
                  input_files: list[str] = ()) -> bool:
        """Run `fn()` unless the stage is up to date; return True if it ran.

        `inputs` is a JSON-able description (config values); `input_files` are run-dir-relative
        files whose content is part of the fingerprint (e.g. the embeddings a head reads).
        """
        files = {f: file_fingerprint(self.path / f) for f in input_files}
        fp = fingerprint({"inputs": inputs, "files": files})
        if self.is_fresh(stage, fp, outputs):
            LOG.info("stage %s: up to date, skipped", stage)
            return False
        t0 = time.perf_counter()
        LOG.info("stage %s: running", stage)
        fn()
        seconds = time.perf_counter() - t0
        missing = [o for o in outputs if not (self.path / o).exists()]
        if missing:
            raise RuntimeError(f"stage {stage} finished without writing {missing}")
        self.write_json(f"stages/{stage}.json", {"inputs": fp, "outputs": outputs, "seconds": round(seconds, 3),
                                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.record_timing(stage, seconds)
        LOG.info("stage %s: done in %.1f s (wrote %s)", stage, seconds, ", ".join(outputs))
        return True

    # --- provenance ------------------------------------------------------------------------
    def record_timing(self, stage: str, seconds: float) -> None:
        prov = self.read_json("provenance.json", {}) or {}
        prov.setdefault("timings_s", {})[stage] = round(seconds, 3)
        self.write_json("provenance.json", prov)

    def write_provenance(self, *, seed: int | None, data_fingerprint: str, extra: dict | None = None) -> None:
        prov = self.read_json("provenance.json", {}) or {}
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
        self.write_json("provenance.json", prov)
