"""Loading user-supplied embeddings (`--embeddings FILE`, SPEC §10): .npy or .parquet.

Rows are in manifest order of the training split (or in subset order when a subset is given).
A .parquet file holds either one list/array column or several numeric columns (all used, in
order; a ``sample_id`` column, if present, is ignored). Every problem raises `DataError` naming the
file and what is wrong (missing, wrong row count, not 2-D, non-finite values).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from curator.data.problems import DataError


def load_embeddings_file(path: str | Path, expected_rows: int) -> np.ndarray:
    """Read `path` into an (expected_rows, d) float32 array, or raise `DataError` saying why not."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"embeddings file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        elif suffix == ".parquet":
            arr = _from_parquet(path)
        else:
            raise DataError(f"embeddings file {str(path)!r}: unsupported format {suffix!r} (use .npy or .parquet)")
    except DataError:
        raise
    except (ValueError, OSError) as exc:
        raise DataError(f"embeddings file {str(path)!r} cannot be read: {exc}") from None
    if arr.ndim != 2:
        raise DataError(f"embeddings file {str(path)!r}: expected a 2-D array (rows x dims), got shape {arr.shape}")
    if arr.shape[0] != expected_rows:
        raise DataError(f"embeddings file {str(path)!r} has {arr.shape[0]} rows but the dataset has {expected_rows} "
                        "training samples (rows must follow the manifest's training order, or the subset order)")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"embeddings file {str(path)!r}: values are {arr.dtype}, not numbers")
    out = np.asarray(arr, dtype=np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise DataError(f"embeddings file {str(path)!r}: row {int(np.flatnonzero(bad)[0])} has non-finite values "
                        f"({int(bad.sum())} rows in all)")
    return out


def _from_parquet(path: Path) -> np.ndarray:
    import pandas as pd

    df = pd.read_parquet(path)
    df = df.drop(columns=[c for c in ("sample_id",) if c in df.columns])
    if df.shape[1] == 0:
        raise DataError(f"embeddings file {str(path)!r} has no embedding columns")
    if df.shape[1] == 1 and df.dtypes.iloc[0] == object:
        try:
            return np.stack([np.asarray(v, dtype=np.float32) for v in df.iloc[:, 0]])
        except ValueError as exc:
            raise DataError(f"embeddings file {str(path)!r}: the vectors in column {df.columns[0]!r} "
                            f"differ in length or are not numeric ({exc})") from None
    non_num = [c for c in df.columns if not np.issubdtype(df[c].dtype, np.number)]
    if non_num:
        raise DataError(f"embeddings file {str(path)!r}: non-numeric column(s) {non_num}")
    return df.to_numpy(dtype=np.float32)
