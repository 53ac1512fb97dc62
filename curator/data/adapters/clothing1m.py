"""Clothing1M in its official layout (Xiao et al., CVPR 2015; docs/datasets.md).

Root layout::

    images/<0-9>/<..>/<name>.jpg
    noisy_label_kv.txt          "images/x/yy/name.jpg <label 0-13>" per line (~1M lines)
    clean_label_kv.txt          same format (~72k lines)
    noisy_train_key_list.txt    one relative path per line
    clean_train_key_list.txt, clean_val_key_list.txt, clean_test_key_list.txt
    category_names_eng.txt      14 class names, one per line

``--label-set`` decides the training split:

- ``noisy`` (default): the noisy training list with its noisy labels; images that also have a
  clean label carry it as ``true_label`` (real ground truth for detection metrics), trusted=False;
- ``clean``: the clean training list with clean labels, trusted=True;
- ``both``: the union; an image with both labels gets label = noisy, true_label = clean,
  trusted=False; clean-only images get their clean label, trusted=True (a meta set for GDW).

``val`` / ``test`` come from the clean key lists with clean labels. Images are `FileImages` with
paths relative to the root; every path is checked (escaping the root, missing, zero-byte) with one
``stat`` per file (``extra={"stat_files": False}`` skips the stat). Long-tail subsampling is the
generic corruption tool (``--imbalance exp --gamma 50``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from curator.data.images import FileImages
from curator.data.manifest import UNKNOWN, Dataset, make_manifest
from curator.data.options import DatasetOptions
from curator.data.problems import DataError, ProblemReport
from curator.data.adapters.spec import AdapterSpec
from curator.data.validate import check_labels, check_paths, dedupe_ids, note_empty_classes

LOG = logging.getLogger(__name__)

N_CLASSES = 14
LABEL_SETS = ("noisy", "clean", "both")
FILES = {
    "noisy_kv": "noisy_label_kv.txt", "clean_kv": "clean_label_kv.txt",
    "noisy_train": "noisy_train_key_list.txt", "clean_train": "clean_train_key_list.txt",
    "clean_val": "clean_val_key_list.txt", "clean_test": "clean_test_key_list.txt",
    "names": "category_names_eng.txt",
}
OBTAIN = ("Clothing1M cannot be downloaded: its authors (Xiao et al., CVPR 2015) release it by request; put the "
          "release's files and images/ folder under --root as they come")
NEEDED = {"noisy": ("noisy_kv", "noisy_train"), "clean": ("clean_kv", "clean_train"),
          "both": ("noisy_kv", "clean_kv", "noisy_train", "clean_train")}


def read_key_list(path: Path) -> list[str]:
    """Relative paths, one per non-empty line."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_label_kv(path: Path, report: ProblemReport) -> pd.Series:
    """``path label`` lines -> Series label (int64) indexed by path; bad lines and repeats are reported."""
    try:  # fast path (1M lines in about a second): the C parser, labels checked after
        df = pd.read_csv(path, sep=" ", header=None, names=["path", "label"], dtype=str, engine="c",
                         skip_blank_lines=True, keep_default_na=False)
    except (pd.errors.ParserError, ValueError):
        df = None
    if df is not None:
        num = pd.to_numeric(df["label"], errors="coerce")
        bad = num.isna() | (num != num.round())
        for i in np.flatnonzero(bad.to_numpy())[:100]:
            report.note("bad_label_line", f"line {i + 1} is not '<path> <label>': {df['path'].iat[i]!r} {df['label'].iat[i]!r}", str(path))
        if bad.sum() > 100:
            report.note("bad_label_line", f"{int(bad.sum()) - 100} more malformed lines", str(path))
        df = df[~bad.to_numpy()]
        s = pd.Series(num[~bad].to_numpy(dtype=np.int64), index=pd.Index(df["path"].to_numpy(dtype=object), dtype=object))
        return _drop_repeats(s, path, report)
    keys, labels = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                report.note("bad_label_line", f"line {lineno} is not '<path> <label>': {line.strip()[:80]!r}", str(path))
                continue
            keys.append(parts[0])
            labels.append(int(parts[1]))
    s = pd.Series(np.asarray(labels, dtype=np.int64), index=pd.Index(keys, dtype=object))
    return _drop_repeats(s, path, report)


def _drop_repeats(s: pd.Series, path: Path, report: ProblemReport) -> pd.Series:
    dup = s.index.duplicated(keep="first")
    if dup.any():
        report.note("duplicate_label_entry", f"{int(dup.sum())} paths are listed more than once; the first label is used "
                    f"(e.g. {s.index[dup][0]!r})", str(path))
        s = s[~dup]
    return s


def read_class_names(path: Path, report: ProblemReport) -> list[str]:
    if not path.is_file():
        report.note("missing_class_names", f"{path.name} not found; classes are numbered 0..{N_CLASSES - 1}", str(path))
        return [str(c) for c in range(N_CLASSES)]
    names = read_key_list(path)
    if len(names) != N_CLASSES:
        report.note("class_names", f"{path.name} lists {len(names)} names (Clothing1M has {N_CLASSES})", str(path))
    return names


