"""A manifest table (CSV or Parquet) listing images and labels; ``--root`` is the table file.

Columns: ``path`` (image path relative to the table's folder), ``label`` (class index or class
name); optional ``true_label`` (same kind), ``split`` (train/val/test, default train),
``sample_id`` (default: the path), ``trusted`` (bool, default false).

Class names: from ``classes.txt`` beside the table (one per line) when present; then a label
that is not one of them (a name, or an index outside 0..C-1) is a bad sample. Without it the
classes are inferred, and a note says so:

- string labels: the sorted unique names, except a *suspected typo* — a name used by at most 3
  rows that is one edit (or only case / spaces) away from a name used at least 10 times as often
  ("catt" next to "cat"): its rows are reported as ``unknown_class`` naming the likely class, not
  made into a new class;
- integer labels: ``0..C-1`` up to the largest label, except *outliers* — labels beyond a run of
  empty classes longer than the number of classes below it (``99`` among ``0..9``) that hold at
  most 1% of the rows: their rows are reported as ``label_out_of_range``, not made into 90 empty
  classes.

A label written as a negative number (``-1``) is not "unlabeled" but a reported
``label_out_of_range``; fractional, infinite and huge numbers too. Also reported: missing path or
label, unknown class names in ``true_label``, bad split values, duplicate ids, paths escaping the
folder, missing, zero-byte and non-regular files, symbolic links leaving the folder; empty classes
are noted. To include a class that really has so few samples, list the classes in ``classes.txt``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from curator.data.images import FileImages
from curator.data.manifest import SPLITS, UNKNOWN, Dataset, make_manifest
from curator.data.options import DatasetOptions
from curator.data.problems import DataError, ProblemReport
from curator.data.adapters.spec import AdapterSpec
from curator.data.validate import check_labels, check_paths, dedupe_ids, note_empty_classes

LOG = logging.getLogger(__name__)

BAD = -2  # sentinel for a label that could not be read (row reported)
TYPO_MAX_ROWS = 3       # a suspected typo is used by at most this many rows ...
TYPO_RATIO = 10         # ... and its near-twin by at least this many times as many
OUTLIER_MAX_SHARE = 0.01  # integer labels beyond a long run of empty classes: at most 1% of the rows
MAX_LABEL = 2**31 - 1


def read_table(path: Path, kind: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{kind} manifest {str(path)!r} does not exist or is not a file (--root must be the table file)")
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype={"path": str, "sample_id": str, "split": str}, keep_default_na=True)
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise DataError(f"cannot read {kind} manifest {str(path)!r}: {exc}") from None
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise DataError(f"{str(path)!r} lacks column(s) {missing}; needs path, label (optional true_label, split, sample_id, trusted)")
    return df.reset_index(drop=True)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def within_one_edit(a: str, b: str) -> bool:
    """True if `a` and `b` differ by at most one insertion, deletion, substitution or adjacent swap."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def suspected_typos(counts: dict[str, int]) -> dict[str, str]:
    """{rare name: the frequent name it most likely misspells} among inferred class names."""
    out: dict[str, str] = {}
    by_count = sorted(counts.items(), key=lambda kv: -kv[1])
    for name, n in counts.items():
        if n > TYPO_MAX_ROWS:
            continue
        for other, m in by_count:
            if other == name or m < TYPO_RATIO * n:
                continue
            if _norm(other) == _norm(name) or (len(other) >= 3 and within_one_edit(_norm(other), _norm(name))):
                out[name] = other
                break
    return out


def inferred_class_count(values: np.ndarray) -> int:
    """C for integer labels without classes.txt: up to the largest label, stopping before outliers.

    Walking the used labels upwards, a run of empty classes longer than the number of classes seen
    so far starts the outliers, if the rows above it are at most `OUTLIER_MAX_SHARE` of all.
    """
    if len(values) == 0:
        return 0
    used, n_rows = np.unique(values, return_counts=True)
    for k in range(1, len(used)):
        gap = int(used[k] - used[k - 1] - 1)
        if gap > k and n_rows[k:].sum() <= max(1, OUTLIER_MAX_SHARE * n_rows.sum()):
            return int(used[k - 1]) + 1
    return int(used[-1]) + 1


