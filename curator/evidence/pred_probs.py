"""The user's own out-of-sample predicted probabilities (`--pred-probs FILE`), cleanlab's input convention.

An (N, C) table of class probabilities for the training samples, each from a model that did not train on that
sample (cross-validated, e.g. scikit-learn ``cross_val_predict`` or cleanlab's
``estimate_cv_predicted_probabilities``). Two layouts:

- ``.npy``: a numeric (N, C) array, rows in the dataset's training order (manifest order, or subset order with
  ``--subset-indices``), columns in the dataset's class order (`curator datasets` / ``config.json`` lists them);
- ``.parquet``: a ``sample_id`` column and one numeric column per class *name*; rows are matched by sample id and
  columns by class name, so neither order matters. Rows for samples that are not training samples are ignored
  (their number is logged).

``--pred-probs-kind probs`` (default): every row must be non-negative and sum to 1 within `ROW_SUM_TOL` (rows are
then renormalised exactly); ``logits``: any finite values, turned into probabilities by a softmax.

Nothing is unpickled: ``np.load(allow_pickle=False)`` and pyarrow only; the path must be a regular file (a FIFO
or a device is refused before it is opened). Every problem raises one `DataError` naming the file, the row (and
its sample id) and what is wrong; `pipelines.prepare.prepare_run` checks the file before any stage runs.
"""
from __future__ import annotations

import logging
import stat
from pathlib import Path

import numpy as np

from curator.data.files import file_kind, load_user_npy
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)
KINDS = ("probs", "logits")
ROW_SUM_TOL = 0.01     # |Σ_c p_c − 1| allowed per row (probabilities rounded to 3 decimals over 10 classes pass)
#: in-sample look: the argmax agrees with the given label on at least this share of rows AND the mean probability
#: of the given label is at least IN_SAMPLE_CONFIDENCE (a model scoring its own training labels memorises them)
IN_SAMPLE_AGREEMENT = 0.99
IN_SAMPLE_CONFIDENCE = 0.95


def _where(path: Path) -> str:
    return f"--pred-probs file {str(path)!r}"


def _row(i: int, ids) -> str:
    return f"row {i}" + (f" (sample {str(ids[i])!r})" if ids is not None and i < len(ids) else "")


