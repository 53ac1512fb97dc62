"""Review decisions made by a person (in the explorer) on individual samples: an append-only log.

``RUN/decisions.parquet`` is a log: one row per decision ever made, never rewritten in place, with the
columns of `LOG_SCHEMA` (the one definition of the file's format; a validator checks against it):

    seq        int64  position in the log, 0, 1, 2, ... (the newest decision on a sample has the largest seq)
    batch      int64  the seq of the first row saved by the same action (a bulk decision is one batch)
    sample_id  str    the sample decided on
    action     str    "keep" (the given label is right), "relabel", "drop", or "clear" (back to the audit's choice)
    new_label  int64  the new class for "relabel", else -1
    reviewer   str    who decided (the explorer's "Reviewer" box; $CURATOR_REVIEWER or the login name by default)
    updated    str    UTC ISO time of the decision
    undoes     int64  for rows written by `undo_last`: the batch they undo, else -1

`record_decisions` saves one action for many samples, `record_batch` an action per sample (a duplicate group's
"keep one, drop the others"); each call is one batch. The current decision on a sample is its newest row
(a "clear" row means none). `load_decisions` returns exactly that, one row per decided sample, which is what `curator export` reads: the export contract is
unchanged. `undo_last` appends rows that restore each sample of a reviewer's newest batch to what it was
before that batch, so the log keeps the undone decision as well as the undo. Every update takes an
exclusive lock on ``RUN/decisions.lock``, re-reads the file, appends and atomically replaces it, so two
browser tabs or two processes never lose each other's decisions.

A file written before the log existed (columns sample_id, action, new_label, updated) is read as a log
of one batch per row, by reviewer "".
"""
from __future__ import annotations

import contextlib
import fcntl
import getpass
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
LOG_SCHEMA = {"seq": "int64", "batch": "int64", "sample_id": "str", "action": "str", "new_label": "int64",
              "reviewer": "str", "updated": "str", "undoes": "int64"}
LOG_ACTIONS = ACTIONS + ("clear",)
COLUMNS = ["sample_id", "action", "new_label", "reviewer", "updated"]  # load_decisions: the current decision per sample
REVIEWER_ENV = "CURATOR_REVIEWER"


def default_reviewer() -> str:
    """$CURATOR_REVIEWER, else the login name, else "reviewer"."""
    name = os.environ.get(REVIEWER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser() or "reviewer"
    except (OSError, KeyError):
        return "reviewer"


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object if t == "str" else t) for c, t in LOG_SCHEMA.items()})


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


def load_decision_log(run_dir: str | os.PathLike, *, n_classes: int | None = None) -> pd.DataFrame:
    """Every decision ever saved, oldest first, with the columns of `LOG_SCHEMA` (empty frame if none), checked
    by `check_decisions` against `n_classes` (default: the class names RUN/config.json records)."""
    path = Path(run_dir) / runfiles.DECISIONS
    if not check_regular(path, missing_ok=True):
        return _empty_log()
    try:
        log = pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{str(path)!r} is not a table of review decisions ({str(exc)[:200]}); "
                        "move it away to start the review afresh") from None
    if n_classes is None:
        n_classes = recorded_n_classes(run_dir)
    log = check_decisions(log, path, n_classes)
    if "seq" not in log.columns:  # the file before the log: the newest decision per sample only
        log = log.reset_index(drop=True)
        log["seq"] = np.arange(len(log), dtype=np.int64)
        log["batch"] = log["seq"]
        log["reviewer"] = ""
        log["undoes"] = np.int64(-1)
        if "updated" not in log.columns:
            log["updated"] = ""
    missing = [c for c in LOG_SCHEMA if c not in log.columns]
    if missing:
        raise DataError(f"{str(path)!r} lacks column(s) {missing} of the review log; it is not a decision log")
    log = log[list(LOG_SCHEMA)]
    log = log.assign(reviewer=log["reviewer"].astype(str), updated=log["updated"].astype(str))
    return log.sort_values("seq", kind="stable").reset_index(drop=True)


