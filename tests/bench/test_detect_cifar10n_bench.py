"""`curator bench detect-cifar10n` on a generated miniature of the shared CIFAR-10N folder layout.

The folder holds what the real one does: ``CIFAR-10_human.pt`` (a dict of label arrays saved with
torch.save) and ``embeddings-simsiam-r18/train.npy``. Ten Gaussian classes, a class-dependent noise
that swaps 30% of labels, and checks that curator, cleanlab and the oracle ceiling each produce a row
that detects the planted swaps, and that the ceiling (which sees the true labels) is not beaten by much.
"""
import numpy as np
import pytest
import torch

from curator.bench import detect_cifar10n


def _write_miniature(root, n_per_class=80, d=16, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    C = 10
    t = np.repeat(np.arange(C), n_per_class)
    centres = rng.normal(size=(C, d)) * 3.0
    X = centres[t] + rng.normal(size=(len(t), d))
    flip = rng.random(len(t)) < noise
    worse = np.where(flip, (t + 1) % C, t)            # a confusable neighbour class, like human noise
    emb = root / "embeddings-simsiam-r18"
    emb.mkdir(parents=True)
    np.save(emb / "train.npy", X.astype(np.float16))
    torch.save({"clean_label": t, "worse_label": worse, "aggre_label": t.copy()}, root / "CIFAR-10_human.pt")
    return t, worse


@pytest.mark.slow
def test_detect_bench_rows_and_oracle_ceiling(tmp_path, bench_args):
    pytest.importorskip("cleanlab")
    t, worse = _write_miniature(tmp_path)
    out = detect_cifar10n.run(bench_args(detect_cifar10n, data_dir=str(tmp_path), label_sets="worse", oracle=True))
    rows = {r["method"]: r for r in out["rows"]}
    assert set(rows) == {"curator", "cleanlab", "oracle ceiling"}
    for name, r in rows.items():
        assert r["noise"] == pytest.approx(float(np.mean(t != worse)), abs=1e-3)
        assert r["auroc"] > 0.9 and r["f1"] > 0.7, (name, r)       # the swaps are findable on this data
    assert rows["oracle ceiling"]["auroc"] >= rows["curator"]["auroc"] - 0.02
    assert rows["oracle ceiling"]["suggest_acc"] > 0.9


def test_oracle_posterior_uses_the_true_transition():
    # two well-separated classes; every label of class 1 is given as 0: the oracle must say that a sample
    # labelled 0 that looks like class 1 is mislabeled, and that a class-0 sample labelled 0 is not
    rng = np.random.default_rng(1)
    t = np.repeat([0, 1], 100)
    X = np.where(t[:, None] == 0, -3.0, 3.0) + rng.normal(size=(200, 4))
    y = np.zeros(200, np.int64)
    post, px, B = detect_cifar10n.oracle_posterior(X.astype(np.float32), t, y, 2)
    assert np.allclose(post.sum(1), 1.0) and np.allclose(px.sum(1), 1.0)
    assert (px.argmax(1) == t).mean() > 0.95 and (B.argmax(1) == t).mean() > 0.95  # the image's own class
    assert (post[t == 1, 1] > 0.9).mean() > 0.95 and (post[t == 0, 0] > 0.9).mean() > 0.95