def class_names_for(df: pd.DataFrame, table: Path, report: ProblemReport) -> tuple[list[str], dict[str, str], bool]:
    """(class names, {suspected typo: likely class}, whether the names come from classes.txt)."""
    classes_txt = table.parent / "classes.txt"
    if classes_txt.is_file():
        try:
            text = classes_txt.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {str(classes_txt)!r}: {exc}") from None
        names = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise DataError(f"{str(classes_txt)!r} lists the class name {dup!r} more than once")
        if not names:
            raise DataError(f"{str(classes_txt)!r} lists no class names (one per line expected)")
        return names, {}, True
    col = df["label"].dropna()
    if _is_numeric(col):
        values = col.to_numpy(dtype=np.float64)
        values = values[np.isfinite(values) & (values >= 0) & (values == np.floor(values)) & (values <= MAX_LABEL)]
        n = inferred_class_count(values.astype(np.int64))
        names = [str(c) for c in range(n)]
        report.note("inferred_classes", f"no classes.txt beside the table: {n} classes 0..{n - 1} inferred from the integer "
                    "labels; put the class names in classes.txt (one per line) to name them and to have any other "
                    "label reported", str(table))
        return names, {}, False
    counts = col.astype(str).value_counts().to_dict()
    typos = suspected_typos(counts)
    names = sorted(n for n in counts if n not in typos)
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    report.note("inferred_classes", f"no classes.txt beside the table: {len(names)} classes inferred from the label names "
                f"({shown}); put the class names in classes.txt (one per line) to have any other name reported", str(table))
    return names, typos, False


def encode_labels(col: pd.Series, names: list[str], which: str, df: pd.DataFrame, report: ProblemReport,
                  keep: np.ndarray, *, required: bool, typos: dict[str, str] | None = None,
                  from_file: bool = True) -> np.ndarray:
    """Class indices for `col` (ints or names); unreadable values reported (BAD) and missing ones UNKNOWN.

    Integer labels: fractional / non-finite / huge values are reported; negative ones are left for
    `check_labels` (so they are reported in row order with the too-large ones); labels beyond the
    inferred classes (outliers, see `inferred_class_count`) are reported here with the reason.
    """
    out = np.full(len(col), UNKNOWN, np.int64)
    present = col.notna().to_numpy()
    ids = df["_sid"].to_numpy()
    range_kind = "true_label_out_of_range" if which == "true_label" else "label_out_of_range"
    if _is_numeric(col.dropna()):
        values = col.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        whole = present & finite & (values == np.floor(np.where(finite, values, 0))) & (np.abs(np.where(finite, values, 0)) <= MAX_LABEL)
        out[whole] = values[whole].astype(np.int64)
        for i in np.flatnonzero(present & ~whole):
            keep[i] &= report.add(str(ids[i]), str(df["path"].iat[i]), range_kind, f"{which} {values[i]!r} is not a class index")
            out[i] = BAD
        if not from_file and names:
            n = len(names)
            for i in np.flatnonzero(whole & (out >= n)):
                keep[i] &= report.add(str(ids[i]), str(df["path"].iat[i]), range_kind,
                                      f"{which} {int(out[i])} is far beyond the other labels (classes 0..{n - 1} inferred; "
                                      f"{int(out[i]) - n} classes in between would be empty): a typo? If it is a real class, "
                                      "list every class in classes.txt beside the table")
                out[i] = BAD
    else:
        index = {n: i for i, n in enumerate(names)}
        text = col.astype(str)
        for i in np.flatnonzero(present):
            c = index.get(text.iat[i])
            if c is None:
                hint = (typos or {}).get(text.iat[i])
                reason = (f"{which} {text.iat[i]!r} looks like a typo of class {hint!r} (used by few rows, one edit away "
                          "from a much larger class); fix the label, or list every class in classes.txt if it is real"
                          if hint else f"{which} {text.iat[i]!r} is not a known class name")
                keep[i] &= report.add(str(ids[i]), str(df["path"].iat[i]), "unknown_class", reason)
                out[i] = BAD
            else:
                out[i] = c
    if required:
        for i in np.flatnonzero(~present):
            keep[i] &= report.add(str(ids[i]), str(df["path"].iat[i]), "missing_label", f"row {i} has no {which}")
    return out


