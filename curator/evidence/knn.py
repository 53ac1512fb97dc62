"""k-nearest-neighbour search behind one interface (docs/signals.md, docs/scale.md).

``build_index(embeddings)`` returns a `KnnIndex`; ``index.search(queries, k)`` and
``index.self_knn(k)`` answer with ``(similarities, indices)``. Which engine runs is decided here
and nowhere else; callers read ``index.backend`` only to report it:

- ``faiss-gpu-flat``   a CUDA device is used and ``faiss.get_num_gpus() > 0`` (faiss-gpu-cu12);
- ``torch-exact``      a CUDA device without faiss-gpu (or no faiss at all): chunked matrix
                       product + top-k in torch (fp16 on CUDA, fp32 accumulation inside the GEMM;
                       the k winners' similarities are then recomputed in fp32);
- ``faiss-cpu-flat``   FAISS ``IndexFlatIP`` on the CPU, exact, up to ``exact_max_n`` rows;
- ``faiss-cpu-ivf``    FAISS ``IndexIVFScalarQuantizer`` (fp16 storage: half the memory of a float32
                       copy) above it, the winners' similarities recomputed in fp32 (`rescore`): nlist ≈ √N
                       inverted lists, and
                       ``nprobe`` raised (1, 2, 4, ...) until recall@10 of a sample of self-queries
                       against exact search reaches ``target_recall`` (0.95 by default). A large
                       query batch (the self-kNN graph) is answered list by list with matrix
                       products (FAISS's ``contrib.big_batch_search``): the same neighbours as
                       FAISS's per-query IVF scan, about 3x faster on a CPU (docs/scale.md).

FAISS is imported lazily, so the module works (via torch) where it is not installed.
Metric "cosine" L2-normalises rows and searches by inner product; "ip" uses raw inner products.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from curator.data.problems import DataError

LOG = logging.getLogger(__name__)

DEFAULT_EXACT_MAX_N = 20_000
BATCHED_IVF_MIN_QUERIES = 4_096   # IVF queries in one call from which the list-by-list batched search is used
BACKENDS = ("faiss-gpu-flat", "torch-exact", "faiss-cpu-flat", "faiss-cpu-ivf")


def _import_faiss():
    """faiss or None (it is optional: the GPU machine may have only torch)."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError:
        return None
    return faiss


def prepare_vectors(embeddings: np.ndarray, metric: str = "cosine", *, inplace: bool = False,
                    chunk: int = 65_536) -> np.ndarray:
    """(N, d) any float dtype -> (N, d) C-contiguous float32, L2-normalised for "cosine".

    Works in row chunks, so no (N, d) temporary is made besides the float32 result; with ``inplace`` a float32
    C-contiguous input is normalised in place and returned (no copy at all). Raises DataError naming the first
    row that is not finite, or that has zero norm under cosine.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (rows x dims), got shape {x.shape}")
    if metric not in ("cosine", "ip"):
        raise ValueError(f"unknown metric {metric!r}; use 'cosine' or 'ip'")
    if not (inplace and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.writeable):
        x = np.array(x, dtype=np.float32, order="C")                 # the one copy
    for s in range(0, len(x), chunk):
        block = x[s:s + chunk]                                        # a view: edits land in x
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            raise DataError(f"embedding row {s + int(np.flatnonzero(~finite)[0])} contains NaN or infinity")
        if metric == "cosine":
            norms = np.linalg.norm(block, axis=1, keepdims=True)      # (chunk, 1)
            if (norms == 0).any():
                raise DataError(f"embedding row {s + int(np.flatnonzero(norms[:, 0] == 0)[0])} is all zeros; "
                                "cosine similarity is undefined")
            block /= norms
    return x


def drop_self(sims: np.ndarray, idx: np.ndarray, query_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From (Q, k+1) results of querying rows `query_ids` against themselves, keep k non-self ones.

    Self is removed wherever it appears (exact duplicates may tie with it); if it is absent, the
    last (weakest) neighbour is dropped instead. Order is preserved.
    """
    is_self = idx == query_ids[:, None]                       # (Q, k+1)
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]  # non-self first, original order kept
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(idx, order, axis=1)


