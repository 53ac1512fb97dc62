"""Confident learning against cleanlab (the peer), on given out-of-fold probabilities."""
import numpy as np
import pytest

from curator.signals.confident import confident_assignment, confident_learning


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


def test_confident_assignment_by_hand():
    # thresholds: class 0 → mean(0.9, 0.6) = 0.75, class 1 → mean(0.8, 0.3) = 0.55
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([0, 0, 1, 1])
    # row 1 (p0=0.6<0.75, p1=0.4<0.55) passes no threshold; row 3 (p0=0.7<0.75, p1=0.3) neither
    np.testing.assert_array_equal(confident_assignment(probs, labels), [0, -1, 1, -1])
    probs[3] = [0.8, 0.2]                                            # now class-1 mean = 0.5, p0 = 0.8 ≥ 0.75
    out = confident_learning(probs, labels)
    assert out["cl_is_issue"].tolist() == [False, False, False, True]
    assert out["cl_suggested_label"][3] == 0
    np.testing.assert_allclose(out["cl_label_quality"], [0.9, 0.6, 0.8, 0.2])


def test_bad_label_is_named():
    with pytest.raises(ValueError, match="row 2"):
        confident_learning(np.full((3, 2), 0.5), np.array([0, 1, 5]))