def _open(path: Path):
    """The file's raw content: an ndarray (.npy) or a pandas DataFrame (.parquet)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"{_where(path)} does not exist") from None
    except OSError as exc:
        raise DataError(f"{_where(path)} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{_where(path)} is {file_kind(st.st_mode)}; it must be a regular .npy or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_user_npy(path, _where(path))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pandas()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a malformed file
            raise DataError(f"{_where(path)} is not a readable Parquet file ({type(exc).__name__}: "
                            f"{str(exc)[:200]})") from None
    raise DataError(f"{_where(path)}: unsupported format {suffix!r} (use .npy, columns in class order, or .parquet "
                    "with a sample_id column and one column per class name)")


def _from_parquet(df, path: Path, sample_ids: np.ndarray, class_names: list[str], *, match_rows: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    if "sample_id" not in df.columns:
        raise DataError(f"{_where(path)} has no 'sample_id' column (a Parquet file is keyed by sample_id, with one "
                        "column per class name)")
    cols = [str(c) for c in df.columns if c != "sample_id"]
    missing = [c for c in class_names if c not in cols]
    extra = [c for c in cols if c not in class_names]
    if missing or extra:
        raise DataError(f"{_where(path)} has {len(cols)} class columns but the dataset has {len(class_names)} classes; "
                        + (f"missing: {missing[:5]}" if missing else "") + ("; " if missing and extra else "")
                        + (f"not a class of the dataset: {extra[:5]}" if extra else "")
                        + f" (the dataset's classes: {class_names[:10]}{' …' if len(class_names) > 10 else ''})")
    non_num = [c for c in class_names if df[c].dtype.kind not in "iuf"]
    if non_num:
        raise DataError(f"{_where(path)}: column {non_num[0]!r} is not numeric ({df[non_num[0]].dtype})")
    ids = df["sample_id"].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DataError(f"{_where(path)}: sample {dup.iloc[0]!r} has more than one row ({len(dup)} duplicated rows)")
    import pandas as pd

    pos = pd.Index(ids).get_indexer(pd.Index(np.asarray(sample_ids, dtype=str)))
    if not match_rows:   # before the images are checked: the rows there are for training samples, none required yet
        pos = pos[pos >= 0]
        return df[class_names].to_numpy(np.float64)[pos], ids.to_numpy()[pos]
    if (pos < 0).any():
        first = int(np.flatnonzero(pos < 0)[0])
        raise DataError(f"{_where(path)} has no row for training sample {str(sample_ids[first])!r} "
                        f"({int((pos < 0).sum())} of {len(sample_ids)} training samples missing)")
    if len(ids) > len(sample_ids):
        LOG.info("%s: %d rows are for samples that are not training samples of this dataset; ignored",
                 _where(path), len(ids) - len(sample_ids))
    return df[class_names].to_numpy(np.float64)[pos], np.asarray(sample_ids)


def read_pred_probs(path: str | Path, sample_ids, class_names: list[str], *, kind: str = "probs",
                    match_rows: bool = True, left_out=()) -> np.ndarray:
    """The (N, C) float32 probabilities for the training samples `sample_ids` (N,) in that order, classes in
    `class_names` order; `DataError` with one line naming the file, the row and the problem otherwise.

    ``match_rows=False`` is the check before the images are decoded, when unreadable images may still leave the
    training set: everything about the file itself (type, format, columns and class names, values) is checked, but
    not that its rows are exactly the training samples — a .npy file may have fewer rows than `sample_ids` (not
    more), a Parquet file may lack some of them — and the rows it has are returned. `left_out`: ids of samples the
    dataset's checks left out (unreadable images, ...), named when a .npy file has rows for them."""
    path = Path(path)
    if kind not in KINDS:
        raise DataError(f"--pred-probs-kind must be one of {', '.join(KINDS)}, got {kind!r}")
    sample_ids = np.asarray(sample_ids)
    n, C = len(sample_ids), len(class_names)
    raw = _open(path)
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "iuf":
            raise DataError(f"{_where(path)}: values are {raw.dtype}, not real numbers")
        if raw.ndim != 2:
            raise DataError(f"{_where(path)}: expected a 2-D array (samples x classes), got shape {raw.shape}")
        if raw.shape[1] != C:
            raise DataError(f"{_where(path)} has {raw.shape[1]} columns but the dataset has {C} classes "
                            f"({', '.join(class_names[:10])}{' …' if C > 10 else ''}), in that order")
        if raw.shape[0] != n and (match_rows or raw.shape[0] > n):
            left = [str(i) for i in left_out]
            hint = (f"; {len(left)} sample{'s were' if len(left) > 1 else ' was'} left out by the checks (unreadable or "
                    f"invalid: {', '.join(left[:3])}{' …' if len(left) > 3 else ''}): drop their rows, or give a "
                    ".parquet file keyed by sample_id" if left and raw.shape[0] == n + len(left) else "")
            raise DataError(f"{_where(path)} has {raw.shape[0]} rows but the dataset has {n} training samples (rows "
                            f"must follow the manifest's training order, or the subset order with --subset-indices)"
                            f"{hint}")
        P = np.asarray(raw, np.float64)
        ids = sample_ids if raw.shape[0] == n else None    # early, with rows still to drop: row numbers only
    else:
        P, ids = _from_parquet(raw, path, sample_ids, list(class_names), match_rows=match_rows)
    bad = ~np.isfinite(P).all(1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{_where(path)}: {_row(i, ids)} has NaN or inf ({int(bad.sum())} rows in all)")
    if kind == "logits":
        Z = P - P.max(1, keepdims=True)
        E = np.exp(Z)
        return (E / E.sum(1, keepdims=True)).astype(np.float32)
    neg = (P < 0).any(1)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DataError(f"{_where(path)}: {_row(i, ids)} has a negative probability ({P[i].min():.4g}; "
                        f"{int(neg.sum())} rows in all); for logits pass --pred-probs-kind logits")
    s = P.sum(1)
    off = np.abs(s - 1) > ROW_SUM_TOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(f"{_where(path)}: {_row(i, ids)} sums to {s[i]:.4g}, not 1 (±{ROW_SUM_TOL}; {int(off.sum())} "
                        "rows in all); each row must hold one sample's class probabilities, or pass "
                        "--pred-probs-kind logits for logits")
    return (P / s[:, None]).astype(np.float32)


def in_sample_warning(probs: np.ndarray, labels: np.ndarray) -> str | None:
    """A sentence when `probs` (N, C) look like in-sample predictions on the given `labels` (N,), else None."""
    y = np.asarray(labels, np.int64)
    if len(y) == 0:
        return None
    agree = float(np.mean(probs.argmax(1) == y))
    conf = float(np.mean(probs[np.arange(len(y)), y]))
    if agree >= IN_SAMPLE_AGREEMENT and conf >= IN_SAMPLE_CONFIDENCE:
        return (f"the --pred-probs probabilities look in-sample: their most probable class is the given label for "
                f"{100 * agree:.1f}% of samples, with mean probability {conf:.3f} on the given label. A model scoring "
                "the labels it was trained on reproduces them, wrong ones included, so such probabilities hide label "
                "errors; use out-of-fold probabilities (each sample predicted by a model that did not train on it, "
                "e.g. scikit-learn cross_val_predict or cleanlab's estimate_cv_predicted_probabilities)")
    return None
