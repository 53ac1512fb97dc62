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
from curator.data.problems import DataError
from curator.rundir import RunDir, check_regular, storage_error, write_parquet_atomic

ACTIONS = ("keep", "relabel", "drop")
COLUMNS = ["sample_id", "action", "new_label", "updated"]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"sample_id": pd.Series([], dtype=str), "action": pd.Series([], dtype=str),
                         "new_label": pd.Series([], dtype=np.int64), "updated": pd.Series([], dtype=str)})


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    lock_path = Path(run_dir) / "decisions.lock"
    try:
        fh = open(lock_path, "a+")
    except OSError as exc:   # a read-only run directory: one line, not a traceback in the explorer
        raise storage_error(exc, lock_path) or DataError(f"cannot open {str(lock_path)!r}: {exc.strerror}") from None
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def load_decisions(run_dir: str | os.PathLike, *, n_classes: int | None = None) -> pd.DataFrame:
    """The current decisions, one row per sample (empty frame if none were made), checked by `check_decisions`
    against `n_classes` (default: the class names RUN/config.json records)."""
    path = Path(run_dir) / runfiles.DECISIONS
    if not check_regular(path, missing_ok=True):
        return _empty()
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{str(path)!r} is not a table of review decisions ({str(exc)[:200]}); "
                        "move it away to start the review afresh") from None
    if n_classes is None:
        n_classes = recorded_n_classes(run_dir)
    return check_decisions(df, path, n_classes)


def recorded_n_classes(run_dir: str | os.PathLike) -> int | None:
    """The number of classes RUN/config.json names, or None when it does not say."""
    try:
        names = RunDir(run_dir, create=False).read_json(runfiles.CONFIG, {}).get("class_names")
    except DataError:
        return None
    return len(names) if isinstance(names, list) and names else None


def check_decisions(df: pd.DataFrame, path: str | os.PathLike, n_classes: int | None) -> pd.DataFrame:
    """`df` if every row is a decision a person can make — a sample id (text), a known action, ``new_label`` a
    whole number: a class in 0..n_classes-1 for ``relabel``, -1 otherwise; `DataError` naming the file, the
    column and the first bad row otherwise. Columns other than these are kept as they are."""
    where = str(path)
    missing = [c for c in ("sample_id", "action", "new_label") if c not in df.columns]
    if missing:
        raise DataError(f"{where!r} lacks column(s) {missing}; it is not a table of review decisions")

    def refuse(column: str, rows: np.ndarray, what: str) -> None:
        i = int(np.flatnonzero(rows)[0])
        raise DataError(f"{where!r}: column {column!r} of row {i} (sample {str(df['sample_id'].iloc[i])!r}) "
                        f"is {df[column].iloc[i]!r}, {what}; fix or remove the file")

    if not pd.api.types.is_integer_dtype(df["new_label"]) or pd.api.types.is_bool_dtype(df["new_label"]):
        bad = ~df["new_label"].map(lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)).to_numpy()
        refuse("new_label", bad if bad.any() else np.ones(len(df), bool), "not a whole number (a class index)")
    ids = df["sample_id"]
    bad = ~ids.map(lambda v: isinstance(v, str) and v != "").to_numpy(bool)
    if bad.any():
        refuse("sample_id", bad, "not a sample id")
    action = df["action"]
    bad = ~action.isin(ACTIONS).to_numpy(bool)
    if bad.any():
        refuse("action", bad, f"not one of {', '.join(ACTIONS)}")
    label = df["new_label"].to_numpy(np.int64)
    relabel = (action == "relabel").to_numpy(bool)
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    bad = relabel & ~((label >= 0) & (label < high))
    if bad.any():
        refuse("new_label", bad, f"not a class of this run (0..{high - 1})" if n_classes else "not a class index")
    bad = ~relabel & (label != -1)
    if bad.any():
        refuse("new_label", bad, "a label on a decision that is not relabel (-1 expected)")
    return df


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
        current = load_decisions(run_dir, n_classes=n_classes)
        current = current[~current["sample_id"].isin(ids)]
        if action != "clear" and ids:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            new = pd.DataFrame({"sample_id": ids, "action": action,
                                "new_label": np.int64(new_label if action == "relabel" else -1), "updated": now})
            current = pd.concat([current, new], ignore_index=True)
        current = current[COLUMNS].reset_index(drop=True)
        write_parquet_atomic(run_dir / runfiles.DECISIONS, current)
    return current
