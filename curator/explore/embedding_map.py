"""A 2-D map of the embeddings for the explorer, computed once and cached in RUN/umap.parquet.

UMAP (umap-learn, cosine metric) of RUN/embeddings.npy. Above `max_points` rows (default
50,000) the map is fitted on a subsample: every flagged sample (``is_label_issue``) is kept, up to
`max_points`, and the rest is filled with a uniform random draw, so the points a reviewer cares
about are always on the map. The stage is recorded with `RunDir.run_stage`: it re-runs only when
the embeddings file or the settings change. ``method="pca"`` gives a fast linear projection
(tests, or when UMAP is not wanted).

UMAP's first call in a process is mostly not the fit: importing umap-learn compiles its numba code, and
the first fit compiles more (on this project's 2-core machine, under load, `import umap` took 56 s and the
first fit of 737 points 18 s against 1.8 s for the second; a one-off measurement, not a benchmark). The
explorer therefore starts the UMAP map in a separate process as soon as it opens (`MapJob`) and shows a
PCA map of the same rows (`compute_map(method="pca")`, no compilation) until the UMAP map is ready.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.problems import DataError
from curator.data.cache import ids_digest
from curator.rundir import RunDir

LOG = logging.getLogger(__name__)

DEFAULT_MAX_POINTS = 50_000


def choose_map_rows(n: int, flagged: np.ndarray | None, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted row positions to place on the map: all rows, or flagged first plus a random rest."""
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(flagged) if flagged is not None else np.zeros(0, np.int64)
    if len(chosen) > max_points:
        chosen = rng.choice(chosen, max_points, replace=False)
    rest = np.setdiff1d(np.arange(n), chosen, assume_unique=True)
    fill = rng.choice(rest, max_points - len(chosen), replace=False)
    return np.sort(np.concatenate([chosen, fill]))


def project_2d(x: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """(N, d) -> (N, 2) float32 by UMAP (cosine) or PCA."""
    x = np.asarray(x, dtype=np.float32)
    if method == "umap" and len(x) > 15:
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), metric="cosine", random_state=seed,
                            low_memory=True)
        return reducer.fit_transform(x).astype(np.float32)
    if method not in ("umap", "pca"):
        raise ValueError(f"unknown map method {method!r}; expected 'umap' or 'pca'")
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(x).astype(np.float32)


def _run_with_embeddings(run_path: str | Path) -> RunDir:
    run = RunDir(run_path, create=False)
    if not run.exists(runfiles.EMBEDDINGS):
        raise DataError(f"run {str(run.path)!r} has no embeddings.npy, so there is no map (a run audited "
                        "with --pred-probs alone has no embeddings; add --embeddings FILE to get one)")
    return run


def compute_map(run_path: str | Path, *, max_points: int = DEFAULT_MAX_POINTS, method: str = "umap",
                seed: int = 0) -> pd.DataFrame:
    """The map computed now, not cached: columns sample_id, x, y (one row per mapped training sample)."""
    run = _run_with_embeddings(run_path)
    emb = run.read_npy(runfiles.EMBEDDINGS, mmap=True)                   # (N, d) float16
    manifest = run.read_parquet(runfiles.MANIFEST, columns=["sample_id", "split"])
    ids = manifest.loc[manifest["split"] == "train", "sample_id"].astype(str).to_numpy()
    if len(ids) != len(emb) or emb.ndim != 2:
        raise DataError(f"embeddings.npy has shape {emb.shape} but the manifest has {len(ids)} training samples")
    if run.recorded_ids("embed") != ids_digest(ids.tolist()):   # read by position: rows must be these samples
        raise DataError(f"{str(run / runfiles.EMBEDDINGS)!r} was not recorded as computed for the manifest's "
                        f"training samples in this order (reordered, or written before curator recorded them); "
                        f"re-run `curator audit --out {run.path}` to recompute it")
    flagged = None
    if run.exists(runfiles.AUDIT):
        audit = run.read_parquet(runfiles.AUDIT, columns=["sample_id", "is_label_issue"])
        pos = pd.Index(audit["sample_id"].astype(str)).get_indexer(ids)
        flagged = np.where(pos >= 0, audit["is_label_issue"].to_numpy(bool)[np.clip(pos, 0, None)], False)
    rows = choose_map_rows(len(ids), flagged, max_points, seed)
    LOG.info("explorer map: %s of %d of %d samples", method, len(rows), len(ids))
    xy = project_2d(np.asarray(emb[rows]), method, seed)              # (M, 2)
    return pd.DataFrame({"sample_id": ids[rows], "x": xy[:, 0], "y": xy[:, 1]})


