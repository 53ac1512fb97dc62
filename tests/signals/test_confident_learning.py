"""Confident learning against cleanlab (the peer), and the cross-validated probabilities."""
import numpy as np
import pytest

from curator.signals.confident import confident_joint, confident_learning, cross_val_probs


def _noisy_probs(n=800, c=4, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, c, n)
    labels = true.copy()
    flip = rng.random(n) < noise
    labels[flip] = (true[flip] + rng.integers(1, c, flip.sum())) % c
    logits = 2.5 * np.eye(c)[true] + rng.normal(0, 1.0, (n, c))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels, true


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_learning_agrees_with_cleanlab(seed):
    from cleanlab.filter import find_label_issues

    probs, labels, _ = _noisy_probs(seed=seed)
    ours = confident_learning(probs, labels)["cl_is_issue"]
    theirs = find_label_issues(labels, probs, filter_by="confident_learning")
    jaccard = (ours & theirs).sum() / max((ours | theirs).sum(), 1)
    assert jaccard >= 0.95, jaccard
    assert (ours == theirs).mean() >= 0.99


def test_confident_joint_by_hand():
    # thresholds: class 0 → mean(0.9, 0.6) = 0.75, class 1 → mean(0.8, 0.3) = 0.55
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([0, 0, 1, 1])
    cj = confident_joint(probs, labels)
    # row 1 (p0=0.6<0.75, p1=0.4<0.55) is counted nowhere; row 3 (p0=0.7<0.75, p1=0.3) nowhere
    np.testing.assert_array_equal(cj, [[1, 0], [0, 1]])
    probs[3] = [0.8, 0.2]                                            # now class-1 mean = 0.5, p0 = 0.8 ≥ 0.75
    out = confident_learning(probs, labels)
    assert out["cl_is_issue"].tolist() == [False, False, False, True]
    assert out["cl_suggested_label"][3] == 0
    np.testing.assert_allclose(out["cl_label_quality"], [0.9, 0.6, 0.8, 0.2])


def test_bad_label_is_named():
    with pytest.raises(ValueError, match="row 2"):
        confident_learning(np.full((3, 2), 0.5), np.array([0, 1, 5]))


def test_cross_val_probs_lbfgs_matches_sklearn_and_flags_planted_errors():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:900], y[:900]
    rng = np.random.default_rng(0)
    noisy = rng.random(len(y)) < 0.1
    labels = y.copy()
    labels[noisy] = (y[noisy] + rng.integers(1, 10, noisy.sum())) % 10
    p_ours = cross_val_probs(x, labels, 10, method="lbfgs", folds=3, max_iter=100)
    p_sk = cross_val_probs(x, labels, 10, method="sklearn", folds=3, max_iter=100)
    np.testing.assert_allclose(p_ours.sum(1), 1, atol=1e-5)
    # same model, same folds: predictions agree and probabilities are close
    assert (p_ours.argmax(1) == p_sk.argmax(1)).mean() > 0.97
    assert np.abs(p_ours - p_sk).mean() < 0.03
    # out-of-fold: a planted wrong label gets low probability
    from sklearn.metrics import roc_auc_score

    q = confident_learning(p_ours, labels)["cl_label_quality"]
    assert roc_auc_score(noisy, -q) > 0.9
