"""kNN agreement against brute force and separation of planted errors on digits (duplicates: tests/hygiene)."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from curator.evidence import KnnGraph
from curator.evidence.knn import self_knn
from curator.signals.agreement import knn_agreement


def _graph(x, k):
    sims, idx = self_knn(x, k, device="cpu")
    return KnnGraph(idx, sims)


def _brute_force(x, labels, n_classes, k, weighting, temperature=0.1):
    """Reference: full similarity matrix + argsort, then the weighted vote written as loops."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    nbrs = np.argsort(-s, axis=1)[:, :k]
    out = {"knn_agreement": [], "knn_suggested_label": [], "knn_suggested_share": [], "knn_kth_distance": []}
    for i in range(len(x)):
        sims = s[i, nbrs[i]]
        if weighting == "similarity":
            w = np.maximum(sims, 0)
        elif weighting == "softmax":
            w = np.exp((sims - sims.max()) / temperature)
        else:
            w = np.ones(k)
        if w.sum() == 0:
            w = np.ones(k)
        votes = np.zeros(n_classes)
        for j, wj in zip(nbrs[i], w):
            votes[labels[j]] += wj
        votes /= votes.sum()
        out["knn_agreement"].append(votes[labels[i]])
        out["knn_suggested_label"].append(int(np.argmax(votes)))
        out["knn_suggested_share"].append(votes.max())
        out["knn_kth_distance"].append(1 - sims[-1])
    return {key: np.array(v) for key, v in out.items()}


@pytest.mark.parametrize("weighting", ["similarity", "softmax", "uniform"])
def test_knn_agreement_equals_brute_force(weighting):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    labels = rng.integers(0, 4, 300)
    got = knn_agreement(_graph(x, 8), labels, 4, weighting=weighting)
    ref = _brute_force(x.astype(np.float64), labels, 4, 8, weighting)
    for key in ("knn_agreement", "knn_suggested_share", "knn_kth_distance"):
        np.testing.assert_allclose(got[key], ref[key], atol=1e-4, err_msg=key)
    assert (got["knn_suggested_label"] == ref["knn_suggested_label"]).mean() > 0.98   # ties may differ
    assert got["knn_agreement"].min() >= 0 and got["knn_agreement"].max() <= 1


def test_knn_agreement_separates_planted_noise_on_long_tailed_digits():
    from sklearn.datasets import load_digits

    from curator.data.options import DatasetOptions
    from curator.data.registry import load_dataset

    ds = load_dataset(DatasetOptions(imbalance="exp", gamma=10, noise="uniform", noise_rate=0.3, seed=0))
    train = ds.train
    pixels = load_digits().data[train["image_ref"].to_numpy()]
    x = (pixels - pixels.mean(0)) / (pixels.std(0) + 1e-6)           # standardised raw pixels
    labels = train["label"].to_numpy()
    noisy = labels != train["true_label"].to_numpy()
    assert 0.15 < noisy.mean() < 0.4                                  # noise really was planted
    sig = knn_agreement(_graph(x, 10), labels, 10)
    auroc = roc_auc_score(noisy, -sig["knn_agreement"])
    assert auroc >= 0.85, auroc
