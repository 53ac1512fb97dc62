"""Loading user-supplied embeddings (`--embeddings FILE`, ARCHITECTURE.md): .npy or .parquet.

Rows are in manifest order of the training split (or in subset order when a subset is given).
A .parquet file holds either one list/array column or several numeric columns (all used, in
order; a ``sample_id`` column, if present, is ignored).

Every problem raises `DataError` naming the file and what is wrong, and `check_embeddings_file`
finds all of them before any stage runs (`pipelines.prepare.prepare_run`): a missing or
unreadable file, a pickled (object) array — never unpickled —, not 2-D, the wrong number of
rows, non-numeric or complex values, NaN / inf, and values that do not survive the run's float16
storage (beyond ±65504 they become inf; a row whose values are all below float16's resolution
becomes all zeros).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from curator.data.files import load_user_npy
from curator.data.problems import DataError

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: larger magnitudes become inf in RUN/embeddings.npy
CHUNK_ROWS = 65536


def _where(path: Path) -> str:
    return f"embeddings file {str(path)!r}"


def open_embeddings(path: str | Path) -> np.ndarray:
    """The file's array (memory-mapped for .npy) without checking its contents; DataError if unreadable."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{_where(path)} does not exist (--embeddings must name a .npy or .parquet file)")
    if not path.is_file():
        raise DataError(f"{_where(path)} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_user_npy(path, _where(path), mmap=True)
    if suffix == ".parquet":
        return _from_parquet(path)
    raise DataError(f"{_where(path)}: unsupported format {suffix!r} (use .npy or .parquet)")


def _check_layout(arr: np.ndarray, path: Path, expected_rows: int, n_skipped: int = 0) -> None:
    if arr.dtype.kind not in "iuf":
        what = {"c": "complex numbers", "b": "booleans", "O": "Python objects", "U": "strings", "S": "bytes",
                "V": "structured records"}.get(arr.dtype.kind, str(arr.dtype))
        raise DataError(f"{_where(path)}: values are {what} ({arr.dtype}); embeddings must be real numbers")
    if arr.ndim != 2:
        raise DataError(f"{_where(path)}: expected a 2-D array (rows x dims), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise DataError(f"{_where(path)}: the rows have no dimensions (shape {arr.shape})")
    if arr.shape[0] != expected_rows:
        skipped = (f"; {n_skipped} sample(s) were left out as bad input (see problems), so rows for them must not be "
                   "in the file either" if n_skipped else "")
        raise DataError(f"{_where(path)} has {arr.shape[0]} rows but the dataset has {expected_rows} training samples "
                        f"(rows must follow the manifest's training order, or the subset order{skipped})")


def _check_values(arr: np.ndarray, path: Path) -> None:
    """NaN / inf, float16 overflow and rows that vanish in float16, in chunks (no full copy)."""
    n_bad = n_big = n_zero = 0
    first_bad = first_big = first_zero = None
    peak = 0.0
    for start in range(0, arr.shape[0], CHUNK_ROWS):
        block = np.asarray(arr[start:start + CHUNK_ROWS], dtype=np.float64)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            n_bad += int(bad.sum())
            first_bad = first_bad if first_bad is not None else start + int(np.flatnonzero(bad)[0])
        finite = np.where(np.isfinite(block), block, 0.0)
        big = (np.abs(finite) > FLOAT16_MAX).any(axis=1)
        if big.any():
            n_big += int(big.sum())
            first_big = first_big if first_big is not None else start + int(np.flatnonzero(big)[0])
            peak = max(peak, float(np.abs(finite).max()))
        with np.errstate(over="ignore"):  # overflow is reported above
            vanish = (finite != 0).any(axis=1) & ~(finite.astype(np.float16) != 0).any(axis=1)
        if vanish.any():
            n_zero += int(vanish.sum())
            first_zero = first_zero if first_zero is not None else start + int(np.flatnonzero(vanish)[0])
    if n_bad:
        raise DataError(f"{_where(path)}: row {first_bad} has non-finite values (NaN or inf; {n_bad} rows in all)")
    if n_big:
        raise DataError(f"{_where(path)}: row {first_big} has values up to {peak:.4g}, beyond float16's ±{FLOAT16_MAX:g} "
                        f"({n_big} rows in all); the run stores embeddings as float16, where they would become inf. "
                        "Rescale them first (e.g. divide each row by its L2 norm)")
    if n_zero:
        raise DataError(f"{_where(path)}: row {first_zero} becomes all zeros in float16 (its values are below float16's "
                        f"resolution; {n_zero} rows in all); the run stores embeddings as float16. Rescale them first "
                        "(e.g. divide each row by its L2 norm)")


def check_embeddings_file(path: str | Path, expected_rows: int, *, n_skipped: int = 0) -> tuple[int, int]:
    """Raise `DataError` for anything that would make `load_embeddings_file` fail; return (rows, dims).

    Reads the values once in chunks (memory-mapped for .npy), so it is cheap to call before any stage.
    `n_skipped` (samples left out as bad input) only improves the wrong-row-count message.
    """
    path = Path(path)
    arr = open_embeddings(path)
    _check_layout(arr, path, expected_rows, n_skipped)
    _check_values(arr, path)
    return int(arr.shape[0]), int(arr.shape[1])


def load_embeddings_file(path: str | Path, expected_rows: int, dtype=np.float32) -> np.ndarray:
    """Read `path` into an (expected_rows, d) array of `dtype`, or raise `DataError` saying why not.

    The run stores float16 (`dtype=np.float16`: a float16 file is then not copied through float32)."""
    path = Path(path)
    arr = open_embeddings(path)
    _check_layout(arr, path, expected_rows)
    _check_values(arr, path)
    return np.asarray(arr, dtype=dtype)


def _from_parquet(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a malformed file
        raise DataError(f"{_where(path)} is not a readable Parquet file ({type(exc).__name__}: {str(exc)[:200]})") from None
    df = df.drop(columns=[c for c in ("sample_id",) if c in df.columns])
    if df.shape[1] == 0:
        raise DataError(f"{_where(path)} has no embedding columns")
    if df.shape[1] == 1 and df.dtypes.iloc[0] == object:
        try:
            vectors = [np.asarray(v, dtype=np.float64) for v in df.iloc[:, 0]]
            if any(v.ndim != 1 for v in vectors):
                raise ValueError("each cell must hold one vector")
            return np.stack(vectors) if vectors else np.zeros((0, 0))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{_where(path)}: the vectors in column {df.columns[0]!r} "
                            f"differ in length or are not numeric ({exc})") from None
    non_num = [c for c in df.columns
               if not pd.api.types.is_numeric_dtype(df[c].dtype) or pd.api.types.is_bool_dtype(df[c].dtype)
               or getattr(df[c].dtype, "kind", "O") not in "iuf"]
    if non_num:
        raise DataError(f"{_where(path)}: non-numeric column(s) {non_num}")
    return df.to_numpy(dtype=np.float64)