def _load(kind: str, options: DatasetOptions, report: ProblemReport) -> Dataset:
    table = Path(options.root)
    df = read_table(table, kind)
    folder = table.parent
    keep = np.ones(len(df), dtype=bool)
    path_ok = df["path"].notna().to_numpy() & (df["path"].astype(str).str.strip() != "").to_numpy()
    df["path"] = df["path"].where(path_ok, "").astype(str)
    df["_sid"] = df["sample_id"].astype(str).where(df["sample_id"].notna(), df["path"]) if "sample_id" in df else df["path"]
    df.loc[~path_ok & (df["_sid"] == ""), "_sid"] = [f"row{i}" for i in np.flatnonzero(~path_ok & (df["_sid"] == "").to_numpy())]

    names, typos, from_file = class_names_for(df, table, report)
    label = encode_labels(df["label"], names, "label", df, report, keep, required=True, typos=typos, from_file=from_file)
    true = (encode_labels(df["true_label"], names, "true_label", df, report, keep, required=False, typos=typos,
                          from_file=from_file)
            if "true_label" in df else np.full(len(df), UNKNOWN, np.int64))
    reported = (label == BAD) | ~df["label"].notna().to_numpy()  # already reported; kept (under keep) as -1
    split = df["split"].fillna("train").astype(str).str.strip().str.lower().to_numpy(dtype=object) if "split" in df \
        else np.full(len(df), "train", dtype=object)
    for i in np.flatnonzero(~np.isin(split, SPLITS)):
        keep[i] &= report.add(str(df["_sid"].iat[i]), str(df["path"].iat[i]), "bad_split",
                              f"split {split[i]!r} is not one of {', '.join(SPLITS)}")
        split[i] = "train"
    trusted = df["trusted"].fillna(False).astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy() if "trusted" in df \
        else np.zeros(len(df), dtype=bool)

    relpaths = df["path"].tolist()
    manifest = make_manifest(df["_sid"].tolist(), np.where(label == BAD, UNKNOWN, label), source=relpaths,
                             true_label=np.where(true == BAD, UNKNOWN, true), split=split, trusted=False)
    manifest["trusted"] = trusted
    manifest["_reported"] = reported
    manifest = manifest[keep].reset_index(drop=True)
    manifest = dedupe_ids(manifest, report)
    manifest = check_labels(manifest, len(names), report, allow_unlabeled=manifest["_reported"].to_numpy())
    manifest = manifest.drop(columns="_reported")
    manifest = check_paths(manifest, folder, relpaths, report, stat=bool(options.extra.get("stat_files", True)),
                           missing_ok=bool(options.embeddings))
    note_empty_classes(manifest, names, report)
    LOG.info("%s manifest %s: %d rows kept of %d, %d classes", kind, table, len(manifest), len(df), len(names))
    return Dataset(kind, names, manifest, FileImages(folder, relpaths), folder, report, {"table": str(table)})


def load_csv(options: DatasetOptions, report: ProblemReport) -> Dataset:
    return _load("csv", options, report)


def load_parquet(options: DatasetOptions, report: ProblemReport) -> Dataset:
    return _load("parquet", options, report)


_LAYOUT = ("the table file itself: columns path (relative to the table's folder), label (index or class name), "
           "optional true_label, split, sample_id, trusted; optional classes.txt beside it")
ADAPTER_SPECS = [
    AdapterSpec("csv", load_csv, "a CSV manifest of image paths and labels", _LAYOUT),
    AdapterSpec("parquet", load_parquet, "a Parquet manifest of image paths and labels", _LAYOUT),
]
