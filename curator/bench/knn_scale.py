"""`curator bench knn-scale`: self-kNN (k = 10) of N x d clustered embeddings (BENCHMARKS.md knn-scale).

For each N in --sizes it draws N points in two-level clusters (N/1000 centres, N/50
sub-centres) in d = 512 dimensions (float32, seeded), then times, per backend: FAISS CPU exact (IndexFlatIP), FAISS CPU IVF (as
`curator.evidence.knn.build_index` configures it: fp16 lists, nlist ≈ √N, nprobe tuned for recall@10 ≥ 0.95,
all rows queried at once list by list),
scikit-learn NearestNeighbors (brute, cosine), and where CUDA is present torch exact search and
FAISS GPU (when faiss-gpu is installed). Recall@10 is measured against exact neighbours of a
random sample of rows (self excluded).

Exact methods cost O(N²·d); when N exceeds --exact-full-max they are timed on a random subset of
--exact-queries rows and the self-kNN time for all N rows is extrapolated linearly in the number
of queries (the row says ``extrapolated``). Backends whose package is missing are reported as
skipped. FAISS and scikit-learn are imported lazily, so the benchmark runs with torch + numpy only.
"""
from __future__ import annotations

import gc
import logging
import time

import numpy as np
import torch

from curator.evidence.knn import _import_faiss, build_index, drop_self, prepare_vectors

LOG = logging.getLogger(__name__)

NAME = "knn-scale"
HELP = "self-kNN (k=10) time and recall@10 for N x 512 embeddings: FAISS CPU exact/IVF, scikit-learn, torch/FAISS GPU"
CPU_BACKENDS = ["faiss-cpu-flat", "faiss-cpu-ivf", "sklearn-brute"]
GPU_BACKENDS = ["torch-exact", "faiss-gpu-flat"]


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated N values (default %(default)s)")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension (default %(default)s)")
    parser.add_argument("--k", type=int, default=10, help="neighbours (default %(default)s)")
    parser.add_argument("--backends", default=None,
                        help=f"comma-separated subset of {CPU_BACKENDS + GPU_BACKENDS} (default: all that apply here)")
    parser.add_argument("--exact-full-max", type=int, default=20_000,
                        help="largest N whose exact self-kNN is timed on every row (default %(default)s)")
    parser.add_argument("--exact-queries", type=int, default=2_000,
                        help="rows timed for exact CPU methods above --exact-full-max (default %(default)s)")
    parser.add_argument("--recall-queries", type=int, default=1_000, help="rows used to measure recall (default %(default)s)")
    parser.add_argument("--spread", type=float, default=1.0, help="within-cluster noise per dimension (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)


def clustered_embeddings(n: int, dim: int, *, spread: float = 1.0, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """(n, dim) float32, two-level clusters: max(10, n // 1000) standard-normal centres, each with
    sub-centres (one per ~50 points) at 0.7·N(0, 1) around it, points at 0.5·spread·N(0, 1) around
    those, so that neighbourhoods have local structure as real embeddings do."""
    rng = np.random.default_rng(seed)
    n_centres = max(10, n // 1000)
    n_sub = max(n_centres, n // 50)
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    sub = centres[rng.integers(0, n_centres, n_sub)] + 0.7 * rng.standard_normal((n_sub, dim), dtype=np.float32)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, chunk):                                       # chunked: no float64 temporaries
        e = min(n, s + chunk)
        x[s:e] = sub[rng.integers(0, n_sub, e - s)]
        x[s:e] += (0.5 * spread) * rng.standard_normal((e - s, dim), dtype=np.float32)
    return x


def _recall(got: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth)]))


def _available(backend: str, cuda: bool) -> str | None:
    """None when the backend can run here, else why not."""
    faiss = _import_faiss()
    if backend.startswith("faiss") and faiss is None:
        return "faiss not installed"
    if backend == "faiss-gpu-flat" and (not cuda or faiss.get_num_gpus() == 0):
        return "no GPU FAISS"
    if backend == "torch-exact" and not cuda:
        return "CPU-only machine (torch exact is the CUDA fallback; select it with --backends)"
    if backend == "sklearn-brute":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return "scikit-learn not installed"
    return None