def current_decisions(log: pd.DataFrame) -> pd.DataFrame:
    """The newest row per sample of a decision log, "clear" rows dropped: columns `COLUMNS`."""
    if not len(log):
        return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c == "new_label" else object) for c in COLUMNS})
    last = log.sort_values("seq", kind="stable").drop_duplicates("sample_id", keep="last")
    last = last[last["action"] != "clear"]
    return last[COLUMNS].reset_index(drop=True)


def load_decisions(run_dir: str | os.PathLike, *, n_classes: int | None = None) -> pd.DataFrame:
    """The current decisions, one row per sample (newest wins; empty frame if none were made)."""
    return current_decisions(load_decision_log(run_dir, n_classes=n_classes))


def _append(run_dir: Path, rows: pd.DataFrame, n_classes: int | None = None) -> pd.DataFrame:
    """Append `rows` (without seq / batch) under the lock held by the caller; return the whole log."""
    log = load_decision_log(run_dir, n_classes=n_classes)
    start = int(log["seq"].max()) + 1 if len(log) else 0
    rows = rows.reset_index(drop=True).copy()
    rows["seq"] = np.arange(start, start + len(rows), dtype=np.int64)
    rows["batch"] = np.int64(start)
    rows["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log = pd.concat([log, rows[list(LOG_SCHEMA)]], ignore_index=True) if len(log) else rows[list(LOG_SCHEMA)]
    log = log.astype({c: t for c, t in LOG_SCHEMA.items() if t != "str"})
    write_parquet_atomic(run_dir / runfiles.DECISIONS, log)
    return log


def recorded_n_classes(run_dir: str | os.PathLike) -> int | None:
    """The number of classes RUN/config.json names, or None when it does not say."""
    try:
        names = RunDir(run_dir, create=False).read_json(runfiles.CONFIG, {}).get("class_names")
    except DataError:
        return None
    return len(names) if isinstance(names, list) and names else None


def check_decisions(df: pd.DataFrame, path: str | os.PathLike, n_classes: int | None) -> pd.DataFrame:
    """`df` if every row is a decision a person can make — a sample id (text), a known action, ``new_label`` a
    whole number: a class in 0..n_classes-1 for ``relabel``, -1 otherwise; in the log (`LOG_SCHEMA`) also
    ``clear``, and whole-number ``seq`` / ``batch`` / ``undoes``; `DataError` naming the file, the column and the
    first bad row otherwise. Columns other than these are kept as they are."""
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
    allowed = LOG_ACTIONS if "seq" in df.columns else ACTIONS  # "clear" rows exist only in the log
    bad = ~action.isin(allowed).to_numpy(bool)
    if bad.any():
        refuse("action", bad, f"not one of {', '.join(allowed)}")
    label = df["new_label"].to_numpy(np.int64)
    relabel = (action == "relabel").to_numpy(bool)
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    bad = relabel & ~((label >= 0) & (label < high))
    if bad.any():
        refuse("new_label", bad, f"not a class of this run (0..{high - 1})" if n_classes else "not a class index")
    bad = ~relabel & (label != -1)
    if bad.any():
        refuse("new_label", bad, "a label on a decision that is not relabel (-1 expected)")
    for column in ("seq", "batch", "undoes"):
        if column in df.columns and (not pd.api.types.is_integer_dtype(df[column])
                                     or pd.api.types.is_bool_dtype(df[column])):
            refuse(column, np.ones(len(df), bool), "not a whole number")
    return df


def record_decisions(run_dir: str | os.PathLike, sample_ids: Iterable[str], action: str,
                     new_label: int | None = None, *, n_classes: int | None = None,
                     reviewer: str | None = None) -> pd.DataFrame:
    """Save `action` for every id in `sample_ids` (bulk or single) as one batch; return the current decisions.

    ``action="clear"`` forgets earlier decisions on those samples (the log keeps them).
    """
    ids = [str(s) for s in sample_ids]
    return record_batch(run_dir, ids, [action] * len(ids), [new_label] * len(ids), n_classes=n_classes,
                        reviewer=reviewer)


def record_batch(run_dir: str | os.PathLike, sample_ids: Iterable[str], actions: Iterable[str],
                 new_labels: Iterable[int | None], *, n_classes: int | None = None,
                 reviewer: str | None = None) -> pd.DataFrame:
    """Save one decision per sample, each with its own action and new label (None unless "relabel"), as ONE batch
    (e.g. a duplicate group: keep one copy, drop the others), so one `undo_last` takes all of it back; return the
    current decisions."""
    ids, actions, labels = [str(s) for s in sample_ids], list(actions), list(new_labels)
    if not len(ids) == len(actions) == len(labels):
        raise ValueError(f"{len(ids)} sample ids, {len(actions)} actions and {len(labels)} labels: one of each per sample")
    for action, new_label in zip(actions, labels):
        if action not in LOG_ACTIONS:
            raise ValueError(f"unknown review action {action!r}; expected one of {LOG_ACTIONS}")
        if action == "relabel":
            if new_label is None:
                raise ValueError("relabel needs new_label")
            if n_classes is not None and not 0 <= int(new_label) < n_classes:
                raise ValueError(f"new_label {new_label} out of range 0..{n_classes - 1}")
    run_dir = Path(run_dir)
    with _locked(run_dir):
        if not ids:
            return load_decisions(run_dir, n_classes=n_classes)
        rows = pd.DataFrame({"sample_id": ids, "action": actions,
                             "new_label": np.array([int(lab) if a == "relabel" else -1 for a, lab in zip(actions, labels)],
                                                   np.int64),
                             "reviewer": reviewer if reviewer is not None else default_reviewer(),
                             "undoes": np.int64(-1)})
        return current_decisions(_append(run_dir, rows, n_classes))


def undo_last(run_dir: str | os.PathLike, reviewer: str | None = None) -> pd.DataFrame:
    """Undo `reviewer`'s newest batch that is not itself an undo and not yet undone: append rows restoring each
    of its samples to the decision it had just before that batch ("clear" where it had none). A sample decided
    again after that batch (by anyone) keeps its newer decision.

    Returns the rows appended (empty when there is nothing to undo)."""
    run_dir = Path(run_dir)
    reviewer = reviewer if reviewer is not None else default_reviewer()
    with _locked(run_dir):
        log = load_decision_log(run_dir)
        mine = log[(log["reviewer"] == reviewer) & (log["undoes"] < 0)]
        done = set(log.loc[log["undoes"] >= 0, "undoes"].tolist())
        batches = [b for b in mine["batch"].unique().tolist() if b not in done]
        if not batches:
            return _empty_log()
        batch = max(batches)
        live = log[(log["undoes"] < 0) & ~log["batch"].isin(done)]  # the decisions in force, undos set aside
        newest = live.drop_duplicates("sample_id", keep="last")
        ids = newest.loc[newest["batch"] == batch, "sample_id"].tolist()  # not those decided again since
        if not ids:
            return _empty_log()
        before = current_decisions(live[(live["seq"] < batch) & live["sample_id"].isin(ids)]).set_index("sample_id")
        rows = pd.DataFrame({"sample_id": ids,
                             "action": [before["action"].get(s, "clear") for s in ids],
                             "new_label": np.array([before["new_label"].get(s, -1) for s in ids], np.int64),
                             "reviewer": reviewer, "undoes": np.int64(batch)})
        log = _append(run_dir, rows)
        return log[log["undoes"] == batch].reset_index(drop=True)


def last_decision_by(log: pd.DataFrame, reviewer: str) -> pd.Series | None:
    """The newest row of `log` written by `reviewer` (an undo included), or None: where they left off."""
    mine = log[log["reviewer"] == reviewer]
    return None if not len(mine) else mine.iloc[int(np.argmax(mine["seq"].to_numpy()))]
