"""Aggregation on synthetic embeddings with planted label errors and a planted tail class."""
import numpy as np
import pytest

from curator.audit.aggregate import aggregate, estimate_prior_em, knn_likelihood, pooled_transition, smooth_prior
from curator.audit.classes import soft_joint
from curator.audit.config import AuditConfig
from curator.config import ConfigError
from curator.evidence import compute_evidence
from curator.evidence.config import EvidenceConfig


def planted(seed=0, sizes=(200, 200, 200, 200, 12), noise=0.25, d=16):
    """Gaussian blobs; class 4 is a 12-sample tail; `noise` of the head-class labels are flipped."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), d)) * 4
    t = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)])
    X = centres[t] + rng.normal(size=(len(t), d))
    y = t.copy()
    head = np.flatnonzero(t < len(sizes) - 1)
    flip = rng.choice(head, int(noise * len(head)), replace=False)
    y[flip] = (t[flip] + rng.integers(1, len(sizes) - 1, len(flip))) % (len(sizes) - 1)
    return X.astype(np.float32), y, t


ECFG = EvidenceConfig(k=8, folds=3, probe_steps=80)
CFG = AuditConfig(rounds=1)


def evidence(X, y, n_classes=5, cfg=ECFG):
    return compute_evidence(X, y, n_classes, cfg, seed=0, device="cpu")


def test_planted_errors_rank_high_and_tail_not_overflagged():
    X, y, t = planted()
    res = aggregate(evidence(X, y), CFG)
    tb = res.table
    wrong = y != t
    top = tb.sort_values("rank").head(wrong.sum())
    precision_at_k = wrong[top.index.to_numpy()].mean()
    assert precision_at_k > 0.9
    s = tb["label_issue_score"].to_numpy()
    assert ((0 <= s) & (s <= 1)).all()
    # the clean 12-sample tail class is not flagged for being rare
    tail_flags = tb["is_label_issue"].to_numpy()[(y == 4)]
    assert tail_flags.mean() <= 0.1
    # suggestions recover the true class for most planted errors
    assert (tb["suggested_label"].to_numpy()[wrong] == t[wrong]).mean() > 0.8
    # ranks are a permutation 1..N with rank 1 = highest score
    assert sorted(tb["rank"]) == list(range(1, len(y) + 1))
    assert tb.loc[tb["rank"] == 1, "label_issue_score"].iloc[0] == pytest.approx(s.max())


def test_prior_em_recovers_shifted_prior():
    rng = np.random.default_rng(1)
    true_pi = np.array([0.7, 0.2, 0.1])
    t = rng.choice(3, 5000, p=true_pi)
    M = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])  # M[c, o] = p(observation o | class c)
    obs = np.array([rng.choice(3, p=M[c]) for c in t])
    lik = M[:, obs].T / M[:, obs].T.sum(1, keepdims=True)  # uniform-prior posteriors p(c | o)
    pi = estimate_prior_em(lik, iters=500)
    assert np.abs(pi - true_pi).max() < 0.05


def test_knn_likelihood_balances_votes_by_class_mass():
    X, y, t = planted(sizes=(50, 50, 8), noise=0.0)
    ev = evidence(X, y, 3, EvidenceConfig(k=5, folds=3, probe_steps=20))
    L = knn_likelihood(ev.graph, y, np.ones(len(y)), 3)
    np.testing.assert_allclose(L.sum(1), 1, rtol=1e-6)
    assert (L.argmax(1) == t).mean() > 0.95
    # by hand for one sample: Σ_j s_ij 1[y_j = c] / n_c, normalised
    i = 0
    raw = np.zeros(3)
    for j, s in zip(ev.graph.indices[i], ev.graph.similarities[i]):
        raw[y[j]] += max(s, 0) / (y == y[j]).sum()
    raw += 1e-3 / len(y)
    np.testing.assert_allclose(L[i], raw / raw.sum(), rtol=1e-5)


def test_evidence_rejects_bad_labels_and_rows():
    X, y, _ = planted(sizes=(20, 20), noise=0.0)
    with pytest.raises(ValueError, match="labels must lie"):
        evidence(X, y + 5, 2)
    with pytest.raises(ValueError, match="rows"):
        evidence(X[:-1], y, 2)


def test_tail_suggestions_option_keeps_scores():
    X, y, t = planted(seed=3)
    ev = evidence(X, y)
    a = aggregate(ev, AuditConfig(**{**CFG.to_dict(), "tail_suggestions": False})).table
    b = aggregate(ev, AuditConfig(**{**CFG.to_dict(), "tail_suggestions": True})).table
    np.testing.assert_allclose(a["label_issue_score"], b["label_issue_score"])
    wrong = y != t
    assert (b["suggested_label"].to_numpy()[wrong] == t[wrong]).mean() > 0.7


def test_smooth_prior_shrinks_toward_uniform_and_keeps_a_distribution():
    pi = np.array([0.9, 0.0999, 0.0001])
    np.testing.assert_allclose(smooth_prior(pi, 0.0), pi)
    q = smooth_prior(pi, 0.1)
    assert q.sum() == pytest.approx(1.0)
    assert q[2] >= 0.1 / 3 / 1.1 - 1e-12          # a collapsed class keeps a floor
    assert q[0] < pi[0] and q[2] > pi[2]           # mass moves from the head to the tail
    assert np.all(np.argsort(q) == np.argsort(pi))  # order of the classes is kept


def test_unflagged_suggestion_names_the_image_class_not_the_label():
    X, y, t = planted(seed=3, noise=0.45, d=8)      # hard enough that some errors are missed (11 of 360)
    ev = evidence(X, y)
    by_image = aggregate(ev, CFG).table
    by_label = aggregate(ev, AuditConfig(**{**CFG.to_dict(), "unflagged_suggestion": "label"})).table
    np.testing.assert_allclose(by_image["label_issue_score"], by_label["label_issue_score"])
    flagged = by_label["is_label_issue"].to_numpy()
    # "label": an unflagged sample's suggestion is its own label (its label posterior's argmax)
    assert (by_label["suggested_label"].to_numpy()[~flagged] == y[~flagged]).all()
    # flagged samples get the same suggestion either way
    np.testing.assert_array_equal(by_image["suggested_label"].to_numpy()[flagged], by_label["suggested_label"].to_numpy()[flagged])
    # the blobs' missed errors (label posterior < 0.5 wrong) still look like their true class: "image" names it
    missed = (y != t) & ~flagged
    assert missed.sum() >= 5
    assert (by_image["suggested_label"].to_numpy()[missed] == t[missed]).mean() > 0.5
    # while unflagged clean samples keep their own label as suggestion
    clean = (y == t) & ~flagged
    assert (by_image["suggested_label"].to_numpy()[clean] == y[clean]).mean() > 0.95
    with pytest.raises(ConfigError, match="unflagged_suggestion"):
        AuditConfig(unflagged_suggestion="nope")


def test_a_class_nobody_carries_is_never_suggested():
    # five classes declared, class 3 has no sample at all (an empty class folder); weak embeddings (pure noise)
    rng = np.random.default_rng(7)
    y = rng.choice([0, 1, 2, 4], 400)
    X = rng.normal(size=(400, 16)).astype(np.float32)
    res = aggregate(evidence(X, y), AuditConfig(rounds=1, weak_evidence_factor=0))   # no weak-evidence cap
    assert res.evidence["grade"] == "weak"
    assert res.table["is_label_issue"].sum() > 0                      # uninformative embeddings: plenty flagged
    assert not (res.table["suggested_label"].to_numpy() == 3).any()
    assert np.allclose(res.posterior[:, 3], 0.0) and res.prior[3] == 0.0


def test_pooled_transition_gives_every_true_class_the_joints_noise_rate_and_keeps_its_shape():
    """Q[c, l] (true c, given l): class 0 is 10 % mislabelled, class 1 50 %, class 2 30 % (all of it as label 0)."""
    Q = np.array([[90.0, 4.0, 6.0],
                  [30.0, 50.0, 20.0],
                  [60.0, 0.0, 140.0]])
    T = pooled_transition(Q)
    nu = 1 - np.trace(Q) / Q.sum()                                    # 120 of 400 labels wrong
    assert nu == pytest.approx(0.3)
    np.testing.assert_allclose(T.sum(1), 1.0)                         # a transition: rows are distributions
    np.testing.assert_allclose(np.diag(T), 1 - nu)                    # every class gets the overall noise rate
    assert T[1, 0] / T[1, 2] == pytest.approx(30 / 20)                # where its wrong labels go keeps its shape
    assert T[0, 1] / T[0, 2] == pytest.approx(4 / 6)
    assert T[2, 1] == 0 and T[2, 0] == pytest.approx(nu)              # class 2's wrong labels all go to label 0
    sizes = Q.sum(1)
    assert (sizes * (1 - np.diag(T))).sum() == pytest.approx(120)     # the total amount of noise is the joint's


def test_soft_joint_counts_each_labels_samples_by_their_class_posterior():
    post = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    Q = soft_joint(post, np.array([0, 1, 1]), 2)
    np.testing.assert_allclose(Q, np.array([[0.9, 0.8], [0.1, 1.2]]))
