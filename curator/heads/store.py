"""A head's outputs in the run directory: RUN/heads/<head>.npz and RUN/history/<head>.npz (one writer, one reader).

- ``heads/<head>.npz``: ``probs`` (N_train x C float32, in-sample), the head's signal columns under their
  contract names (e.g. ``lasl_sigma``), its extras (e.g. GDW ``omega``), ``signal_names`` and ``seconds``;
- ``history/<head>.npz``: per-epoch records, name -> (E, N_train) (``loss``, ``margin``, ``sigma``, ...).

Plain arrays only (no pickles): `np.load(..., allow_pickle=False)`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from curator import runfiles
from curator.heads.base import HeadResult

RESERVED = ("probs", "signal_names", "seconds")


def write_head(run_dir: str | Path, result: HeadResult) -> None:
    """Write both files of `result` atomically."""
    from curator.rundir import atomic_path

    arrays = {"probs": np.asarray(result.probs, np.float32),
              "signal_names": np.array(sorted(result.signals), dtype=str), "seconds": np.array(result.seconds)}
    for k, v in {**result.extras, **result.signals}.items():
        if k in RESERVED:
            raise ValueError(f"head {result.name}: output name {k!r} is reserved")
        arrays[k] = np.asarray(v)
    for name, payload in ((runfiles.head_file(result.name), arrays), (runfiles.history_file(result.name), result.history)):
        with atomic_path(Path(run_dir) / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in payload.items()})


def read_head(run_dir: str | Path, name: str, *, history: bool = True) -> HeadResult:
    """A head's outputs (model = None: models are not persisted); its history unless ``history=False``."""
    with np.load(Path(run_dir) / runfiles.head_file(name), allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    records = read_history(run_dir, name) if history else {}
    signal_names = [str(s) for s in data.pop("signal_names")]
    probs = data.pop("probs")
    seconds = float(data.pop("seconds", 0.0))
    signals = {k: data.pop(k) for k in signal_names}
    return HeadResult(name, probs, signals, records, data, None, seconds)


def read_history(run_dir: str | Path, name: str) -> dict[str, np.ndarray]:
    """A head's per-epoch records, name -> (E, N_train); empty when the file is absent."""
    p = Path(run_dir) / runfiles.history_file(name)
    if not p.exists():
        return {}
    with np.load(p, allow_pickle=False) as z:
        return {k: np.asarray(z[k]) for k in z.files}


def stored_heads(run_dir: str | Path) -> list[str]:
    """Names of the heads whose outputs the run directory holds."""
    d = Path(run_dir) / Path(runfiles.head_file("x")).parent
    return sorted(p.stem for p in d.glob("*.npz")) if d.exists() else []
