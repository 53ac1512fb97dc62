"""A manifest table (CSV or Parquet) listing images and labels; ``--root`` is the table file.

Columns: ``path`` (image path relative to the table's folder), ``label`` (class index or class
name); optional ``true_label`` (same kind), ``split`` (train/val/test, default train),
``sample_id`` (default: the path), ``trusted`` (bool, default false).

Class names: from ``classes.txt`` beside the table (one per line) when present; otherwise the
sorted unique names when labels are strings, else ``0..C-1`` with C = largest label + 1.
Reported problems: missing path or label, unknown class names (in ``label`` or ``true_label``),
labels out of range, bad split values, duplicate ids, paths escaping the folder, missing and
zero-byte files; empty classes are noted.
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
from curator.data.registry import AdapterSpec
from curator.data.validate import check_labels, check_paths, dedupe_ids, note_empty_classes

LOG = logging.getLogger(__name__)

BAD = -2  # sentinel for a label that could not be read (row reported)


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


def class_names_for(df: pd.DataFrame, table: Path, report: ProblemReport) -> list[str]:
    classes_txt = table.parent / "classes.txt"
    if classes_txt.is_file():
        names = [ln.strip() for ln in classes_txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(set(names)) != len(names):
            raise DataError(f"{str(classes_txt)!r} lists a class name more than once")
        return names
    col = df["label"].dropna()
    if _is_numeric(col):
        valid = col[(col >= 0) & (col == np.floor(col))]
        return [str(c) for c in range(int(valid.max()) + 1 if len(valid) else 0)]
    return sorted(col.astype(str).unique().tolist())


def encode_labels(col: pd.Series, names: list[str], which: str, df: pd.DataFrame, report: ProblemReport,
                  keep: np.ndarray, *, required: bool) -> np.ndarray:
    """Class indices for `col` (ints or names); unknown names / missing values reported (BAD / UNKNOWN)."""
    out = np.full(len(col), UNKNOWN, np.int64)
    present = col.notna().to_numpy()
    ids = df["_sid"].to_numpy()
    if _is_numeric(col.dropna()):
        values = col.to_numpy(dtype=np.float64)
        frac = present & (values != np.floor(np.nan_to_num(values)))
        out[present & ~frac] = values[present & ~frac].astype(np.int64)
        for i in np.flatnonzero(frac):
            keep[i] &= report.add(str(ids[i]), str(df["path"].iat[i]), "label_out_of_range", f"{which} {values[i]!r} is not a class index")
            out[i] = BAD
    else:
        index = {n: i for i, n in enumerate(names)}
        text = col.astype(str)
        for i in np.flatnonzero(present):
            c = index.get(text.iat[i])
            if c is None:
                keep[i] &= report.add(str(ids[i]), str(df["path"].iat[i]), "unknown_class",
                                      f"{which} {text.iat[i]!r} is not a known class name")
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

    names = class_names_for(df, table, report)
    label = encode_labels(df["label"], names, "label", df, report, keep, required=True)
    true = (encode_labels(df["true_label"], names, "true_label", df, report, keep, required=False)
            if "true_label" in df else np.full(len(df), UNKNOWN, np.int64))
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
    manifest = manifest[keep].reset_index(drop=True)
    manifest = dedupe_ids(manifest, report)
    manifest = check_labels(manifest, len(names), report, allow_unlabeled=True)
    manifest = check_paths(manifest, folder, relpaths, report, stat=bool(options.extra.get("stat_files", True)))
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
    AdapterSpec("csv", __name__, "a CSV manifest of image paths and labels", _LAYOUT, function="load_csv"),
    AdapterSpec("parquet", __name__, "a Parquet manifest of image paths and labels", _LAYOUT, function="load_parquet"),
]