def _split_rows(keys: list[str], label_kv: pd.Series, truth_kv: pd.Series | None, split: str, trusted,
                report: ProblemReport, list_file: str) -> pd.DataFrame:
    """Rows for `keys` with labels from `label_kv` (missing labels reported, kept as -1 when kept)."""
    key_index = pd.Index(keys, dtype=object)
    label = label_kv.reindex(key_index).to_numpy(dtype=np.float64)
    missing = np.isnan(label)
    keep = np.ones(len(keys), dtype=bool)
    for i in np.flatnonzero(missing):
        keep[i] = report.add(keys[i], list_file, "missing_label", f"{keys[i]!r} from {list_file} has no label in the kv file")
    label = np.where(missing, -1, label).astype(np.int64)
    true = (np.full(len(keys), UNKNOWN, np.int64) if truth_kv is None
            else truth_kv.reindex(key_index).fillna(UNKNOWN).to_numpy(dtype=np.int64))
    trusted = np.broadcast_to(np.asarray(trusted, dtype=bool), (len(keys),))
    df = pd.DataFrame({"path": keys, "label": label, "true_label": true, "split": split, "trusted": trusted})
    return df[keep]


def load(options: DatasetOptions, report: ProblemReport) -> Dataset:
    root = Path(options.root)
    label_set = options.label_set or "noisy"
    if label_set not in LABEL_SETS:
        raise DataError(f"unknown --label-set {label_set!r} for clothing1m; choose from {', '.join(LABEL_SETS)}")
    paths = {k: root / v for k, v in FILES.items()}
    missing = [FILES[k] for k in NEEDED[label_set] if not paths[k].is_file()]
    if missing:  # every missing file at once, and where the dataset comes from
        optional = [v for k, v in FILES.items() if k not in NEEDED[label_set] and not paths[k].is_file()]
        raise DataError(f"clothing1m --label-set {label_set}: {str(root)!r} is missing {', '.join(missing)}"
                        + (f" (also absent, optional: {', '.join(optional)})" if optional else "")
                        + f". {OBTAIN}")
    names = read_class_names(paths["names"], report)
    noisy_kv = read_label_kv(paths["noisy_kv"], report) if paths["noisy_kv"].is_file() else pd.Series(dtype=np.int64)
    clean_kv = read_label_kv(paths["clean_kv"], report) if paths["clean_kv"].is_file() else pd.Series(dtype=np.int64)

    parts: list[pd.DataFrame] = []
    if label_set in ("noisy", "both"):
        keys = read_key_list(paths["noisy_train"])
        parts.append(_split_rows(keys, noisy_kv, clean_kv, "train", False, report, FILES["noisy_train"]))
    if label_set in ("clean", "both"):
        keys = read_key_list(paths["clean_train"])
        if label_set == "both":
            in_noisy = set(parts[0]["path"]) if parts else set()
            keys = [k for k in keys if k not in in_noisy]  # images with both labels are already in (label = noisy)
        parts.append(_split_rows(keys, clean_kv, clean_kv, "train", True, report, FILES["clean_train"]))
    for split, key in (("val", "clean_val"), ("test", "clean_test")):
        if paths[key].is_file():
            parts.append(_split_rows(read_key_list(paths[key]), clean_kv, clean_kv, split, True, report, FILES[key]))
        else:
            report.note("missing_split", f"{FILES[key]} not found; no {split} split", str(paths[key]))
    rows = pd.concat(parts, ignore_index=True)

    relpaths = rows["path"].tolist()
    manifest = make_manifest(relpaths, rows["label"].to_numpy(), source=relpaths, true_label=rows["true_label"].to_numpy(),
                             split=rows["split"].to_numpy(dtype=object), trusted=False)
    manifest["trusted"] = rows["trusted"].to_numpy(dtype=bool)
    manifest = dedupe_ids(manifest, report)
    manifest = check_labels(manifest, len(names), report, allow_unlabeled=True)
    manifest = check_paths(manifest, root, relpaths, report, stat=bool(options.extra.get("stat_files", True)),
                           missing_ok=bool(options.embeddings))
    note_empty_classes(manifest, names, report)
    n_train = int((manifest["split"] == "train").sum())
    n_overlap = int(((manifest["split"] == "train") & (manifest["true_label"] != UNKNOWN) & ~manifest["trusted"]).sum())
    LOG.info("clothing1m (%s): %d training images, %d of them with a clean label too", label_set, n_train, n_overlap)
    info = {"label_set": label_set, "n_noisy_with_clean_label": n_overlap}
    return Dataset("clothing1m", names, manifest, FileImages(root, relpaths), root, report, info)


ADAPTER_SPECS = [
    AdapterSpec("clothing1m", load,
                "Clothing1M (1M noisy-labelled clothing photos, 14 classes; --label-set noisy|clean|both)",
                "images/<0-9>/..., noisy_label_kv.txt, clean_label_kv.txt, noisy_train_key_list.txt, clean_train_key_list.txt, "
                "clean_val_key_list.txt, clean_test_key_list.txt, category_names_eng.txt"),
]
