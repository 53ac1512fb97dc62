"""Self-training relabel (paper 001): distrusted samples get the robust head's pseudo-labels."""
import numpy as np
from sklearn.datasets import load_digits

from curator.heads.base import HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.registry import train_head
from curator.heads.semi import distrusted_mask

CFG = HeadsConfig(epochs=8, batch_size=64, hidden=128)


def test_distrusted_mask_rules():
    y = np.array([0, 1, 2, -1])
    probs = np.eye(3)[[0, 2, 2, 1]].astype(np.float32)
    with_sigma = HeadResult("lasl", probs, {"lasl_sigma": np.array([1.5, 0.4, 1.2, np.nan])})
    assert distrusted_mask(y, with_sigma).tolist() == [False, True, False, True]
    without = HeadResult("ce", probs, {})
    assert distrusted_mask(y, without).tolist() == [False, True, False, True]


def test_semi_relabels_planted_errors_and_uses_unlabeled_rows():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    rng = np.random.default_rng(0)
    noisy = y.copy()
    hit = rng.random(len(y)) < 0.2
    noisy[hit] = (y[hit] + rng.integers(1, 10, hit.sum())) % 10
    noisy[:100] = -1  # extra unlabeled rows join D_U
    res = {}
    res["lasl"] = train_head("lasl", X, noisy, 10, CFG, seed=0)
    r = train_head("semi", X, noisy, 10, CFG, seed=0, results=res)
    s = r.signals
    assert set(s) == {"semi_pseudo_label", "semi_pseudo_confidence", "semi_distrusted"}
    assert s["semi_distrusted"][:100].all()
    wrong = hit & (noisy >= 0)
    # most planted errors are distrusted and get their true class back
    assert s["semi_distrusted"][wrong].mean() > 0.7
    assert (s["semi_pseudo_label"][wrong] == y[wrong]).mean() > 0.8
    assert (s["semi_pseudo_label"][:100] == y[:100]).mean() > 0.8
    assert ((s["semi_pseudo_confidence"] >= 0) & (s["semi_pseudo_confidence"] <= 1)).all()
