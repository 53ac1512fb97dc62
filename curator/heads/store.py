"""A head's outputs in the run directory: RUN/heads/<head>.npz and RUN/history/<head>.npz (one writer, one reader).

- ``heads/<head>.npz``: ``probs`` (N_train x C float32, in-sample), the head's signal columns under their
  contract names (e.g. ``lasl_sigma``), its extras (e.g. GDW ``omega``), ``signal_names`` and ``seconds``;
- ``history/<head>.npz``: per-epoch records, name -> (E, N_train) (``loss``, ``margin``, ``sigma``, ...).

Plain arrays only (no pickles): `np.load(..., allow_pickle=False)`.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from curator import runfiles
from curator.heads.base import HeadResult

RESERVED = ("probs", "signal_names", "seconds", "ids")


def write_head(run_dir: str | Path, result: HeadResult, *, ids: str = "") -> None:
    """Write both files of `result` atomically; ``ids`` (in heads/<head>.npz) is the digest of the training sample
    ids, in order, whose rows the arrays hold (`curator.data.cache.ids_digest`)."""
    from curator.rundir import atomic_path

    arrays = {"probs": np.asarray(result.probs, np.float32),
              "signal_names": np.array(sorted(result.signals), dtype=str), "seconds": np.array(result.seconds),
              "ids": np.array(ids)}
    for k, v in {**result.extras, **result.signals}.items():
        if k in RESERVED:
            raise ValueError(f"head {result.name}: output name {k!r} is reserved")
        arrays[k] = np.asarray(v)
    for name, payload in ((runfiles.head_file(result.name), arrays), (runfiles.history_file(result.name), result.history)):
        with atomic_path(Path(run_dir) / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in payload.items()})


def read_head(run_dir: str | Path, name: str, *, history: bool = True, ids: str | None = None) -> HeadResult:
    """A head's outputs (model = None: models are not persisted); its history unless ``history=False``.

    `DataError` naming the file when it is not a head's record (keys, 2-D float probabilities, per-sample arrays of
    as many rows) or, with `ids`, when it was written for other samples or another order (or before curator
    recorded them): its arrays are read by position."""
    from curator.atomic import check_regular
    from curator.data.problems import DataError

    path = Path(run_dir) / runfiles.head_file(name)
    check_regular(path)
    rerun = "re-run `curator audit` on the run to recompute it"
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        signal_names = [str(s) for s in data.pop("signal_names")]
        probs = data.pop("probs")
        seconds = float(data.pop("seconds", 0.0))
        stored = str(data.pop("ids")) if "ids" in data else None
        signals = {k: data.pop(k) for k in signal_names}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{str(path)!r} is not a head's record ({str(exc)[:200]}); {rerun}") from None
    if probs.ndim != 2 or not np.issubdtype(probs.dtype, np.floating) or any(
            np.ndim(v) < 1 or len(v) != len(probs) for v in signals.values()):
        raise DataError(f"{str(path)!r} is not a head's record (probabilities {probs.dtype} {probs.shape}); {rerun}")
    if ids is not None and stored != ids:
        why = "was written before curator recorded which samples" if stored is None else "was written for other samples"
        raise DataError(f"{str(path)!r} {why} (or another order of them) than the run's manifest holds; {rerun}")
    records = read_history(run_dir, name) if history else {}
    return HeadResult(name, probs, signals, records, data, None, seconds)


def read_history(run_dir: str | Path, name: str) -> dict[str, np.ndarray]:
    """A head's per-epoch records, name -> (E, N_train); empty when the file is absent."""
    from curator.atomic import check_regular
    from curator.data.problems import DataError

    p = Path(run_dir) / runfiles.history_file(name)
    if not check_regular(p, missing_ok=True):
        return {}
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{str(p)!r} is not a head's history ({str(exc)[:200]}); re-run `curator audit` on the run "
                        "to recompute it") from None


def stored_heads(run_dir: str | Path) -> list[str]:
    """Names of the heads whose outputs the run directory holds."""
    d = Path(run_dir) / Path(runfiles.head_file("x")).parent
    return sorted(p.stem for p in d.glob("*.npz")) if d.exists() else []
