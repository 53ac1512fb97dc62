"""`curator bench knn-scale` at toy size: every CPU backend runs, says what it is, and finds neighbours."""
import numpy as np
import pytest

from curator.bench import knn_scale


@pytest.mark.slow
def test_knn_scale_runs_all_cpu_backends_at_toy_size(bench_args):
    args = bench_args(knn_scale, sizes="1000", dim=32, exact_full_max=500, exact_queries=200, recall_queries=100,
                 backends="faiss-cpu-flat,faiss-cpu-ivf,sklearn-brute,torch-exact")
    out = knn_scale.run(args)
    rows = {r["backend"]: r for r in out["rows"]}
    assert set(rows) == {"faiss-cpu-flat", "faiss-cpu-ivf", "sklearn-brute", "torch-exact"}
    for name in ("faiss-cpu-flat", "sklearn-brute", "torch-exact"):
        assert rows[name]["recall@10"] >= 0.99, name                    # exact methods agree with the truth
        assert rows[name]["extrapolated"] and rows[name]["queries_timed"] <= 300
    assert rows["faiss-cpu-ivf"]["recall@10"] >= 0.95 and not rows["faiss-cpu-ivf"]["extrapolated"]
    assert len({tuple(r) for r in out["rows"]}) == 1                    # same columns in every row


def test_clustered_embeddings_are_seeded_and_clustered():
    a = knn_scale.clustered_embeddings(3000, 16, seed=3)
    b = knn_scale.clustered_embeddings(3000, 16, seed=3)
    np.testing.assert_array_equal(a, b)
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    s = an[:200] @ an.T
    np.fill_diagonal(s[:, :200], -1)
    assert np.median(s.max(1)) > 0.8 > np.median(s)                   # near neighbours much closer than typical pairs


@pytest.mark.slow
def test_unavailable_gpu_backends_are_reported_as_skipped(monkeypatch, bench_args):
    monkeypatch.setattr(knn_scale.torch.cuda, "is_available", lambda: False)
    out = knn_scale.run(bench_args(knn_scale, sizes="600", dim=8, backends=None, recall_queries=50))
    status = {r["backend"]: r["status"] for r in out["rows"]}
    assert status["faiss-gpu-flat"].startswith("skipped")
    assert status["torch-exact"].startswith("skipped")
    assert status["faiss-cpu-flat"] == "ran"
