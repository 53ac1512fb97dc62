"""Review decisions made by a person (in the explorer) on individual samples.

Stored in ``RUN/decisions.parquet`` with columns ``sample_id``, ``action`` ("keep", "relabel",
"drop"), ``new_label`` (int, -1 unless relabel), ``updated`` (UTC ISO time). Every update takes an
exclusive lock on ``RUN/decisions.lock``, re-reads the file, merges (the newest decision per sample
wins) and atomically replaces it, so two browser tabs or two processes never lose each other's
decisions. `curator export` reads them and lets them override the automatic flags.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from curator import runfiles
from curator.rundir import write_parquet_atomic

ACTIONS = ("keep", "relabel", "drop")
COLUMNS = ["sample_id", "action", "new_label", "updated"]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"sample_id": pd.Series([], dtype=str), "action": pd.Series([], dtype=str),
                         "new_label": pd.Series([], dtype=np.int64), "updated": pd.Series([], dtype=str)})


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    lock_path = Path(run_dir) / "decisions.lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def load_decisions(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The current decisions, one row per sample (empty frame if none were made)."""
    path = Path(run_dir) / runfiles.DECISIONS
    if not path.exists():
        return _empty()
    return pd.read_parquet(path)


def record_decisions(run_dir: str | os.PathLike, sample_ids: Iterable[str], action: str,
                     new_label: int | None = None, *, n_classes: int | None = None) -> pd.DataFrame:
    """Save `action` for every id in `sample_ids` (bulk or single); return the merged decisions.

    ``action="clear"`` removes earlier decisions for those samples.
    """
    ids = [str(s) for s in sample_ids]
    if action not in ACTIONS and action != "clear":
        raise ValueError(f"unknown review action {action!r}; expected one of {ACTIONS + ('clear',)}")
    if action == "relabel":
        if new_label is None:
            raise ValueError("relabel needs new_label")
        if n_classes is not None and not 0 <= int(new_label) < n_classes:
            raise ValueError(f"new_label {new_label} out of range 0..{n_classes - 1}")
    run_dir = Path(run_dir)
    with _locked(run_dir):
        current = load_decisions(run_dir)
        current = current[~current["sample_id"].isin(ids)]
        if action != "clear" and ids:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            new = pd.DataFrame({"sample_id": ids, "action": action,
                                "new_label": np.int64(new_label if action == "relabel" else -1), "updated": now})
            current = pd.concat([current, new], ignore_index=True)
        current = current[COLUMNS].reset_index(drop=True)
        write_parquet_atomic(run_dir / runfiles.DECISIONS, current)
    return current