def embedding_map(run_path: str | Path, *, max_points: int = DEFAULT_MAX_POINTS, method: str = "umap",
                  seed: int = 0) -> pd.DataFrame:
    """The cached map (RUN/umap.parquet, recomputed only when the embeddings or the settings change)."""
    run = _run_with_embeddings(run_path)

    def compute() -> None:
        run.write_parquet(runfiles.UMAP, compute_map(run.path, max_points=max_points, method=method, seed=seed))

    run.run_stage("umap", compute, inputs={"max_points": max_points, "method": method, "seed": seed,
                                           "embedded_for": run.recorded_ids("embed")},
                  outputs=[runfiles.UMAP], input_files=[runfiles.EMBEDDINGS])
    return run.read_parquet(runfiles.UMAP)


# One colour per class, all at least 3:1 contrast on white (WCAG's floor for graphics; tableau10's grey and
# yellow fall below it, which left class 9 nearly invisible); the first ten are ten distinct hues.
CLASS_PALETTE = ("#1f77b4", "#d62728", "#2e7d32", "#7b1fa2", "#e65100", "#00838f", "#c2185b", "#5d4037", "#3949ab",
                 "#827717", "#000000", "#ad1457", "#00695c", "#6a1b9a", "#bf360c", "#455a64", "#283593", "#558b2f",
                 "#4e342e", "#0277bd")


def class_colours(n_classes: int) -> list[str]:
    """A colour for each of `n_classes` classes (the palette repeats beyond its 20 colours)."""
    return [CLASS_PALETTE[c % len(CLASS_PALETTE)] for c in range(n_classes)]


def contrast_on_white(colour: str) -> float:
    """WCAG 2 contrast ratio of a ``#rrggbb`` colour against white."""
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


class MapJob:
    """`embedding_map` computed in a separate process (``python -m curator.explore.embedding_map RUN METHOD N``;
    started once per explorer process and run), so UMAP's import and numba compilation neither hold this
    process's GIL nor its import locks while the explorer draws pages (a thread did: the PCA map waited for
    them). A plain subprocess, not multiprocessing: a spawned child would re-run the Streamlit script."""

    def __init__(self, run_path: str | Path, method: str = "umap", max_points: int = DEFAULT_MAX_POINTS):
        import subprocess
        import sys
        import tempfile
        import threading

        self._lock = threading.Lock()
        self.run_path, self.method, self.max_points = str(run_path), method, max_points
        self.error: str | None = None
        self._result: pd.DataFrame | None = None
        self._answered = False
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", "curator.explore.embedding_map", self.run_path, method,
                                       str(max_points)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr)

    @property
    def done(self) -> bool:
        if self._proc.poll() is None:
            return False
        with self._lock:  # several browser sessions share one job
            if not self._answered:
                self._answered = True
                if self._proc.returncode != 0:
                    self._stderr.seek(0)
                    lines = [x for x in self._stderr.read().decode("utf-8", "replace").splitlines() if x.strip()]
                    self.error = lines[-1] if lines else f"the {self.method} map failed (exit code {self._proc.returncode})"
                self._stderr.close()
        return True

    @property
    def result(self) -> pd.DataFrame | None:
        """The map (read from RUN/umap.parquet, which the process wrote) once it is done without error."""
        if self._result is None and self.done and self.error is None:
            self._result = embedding_map(self.run_path, max_points=self.max_points, method=self.method)
        return self._result

    def wait(self, timeout: float | None = None) -> bool:
        import subprocess

        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return self.done


def _main(argv: list[str]) -> int:
    """MapJob's process: compute and cache the map; on failure one line on stderr (the reason) and exit 1."""
    import sys

    run_path, method, max_points = argv[0], argv[1], int(argv[2])
    try:
        embedding_map(run_path, max_points=max_points, method=method)
    except DataError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except Exception as exc:  # shown on the map page; the PCA map stays
        print(f"{method} map failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def samples_in_region(points: pd.DataFrame, x_range: tuple[float, float], y_range: tuple[float, float]) -> pd.DataFrame:
    """Rows of `points` (with x, y columns) inside the rectangle x_range × y_range."""
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    inside = (x >= min(x_range)) & (x <= max(x_range)) & (y >= min(y_range)) & (y <= max(y_range))
    return points[inside]


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