@dataclass
class KnnIndex:
    """An index over N database vectors; see the module docstring for the backends."""

    backend: str
    vectors: np.ndarray                  # (N, d) float32, normalised for cosine
    metric: str = "cosine"
    device: str = "cpu"
    nlist: int | None = None
    nprobe: int | None = None
    tuned_recall: float | None = None
    build_seconds: float = 0.0
    _faiss_index: Any = field(default=None, repr=False)
    _torch_db: Any = field(default=None, repr=False)
    _torch_db32: Any = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def describe(self) -> dict:
        return {"backend": self.backend, "device": self.device, "n": self.n, "dim": self.dim, "metric": self.metric,
                "nlist": self.nlist, "nprobe": self.nprobe, "tuned_recall": self.tuned_recall,
                "build_seconds": round(self.build_seconds, 3)}

    def search(self, queries: np.ndarray, k: int, *, prepared: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """k nearest database rows for each query: ((Q, k) float32 similarities, (Q, k) int64 indices),
        best first. Queries are normalised like the database unless `prepared`."""
        if k < 1 or k > self.n:
            raise ValueError(f"k={k} must be between 1 and the number of indexed rows ({self.n})")
        q = queries if prepared else prepare_vectors(queries, self.metric)
        if self.backend == "faiss-cpu-ivf":   # fp16-stored vectors: the k winners re-scored in fp32
            found = (batched_ivf_search(self._faiss_index, q, k) if len(q) >= BATCHED_IVF_MIN_QUERIES
                     else self._faiss_index.search(np.ascontiguousarray(q, dtype=np.float32), k))
            return rescore(self.vectors, q, found[1])
        if self._faiss_index is not None:
            sims, idx = self._faiss_index.search(np.ascontiguousarray(q, dtype=np.float32), k)
            return sims.astype(np.float32, copy=False), idx.astype(np.int64, copy=False)
        return torch_exact_search(self._torch_db, q, k, db32=self._torch_db32)

    def self_knn(self, k: int, *, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        """k nearest neighbours of every indexed row among the others (self excluded):
        ((N, k) float32 similarities, (N, k) int64 row positions)."""
        if k >= self.n:
            raise ValueError(f"k={k} neighbours need more than {self.n} rows")
        t0 = time.perf_counter()
        sims = np.empty((self.n, k), np.float32)
        idx = np.empty((self.n, k), np.int64)
        if self.backend == "faiss-cpu-ivf":    # one batch: every inverted list is read once, for all its queries
            batch = self.n
        for s in range(0, self.n, batch):
            e = min(self.n, s + batch)
            sv, iv = self.search(self.vectors[s:e], k + 1, prepared=True)
            sims[s:e], idx[s:e] = drop_self(sv, iv, np.arange(s, e), k)
        short = np.flatnonzero((idx < 0).any(axis=1))      # IVF: the probed lists held fewer than k other rows
        if len(short):
            sv, iv = torch_exact_search(torch.from_numpy(self.vectors), self.vectors[short], k + 1)
            sims[short], idx[short] = drop_self(sv, iv, short, k)
        LOG.info("self-kNN k=%d over %d rows with %s in %.1f s", k, self.n, self.backend, time.perf_counter() - t0)
        return sims, idx


def torch_exact_search(db: torch.Tensor, queries: np.ndarray, k: int, *, db32: torch.Tensor | None = None,
                       max_block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product in torch: chunked (Qc, d) @ (d, N) + top-k.

    `db` is (N, d) on the compute device (fp16 on CUDA, fp32 on the CPU). On reduced precision
    the top-k set is chosen from the fp16 scores and their similarities recomputed in fp32 from
    `db32`, a float32 copy of the database on the same device (or from `db` upcast when it is
    not given), then re-sorted. Returns ((Q, k) float32, (Q, k) int64) on the CPU.
    """
    n = db.shape[0]
    if max_block is None:  # elements of one (chunk, N) score block: 2 GB fp16 on CUDA, 256 MB fp32 on the CPU
        max_block = 1 << 30 if db.device.type == "cuda" else 1 << 26
    chunk = max(1, min(8192, max_block // max(n, 1)))  # (chunk, N) score block stays ≤ max_block elements
    out_s = np.empty((len(queries), k), np.float32)
    out_i = np.empty((len(queries), k), np.int64)
    q_all = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    with torch.no_grad():
        for s in range(0, len(queries), chunk):
            q = q_all[s:s + chunk].to(db.device, non_blocking=True)      # (Qc, d) float32
            scores = q.to(db.dtype) @ db.T                               # (Qc, N)
            top_s, top_i = torch.topk(scores, k, dim=1)                  # (Qc, k)
            if db.dtype != torch.float32:
                cand = (db32 if db32 is not None else db)[top_i].float()  # (Qc, k, d)
                top_s = torch.einsum("qd,qkd->qk", q, cand)              # fp32 similarities
                top_s, order = torch.sort(top_s, dim=1, descending=True)
                top_i = torch.gather(top_i, 1, order)
            out_s[s:s + chunk] = top_s.float().cpu().numpy()
            out_i[s:s + chunk] = top_i.cpu().numpy()
    return out_s, out_i


def rescore(db: np.ndarray, queries: np.ndarray, idx: np.ndarray, chunk: int = 4_096
            ) -> tuple[np.ndarray, np.ndarray]:
    """Exact float32 inner products of each query (Q, d) with its candidates `idx` (Q, k) among the rows of
    `db` (N, d), re-sorted best first; a -1 candidate (none found) scores -inf and stays last. Computed in query
    chunks, so the (chunk, k, d) gather is the only temporary."""
    sims = np.empty(idx.shape, np.float32)
    out = np.empty_like(idx)
    for s in range(0, len(idx), chunk):
        cand = idx[s:s + chunk]
        sc = np.einsum("qd,qkd->qk", queries[s:s + chunk], db[np.maximum(cand, 0)])   # (c, k)
        sc[cand < 0] = -np.inf
        order = np.argsort(-sc, axis=1, kind="stable")
        sims[s:s + chunk] = np.take_along_axis(sc, order, axis=1)
        out[s:s + chunk] = np.take_along_axis(cand, order, axis=1)
    return sims, out


def batched_ivf_search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Search a FAISS IVF `index` (flat or scalar-quantised lists; its nprobe as set) for many `queries` (Q, d) float32 at once.

    FAISS's own IVF search scans each query's lists one vector at a time; `faiss.contrib.big_batch_search`
    groups the queries by inverted list and scores each list against all its queries with one matrix product,
    which a CPU runs at BLAS speed. Within the probed lists both are exact, so the answers are the same.
    That contrib module reports progress with print(); it goes to /dev/null, not to our stdout (which may
    carry `--json`). Returns ((Q, k) float32 similarities, (Q, k) int64 indices), best first.
    """
    from faiss.contrib.big_batch_search import big_batch_search  # noqa: PLC0415

    q = np.ascontiguousarray(queries, dtype=np.float32)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        sims, idx = big_batch_search(index, q, k, method="knn_function")
    return sims.astype(np.float32, copy=False), idx.astype(np.int64, copy=False)


def _ivf_nlist(n: int) -> int:
    """nlist ≈ √N, with at least 39 training points per list (FAISS's own floor). Lists of ≈ √N rows keep the
    per-list matrix products of `batched_ivf_search` large enough for BLAS (at 50k rows: 224 lists, batched,
    built the graph in 11-14 s at recall@20 0.970; 4·√N lists searched query by query took 35-45 s at 0.957;
    docs/scale.md)."""
    return int(max(1, min(round(math.sqrt(n)), n // 39)))


def _tune_nprobe(index, vectors: np.ndarray, nlist: int, *, target_recall: float, k: int, n_queries: int,
                 seed: int) -> tuple[int, float]:
    """Smallest nprobe in 1, 2, 4, ... nlist whose self-kNN recall@k on sampled rows ≥ target."""
    rng = np.random.default_rng(seed)
    qi = np.sort(rng.choice(len(vectors), size=min(n_queries, len(vectors)), replace=False))
    q = vectors[qi]
    exact = torch_exact_search(torch.from_numpy(vectors), q, k + 1)
    _, truth = drop_self(*exact, qi, k)                               # (nq, k)
    nprobe, recall = 1, 0.0
    while True:
        index.nprobe = nprobe
        got = drop_self(*index.search(q, k + 1), qi, k)[1]
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth)]))
        LOG.debug("IVF nlist=%d nprobe=%d recall@%d=%.4f", nlist, nprobe, k, recall)
        if recall >= target_recall or nprobe >= nlist:
            return nprobe, recall
        nprobe = min(nlist, nprobe * 2)


def build_index(embeddings: np.ndarray, *, metric: str = "cosine", exact: bool | None = None,
                device: str | torch.device | None = None, backend: str | None = None,
                exact_max_n: int = DEFAULT_EXACT_MAX_N, target_recall: float = 0.95, nprobe: int | None = None,
                seed: int = 0, prepared: bool = False) -> KnnIndex:
    """Index `embeddings` (N, d) for cosine (or inner-product) kNN search; the backend is chosen here.

    exact: True forces exact search, False forces IVF on the CPU, None decides by size
    (exact when N ≤ exact_max_n). device: None picks CUDA when present (curator.device).
    backend: force one of BACKENDS (tests use "torch-exact" to run the CUDA code path on the CPU).
    nprobe: fix IVF's nprobe instead of tuning it for `target_recall`.
    prepared: `embeddings` already went through `prepare_vectors` (float32, normalised): used as they are.
    """
    from curator.device import select_device

    t0 = time.perf_counter()
    x = embeddings if prepared else prepare_vectors(embeddings, metric)  # (N, d) float32, normalised for cosine
    n, d = x.shape
    dev = select_device(str(device) if device is not None else None)
    faiss = _import_faiss()
    if backend is None:
        if dev.type == "cuda":
            backend = "faiss-gpu-flat" if faiss is not None and faiss.get_num_gpus() > 0 else "torch-exact"
        elif faiss is None:
            backend = "torch-exact"
        else:
            use_exact = exact if exact is not None else n <= exact_max_n
            backend = "faiss-cpu-flat" if use_exact else "faiss-cpu-ivf"
    if backend not in BACKENDS:
        raise ValueError(f"unknown kNN backend {backend!r}; known: {BACKENDS}")
    if backend.startswith("faiss") and faiss is None:
        raise RuntimeError(f"kNN backend {backend!r} needs the faiss package, which is not installed")
    index = KnnIndex(backend=backend, vectors=x, metric=metric,
                     device="cpu" if backend.startswith("faiss-cpu") else str(dev))

    if backend == "torch-exact":
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
        index._torch_db32 = torch.from_numpy(x).to(dev)                  # (N, d) float32
        index._torch_db = index._torch_db32.to(dtype) if dtype != torch.float32 else index._torch_db32
    elif backend == "faiss-cpu-flat":
        index._faiss_index = faiss.IndexFlatIP(d)
        index._faiss_index.add(x)
    elif backend == "faiss-gpu-flat":
        res = faiss.StandardGpuResources()
        cfg = faiss.GpuIndexFlatConfig()
        cfg.device = dev.index or 0
        cfg.useFloat16 = True
        index._faiss_index = faiss.GpuIndexFlatIP(res, d, cfg)
        index._faiss_index.add(x)
        index._faiss_res = res  # keep the GPU resources alive with the index
    else:  # faiss-cpu-ivf
        nlist = _ivf_nlist(n)
        quantizer = faiss.IndexFlatIP(d)
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_fp16,
                                            faiss.METRIC_INNER_PRODUCT, False)    # not by residual
        rng = np.random.default_rng(seed)
        n_train = min(n, 40 * nlist)                                    # k-means on a sample: cost ∝ n_train·nlist·d
        train = x[np.sort(rng.choice(n, size=n_train, replace=False))] if n_train < n else x
        ivf.cp.seed = seed
        ivf.cp.niter = 10                                               # FAISS default 25; 10 suffices for routing
        ivf.train(train)
        ivf.add(x)
        index._faiss_index, index.nlist = ivf, nlist
        if nprobe is None:
            index.nprobe, index.tuned_recall = _tune_nprobe(ivf, x, nlist, target_recall=target_recall, k=10,
                                                            n_queries=256, seed=seed)
        else:
            index.nprobe = int(nprobe)
        ivf.nprobe = index.nprobe
    index.build_seconds = time.perf_counter() - t0
    LOG.info("kNN index: %s", index.describe())
    return index


def self_knn(embeddings: np.ndarray, k: int, **build_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Self-excluded k nearest neighbours of every row: ((N, k) float32 cosine similarities,
    (N, k) int64 row positions). Keyword arguments go to `build_index`."""
    return build_index(embeddings, **build_kwargs).self_knn(k)