def _time_backend(backend: str, x: np.ndarray, xn: np.ndarray, k: int, queries: np.ndarray, full: bool,
                  device: str) -> tuple[dict, np.ndarray]:
    """Run one backend; returns (timing facts, neighbours of `queries` rows, self excluded)."""
    n = len(x)
    facts: dict = {}
    if backend == "sklearn-brute":
        from sklearn.neighbors import NearestNeighbors

        t0 = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(x)
        build = time.perf_counter() - t0
        rows = np.arange(n) if full else queries
        t0 = time.perf_counter()
        dist, idx = nn.kneighbors(x[rows])
        search = time.perf_counter() - t0
        _, idx = drop_self(1 - dist, idx, rows, k)
        facts.update(build_s=build, search_s=search, queries_timed=len(rows))
        got = idx if not full else idx[queries]
        return facts, got
    if backend == "faiss-cpu-ivf":
        index = build_index(x, exact=False, device="cpu")
    elif backend == "faiss-cpu-flat":
        index = build_index(x, backend="faiss-cpu-flat", device="cpu")
    else:
        index = build_index(x, backend=backend, device=device)
    facts.update(build_s=index.build_seconds, nlist=index.nlist, nprobe=index.nprobe)
    if full:
        t0 = time.perf_counter()
        _, idx = index.self_knn(k)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        facts.update(search_s=time.perf_counter() - t0, queries_timed=n)
        got = idx[queries]
    else:
        rows = queries
        t0 = time.perf_counter()
        s, i = index.search(xn[rows], k + 1, prepared=True)
        facts.update(search_s=time.perf_counter() - t0, queries_timed=len(rows))
        got = drop_self(s, i, rows, k)[1]
    del index
    return facts, got


def run(args) -> dict:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    wanted = args.backends.split(",") if args.backends else CPU_BACKENDS + GPU_BACKENDS
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    rows: list[dict] = []
    for n in sizes:
        LOG.info("knn-scale: N=%d, d=%d", n, args.dim)
        x = clustered_embeddings(n, args.dim, spread=args.spread, seed=args.seed)
        xn = prepare_vectors(x)
        rng = np.random.default_rng(args.seed + 1)
        recall_rows = np.sort(rng.choice(n, size=min(args.recall_queries, n), replace=False))
        exact_rows = np.sort(rng.choice(n, size=min(args.exact_queries, n), replace=False))
        # ground truth for the recall rows: exact search (torch on CUDA, FAISS flat or torch on the CPU)
        truth_index = build_index(xn, exact=True, device=device, metric="ip")
        truth = drop_self(*truth_index.search(xn[recall_rows], args.k + 1, prepared=True), recall_rows, args.k)[1]
        truth_backend = truth_index.backend
        del truth_index
        exact_total = None
        for backend in wanted:
            why = _available(backend, cuda)
            if why and not (backend == "torch-exact" and args.backends):
                rows.append({"n": n, "backend": backend, "status": f"skipped: {why}"})
                continue
            exact = backend != "faiss-cpu-ivf"
            on_gpu = backend in GPU_BACKENDS and cuda
            full = (not exact) or on_gpu or n <= args.exact_full_max
            timed_rows = np.union1d(recall_rows, exact_rows) if not full else recall_rows
            facts, got = _time_backend(backend, x, xn, args.k, timed_rows, full, device)
            if not full:
                got = got[np.searchsorted(timed_rows, recall_rows)]
            per_query = facts["search_s"] / facts["queries_timed"]
            total = facts["build_s"] + per_query * n
            row = {"n": n, "backend": backend, "device": "cuda" if on_gpu else "cpu",
                   "build_s": round(facts["build_s"], 3), "search_s": round(facts["search_s"], 3),
                   "queries_timed": facts["queries_timed"], "self_knn_s": round(total, 3),
                   "extrapolated": not full, f"recall@{args.k}": round(_recall(got, truth), 4),
                   "nlist": facts.get("nlist"), "nprobe": facts.get("nprobe"), "status": "ran"}
            if exact and backend in ("faiss-cpu-flat", "torch-exact", "faiss-gpu-flat"):
                exact_total = total if exact_total is None else min(exact_total, total)
            rows.append(row)
            LOG.info("knn-scale: %s", row)
            gc.collect()
        for row in rows:
            if row["n"] == n and row.get("status") == "ran":
                row["speedup_vs_exact"] = round(exact_total / row["self_knn_s"], 2) if exact_total else None
        del x, xn
        gc.collect()
    columns: list[str] = []
    for row in rows:                                                   # same columns in every row, for the table
        columns += [c for c in row if c not in columns]
    rows = [{c: row.get(c) for c in columns} for row in rows]
    return {"rows": rows, "dim": args.dim, "k": args.k, "truth_backend": truth_backend if sizes else None,
            "note": "self_knn_s = build + search time for all N rows; 'extrapolated' rows timed a random subset "
                    "of queries and scaled linearly to N"}
