"""kNN search behind one interface: exact backends equal numpy, self is excluded, IVF recall."""
import numpy as np
import pytest
import torch

from curator.data.problems import DataError
from curator.evidence.knn import BATCHED_IVF_MIN_QUERIES, build_index, drop_self, self_knn, torch_exact_search


def _random(n=400, d=24, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _clustered(n, d, n_clusters, seed=0, spread=0.6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, d))
    return (centers[rng.integers(0, n_clusters, n)] + spread * rng.normal(size=(n, d))).astype(np.float32)


def _numpy_self_knn(x, k):
    """Reference: full cosine similarity matrix, self masked, argsort."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, axis=1), idx


@pytest.mark.parametrize("backend", ["faiss-cpu-flat", "torch-exact"])
def test_exact_backends_equal_numpy(backend):
    x = _random()
    index = build_index(x, backend=backend, device="cpu")
    assert index.backend == backend
    sims, idx = index.self_knn(7)
    ref_s, ref_i = _numpy_self_knn(x, 7)
    np.testing.assert_allclose(sims, ref_s, atol=1e-5)
    assert (idx == ref_i).mean() > 0.99          # only exact ties could reorder
    assert not (idx == np.arange(len(x))[:, None]).any()


def test_cpu_default_is_exact_flat_for_small_inputs():
    index = build_index(_random(), device="cpu")
    assert index.backend == "faiss-cpu-flat"


def test_torch_exact_equals_faiss_flat_on_queries():
    x = _random(600, 32, seed=1)
    q = _random(50, 32, seed=2)
    s1, i1 = build_index(x, backend="torch-exact", device="cpu").search(q, 5)
    s2, i2 = build_index(x, backend="faiss-cpu-flat", device="cpu").search(q, 5)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    np.testing.assert_array_equal(i1, i2)


def test_torch_half_precision_path_refines_similarities_in_fp32():
    # the CUDA code path (fp16 scores, fp32 re-scored winners), run on the CPU
    x = _random(300, 16, seed=3)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s16, i16 = torch_exact_search(torch.from_numpy(xn).half(), xn[:40], 5, db32=torch.from_numpy(xn))
    s32, i32 = torch_exact_search(torch.from_numpy(xn), xn[:40], 5)
    assert (i16 == i32).mean() > 0.95
    exact = np.einsum("qd,qkd->qk", xn[:40], xn[i16])
    np.testing.assert_allclose(s16, exact, atol=1e-5)              # fp32 similarities of the chosen rows
    assert (np.diff(s16, axis=1) <= 1e-7).all()                     # best first


def test_self_excluded_even_with_exact_duplicates():
    x = _random(200, 8, seed=4)
    x[10] = x[11] = x[12]                                          # three identical rows
    sims, idx = self_knn(x, 4, device="cpu")
    assert not (idx == np.arange(len(x))[:, None]).any()
    assert set(idx[10, :2]) == {11, 12}
    np.testing.assert_allclose(sims[10, :2], 1.0, atol=1e-5)


def test_bad_embeddings_are_named():
    x = _random(50, 4)
    x[7, 2] = np.nan
    with pytest.raises(DataError, match="row 7"):
        build_index(x, device="cpu")
    x = _random(50, 4)
    x[3] = 0
    with pytest.raises(DataError, match="row 3"):
        build_index(x, device="cpu")


@pytest.mark.slow
def test_ivf_recall_at_10_on_clustered_data():
    x = _clustered(30_000, 64, 300, seed=5)
    index = build_index(x, exact=False, device="cpu", target_recall=0.95)
    assert index.backend == "faiss-cpu-ivf"
    assert index.nlist == pytest.approx(np.sqrt(len(x)), rel=0.01)
    rng = np.random.default_rng(0)
    qi = np.sort(rng.choice(len(x), 500, replace=False))          # fresh queries, not the tuning sample
    _, got = index.self_knn(10)
    flat = build_index(x, exact=True, device="cpu")
    s, i = flat.search(x[qi], 11)
    from curator.evidence.knn import drop_self
    _, truth = drop_self(s, i, qi, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got[qi], truth)])
    assert recall >= 0.95


def test_batched_ivf_search_returns_what_faiss_per_query_search_returns(monkeypatch):
    """The self-kNN graph's list-by-list search (BLAS products per inverted list) is an implementation
    detail: the same neighbours as FAISS's own IVF scan at the same nprobe; the similarities the index
    answers are exact float32 inner products (the lists store fp16), best first."""
    from curator.evidence import knn

    calls = []
    real = knn.batched_ivf_search
    monkeypatch.setattr(knn, "batched_ivf_search", lambda *a: calls.append(len(a[1])) or real(*a))
    x = _clustered(6_000, 32, 40, seed=3)
    index = build_index(x, exact=False, device="cpu", nprobe=3)
    q = index.vectors[:BATCHED_IVF_MIN_QUERIES + 10]
    faiss_s, faiss_i = index._faiss_index.search(q, 11)                         # FAISS's per-query scan
    batched_s, batched_i = real(index._faiss_index, q, 11)
    np.testing.assert_array_equal(batched_i, faiss_i)
    np.testing.assert_allclose(batched_s, faiss_s, rtol=0, atol=1e-6)
    s, i = index.search(q, 11, prepared=True)                                    # the batched path, re-scored
    assert calls == [len(q)]
    np.testing.assert_array_equal(np.sort(i, axis=1), np.sort(faiss_i, axis=1))  # the same neighbours
    exact = np.einsum("qd,qkd->qk", q, index.vectors[i])
    np.testing.assert_allclose(s, exact, rtol=0, atol=1e-6)                      # fp32, not fp16-rounded
    assert (np.diff(s, axis=1) <= 0).all()
    assert np.abs(faiss_s - np.sort(exact, axis=1)[:, ::-1]).max() > 1e-6       # (the lists do hold fp16)
    _, gi = index.self_knn(10)
    assert calls == [len(q), len(x)]                                             # the graph in one call
    np.testing.assert_array_equal(np.sort(gi[:100], axis=1), np.sort(drop_self(s[:100], i[:100], np.arange(100), 10)[1], axis=1))


def test_ivf_self_knn_rows_whose_probed_lists_are_too_small_are_searched_exactly():
    """With one probed list of ~45 rows, 60 neighbours cannot be found there: FAISS pads with -1; those
    rows are answered by exact search instead of carrying -1 into the graph."""
    x = _clustered(2_000, 16, 30, seed=4)
    index = build_index(x, exact=False, device="cpu", nprobe=1)
    short = (index._faiss_index.search(index.vectors, 61)[1] < 0).any(axis=1)
    assert 0 < short.sum() < len(x)
    sims, idx = index.self_knn(60)
    assert (idx >= 0).all()
    ref_s, _ = _numpy_self_knn(x, 60)
    np.testing.assert_allclose(sims[short], ref_s[short], atol=1e-5)
