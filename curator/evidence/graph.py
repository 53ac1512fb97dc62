"""The kNN graph of the training samples: built once, read by the signals, the audit and the explorer.

`knn_graph(features, k, ...)` indexes the standardised features (`curator.evidence.probe.standardise`)
with the one kNN engine (`curator.evidence.knn.build_index`: exact FAISS up to ``exact_max_n`` rows, IVF
tuned to a target recall above, exact GPU search when CUDA is present) and answers every sample's k
nearest other samples by cosine similarity. RUN/knn.npz holds it; `read_knn_graph` is its one reader.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curator.evidence.knn import build_index, prepare_vectors

WEIGHTINGS = ("similarity", "softmax", "uniform")


@dataclass
class KnnGraph:
    """Self-excluded kNN graph: row i lists sample i's k nearest other samples, best first."""

    indices: np.ndarray        # (N, k) int64 row positions among the training samples
    similarities: np.ndarray   # (N, k) float32 cosine similarity on the standardised features
    info: dict = field(default_factory=dict)   # backend, nlist, nprobe, tuned recall (RUN/provenance.json)

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def __post_init__(self) -> None:
        if self.indices.shape != self.similarities.shape or self.indices.ndim != 2:
            raise ValueError(f"kNN graph: indices {self.indices.shape} and similarities {self.similarities.shape} "
                             "must both be (N, k)")

    def weights(self, weighting: str = "similarity", temperature: float = 0.1) -> np.ndarray:
        """(N, k) non-negative vote weights of the neighbours: "similarity" max(s, 0), "softmax" exp(s / T)
        (the kNN monitor's weighting, Wu et al. 2018), "uniform" 1; a row of all zeros falls back to uniform."""
        s = np.asarray(self.similarities, dtype=np.float64)
        if weighting == "similarity":
            w = np.clip(s, 0.0, None)
        elif weighting == "softmax":
            w = np.exp((s - s.max(axis=1, keepdims=True)) / temperature)  # shift-invariant per row
        elif weighting == "uniform":
            w = np.ones_like(s)
        else:
            raise ValueError(f"unknown neighbour weighting {weighting!r}; use one of {WEIGHTINGS}")
        w[w.sum(axis=1) <= 0] = 1.0
        return w

    def votes(self, mass: np.ndarray, weighting: str = "similarity", temperature: float = 0.1) -> np.ndarray:
        """(N, C) weighted vote of every sample's neighbours: Σ_j w_ij · mass[j, c], where `mass` (N, C) is what
        each sample votes for (one-hot of its label, times a sample weight, or a belief over classes)."""
        from scipy.sparse import csr_matrix

        n, k = self.indices.shape
        w = self.weights(weighting, temperature)                       # (N, k)
        W = csr_matrix((w.ravel(), self.indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, len(mass)))
        return np.asarray(W @ np.asarray(mass, dtype=np.float64))      # (N, C), no (N, k, C) temporary


def knn_graph(features: np.ndarray, k: int, *, exact_max_n: int = 20_000, target_recall: float = 0.95,
              seed: int = 0, device=None) -> KnnGraph:
    """Self-kNN graph of `features` (N, d) float32 with k = min(k, N − 1) neighbours (cosine similarity); the
    engine picks the backend. To keep the peak memory at one copy of the features, a float32 C-contiguous
    `features` array is L2-normalised in place for the search and scaled back afterwards (exact up to float
    rounding)."""
    k = int(min(k, len(features) - 1))
    if k < 1:
        raise ValueError(f"a kNN graph needs at least 2 samples, got {len(features)}")
    norms = row_norms(features) if _in_place_ok(features) else None
    vectors = prepare_vectors(features, inplace=norms is not None)      # (N, d), normalised
    try:
        index = build_index(vectors, exact_max_n=exact_max_n, target_recall=target_recall, seed=seed, device=device,
                            prepared=True)
        sims, idx = index.self_knn(k)
        info = index.describe()
        del index
    finally:
        if norms is not None:
            for s in range(0, len(features), 65_536):                 # back to the caller's features
                features[s:s + 65_536] *= norms[s:s + 65_536]
    return KnnGraph(idx.astype(np.int64, copy=False), sims.astype(np.float32, copy=False), info)


def row_norms(x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """(N, 1) float32 L2 norms of the rows of x, computed in row chunks (no (N, d) temporary)."""
    out = np.empty((len(x), 1), np.float32)
    for s in range(0, len(x), chunk):
        out[s:s + chunk, 0] = np.linalg.norm(np.asarray(x[s:s + chunk], np.float32), axis=1)
    return out


def _in_place_ok(x: np.ndarray) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable


def write_knn_graph(path: str | os.PathLike, graph: KnnGraph, *, ids: str = "") -> None:
    """Write RUN/knn.npz atomically: ``indices``, ``similarities``, ``info`` (a JSON string) and ``ids``, the digest of
    the training sample ids (in order) the graph was computed for (`curator.data.cache.ids_digest`): row i and
    neighbour j are positions in that order."""
    from curator.rundir import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, indices=graph.indices, similarities=graph.similarities, info=np.array(json.dumps(graph.info)),
                     ids=np.array(ids))


def read_knn_graph(path: str | os.PathLike, *, ids: str | None = None) -> KnnGraph:
    """The one reader of RUN/knn.npz (no pickles). `DataError` naming the file when it is not a graph (keys, 2-D
    integer indices and float similarities of one shape, neighbours among its rows) or, with `ids`, when it was
    computed for other samples or another order (or before curator recorded them): read by position, it would
    give every sample another sample's neighbours."""
    from curator.atomic import check_regular
    from curator.data.problems import DataError

    path = Path(path)
    check_regular(path)
    rerun = "re-run `curator audit` on the run to recompute it"
    try:
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"])) if "info" in z.files else {}
            stored = str(z["ids"]) if "ids" in z.files else None
            idx, sims = np.asarray(z["indices"]), np.asarray(z["similarities"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{str(path)!r} is not a readable kNN graph ({str(exc)[:200]}); {rerun}") from None
    if (idx.ndim != 2 or sims.shape != idx.shape or not np.issubdtype(idx.dtype, np.integer)
            or not np.issubdtype(sims.dtype, np.floating) or not isinstance(info, dict)):
        raise DataError(f"{str(path)!r} is not a kNN graph (indices {idx.dtype} {idx.shape}, similarities "
                        f"{sims.dtype} {sims.shape}); {rerun}")
    if idx.size and (idx.min() < -1 or idx.max() >= len(idx)):
        raise DataError(f"{str(path)!r} names neighbours outside its {len(idx)} rows; {rerun}")
    if ids is not None and stored != ids:
        why = "was written before curator recorded which samples" if stored is None else "was computed for other samples"
        raise DataError(f"{str(path)!r} {why} (or another order of them) than the run's manifest holds; {rerun}")
    return KnnGraph(idx, sims, info)
