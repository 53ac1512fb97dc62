"""The evidence pieces: one stratified fold assignment, cross-fitting, the class-balanced probe, graph votes."""
import numpy as np
import pytest

from curator.evidence import KnnGraph, standardise
from curator.evidence.crossfit import crossfit, fold_assignment
from curator.evidence.probe import ProbeSettings, held_out_nll, oof_probs, select_weight_decay


def test_fold_assignment_is_stratified_balanced_and_seeded():
    labels = np.repeat([0, 1, 2], [100, 23, 7])
    f = fold_assignment(labels, 5, seed=3)
    assert f.dtype == np.int16 and set(np.unique(f)) == set(range(5))
    sizes = np.bincount(f)
    assert sizes.max() - sizes.min() <= 1                       # folds as equal as possible
    for c, n in ((0, 100), (1, 23), (2, 7)):                    # each class spread evenly
        per = np.bincount(f[labels == c], minlength=5)
        assert per.max() - per.min() <= 1 and per.sum() == n
    np.testing.assert_array_equal(f, fold_assignment(labels, 5, seed=3))
    assert not np.array_equal(f, fold_assignment(labels, 5, seed=4))
    assert set(np.unique(fold_assignment(labels[:3], 5, 0))) == {0, 1, 2}   # clipped to N


def test_crossfit_never_predicts_a_row_with_a_model_that_saw_it():
    folds = fold_assignment(np.zeros(50, int), 4, seed=0)
    seen = {}

    def fit_predict(train, test, k):
        assert not np.intersect1d(train, test).size and len(train) + len(test) == 50
        seen[k] = test
        return np.full((len(test), 2), k, np.float32)

    out = crossfit(fit_predict, folds, 2)
    assert sorted(seen) == [0, 1, 2, 3]
    np.testing.assert_array_equal(out[:, 0], folds)


def test_probe_is_out_of_fold_and_class_balanced():
    rng = np.random.default_rng(0)
    sizes = (300, 300, 20)
    t = np.repeat(np.arange(3), sizes)
    X = standardise((rng.normal(size=(3, 8)) * 3)[t] + rng.normal(size=(len(t), 8)))
    y = t.copy()
    flip = rng.choice(600, 60, replace=False)
    y[flip] = 1 - t[flip]
    folds = fold_assignment(y, 4, seed=0)
    P = oof_probs(X, y, 3, folds, ProbeSettings(steps=150), seed=0, device="cpu")
    rows = np.arange(len(y))
    assert np.allclose(P.sum(1), 1, atol=1e-5)
    assert P[rows, y][flip].mean() < 0.2                         # out-of-fold: the wrong label is not echoed
    # class-balanced: the 20-sample class is recognised as often as the big ones
    assert (P.argmax(1)[t == 2] == 2).mean() > 0.9
    unbalanced = oof_probs(X, y, 3, folds, ProbeSettings(steps=150), balanced=False, seed=0, device="cpu")
    assert P[t == 2, 2].mean() > unbalanced[t == 2, 2].mean()
    # sample weights: a zero-weighted label teaches nothing
    w = np.ones(len(y))
    w[flip] = 0.0
    Pw = oof_probs(X, y, 3, folds, ProbeSettings(steps=150), weights=w, seed=0, device="cpu")
    assert Pw[rows, y][flip].mean() < P[rows, y][flip].mean()


def test_batched_probe_agrees_with_full_batch_and_an_independent_fit():
    """Steps on batches of 64 rows reach the fit full-batch steps reach, and both agree with scikit-learn's
    multinomial logistic regression fitted on the same folds (the independent reference)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    t = np.repeat(np.arange(3), 200)
    X = standardise((rng.normal(size=(3, 6)) * 1.5)[t] + rng.normal(size=(len(t), 6)))
    folds = fold_assignment(t, 3, seed=0)
    full = oof_probs(X, t, 3, folds, ProbeSettings(steps=1000, weight_decay=0.0), seed=0, device="cpu")
    batched = oof_probs(X, t, 3, folds, ProbeSettings(steps=1000, batch_size=64, weight_decay=0.0), seed=0,
                        device="cpu")
    ref = np.zeros_like(full)
    for k in range(3):
        tr, te = folds != k, folds == k
        ref[te] = LogisticRegression(C=1e4, max_iter=2000).fit(X[tr], t[tr]).predict_proba(X[te])
    assert np.abs(batched - full).mean() < 0.02
    assert np.abs(full - ref).mean() < 0.03 and np.abs(batched - ref).mean() < 0.03
    assert (batched.argmax(1) == ref.argmax(1)).mean() > 0.95


@pytest.mark.parametrize("weighting", ["similarity", "softmax", "uniform"])
def test_graph_votes_equal_a_loop(weighting):
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 30, size=(30, 4))
    sims = rng.uniform(-0.2, 1.0, size=(30, 4)).astype(np.float32)
    g = KnnGraph(idx, sims)
    mass = rng.random((30, 5))
    ref = np.zeros((30, 5))
    for i in range(30):
        s = sims[i].astype(np.float64)
        w = {"similarity": np.maximum(s, 0), "softmax": np.exp((s - s.max()) / 0.1), "uniform": np.ones(4)}[weighting]
        if w.sum() <= 0:
            w = np.ones(4)
        for j, wj in zip(idx[i], w):
            ref[i] += wj * mass[j]
    np.testing.assert_allclose(g.votes(mass, weighting, 0.1), ref, rtol=1e-10)
    with pytest.raises(ValueError, match="weighting"):
        g.votes(mass, "nope")


def test_a_warm_started_refit_starts_from_the_earlier_fit():
    # `init` must really start each fold at its earlier fit: one step from there stays near the fitted probabilities,
    # one step from scratch does not (the audit's later rounds rely on it: Evidence.refit, probe_refit_steps)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    X = (rng.normal(size=(600, 6)) + 3 * np.eye(3, 6)[y]).astype(np.float32)
    folds = fold_assignment(y, 3, 0)
    fitted: dict = {}
    P = oof_probs(X, y, 3, folds, ProbeSettings(steps=300), seed=0, device="cpu", fitted=fitted)
    assert sorted(fitted) == [0, 1, 2]
    warm = oof_probs(X, y, 3, folds, ProbeSettings(steps=300, refit_steps=1), seed=1, device="cpu", init=fitted)
    cold = oof_probs(X, y, 3, folds, ProbeSettings(steps=1), seed=1, device="cpu")
    assert np.abs(warm - P).max() < 0.05 < np.abs(cold - P).max()


def test_held_out_nll_is_class_balanced():
    P = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.1, 0.9]])
    y = np.array([0, 0, 0, 1])
    # class 0: −log 0.5 each; class 1: −log 0.9; the mean of the two class means, not of the four rows
    assert held_out_nll(P, y, 2) == pytest.approx((np.log(2) - np.log(0.9)) / 2)
    assert held_out_nll(P, y, 3) == pytest.approx((np.log(2) - np.log(0.9)) / 2)   # an absent class is skipped


def _blobs(n_per, dim, informative, seed):
    rng = np.random.default_rng(seed)
    t = np.repeat(np.arange(4), n_per)
    X = rng.normal(size=(len(t), dim))
    X[:, :informative] += (rng.normal(size=(4, informative)) * 1.2)[t]
    return standardise(X), t


@pytest.mark.parametrize("n_per,dim,chosen", [(40, 400, 0.3), (500, 4, 0.0)])
def test_weight_decay_is_the_candidate_with_the_best_held_out_likelihood(n_per, dim, chosen):
    """Few rows in many dimensions (most of them noise) want a strong decay, many rows in a few a weak one; the
    scores are the fold-0 NLLs of the very fits `oof_probs` makes for fold 0 (its reference), and the choice is the
    lowest of them."""
    X, t = _blobs(n_per, dim, 4, seed=1)
    folds = fold_assignment(t, 4, seed=0)
    settings = ProbeSettings(steps=150)
    cands = [0.0, 0.3]
    wd, scores = select_weight_decay(X, t, 4, folds, settings, cands, seed=5, device="cpu")
    assert wd == chosen and set(scores) == set(cands)
    test = folds == 0
    for c in cands:
        P = oof_probs(X, t, 4, folds, ProbeSettings(steps=150, weight_decay=c), seed=5, device="cpu")
        assert scores[c] == pytest.approx(held_out_nll(P[test], t[test], 4), rel=1e-5)
    assert scores[wd] == min(scores.values())
    assert select_weight_decay(X, t, 4, folds, settings, [0.01], seed=5) == (0.01, {})   # one: nothing fitted


def test_the_chosen_weight_decay_is_stored_and_used_by_the_refits(tmp_path):
    from curator import runfiles
    from curator.evidence import compute_evidence, load_evidence, write_evidence
    from curator.evidence.config import EvidenceConfig
    from curator.rundir import RunDir

    X, t = _blobs(40, 400, 4, seed=1)
    cfg = EvidenceConfig(k=5, probe_weight_decay=[0.0, 0.3])
    ev = compute_evidence(X, t, 4, cfg, seed=0)
    assert ev.probe.weight_decay == 0.3 and set(ev.weight_decay_nll) == {0.0, 0.3}
    run = RunDir(tmp_path / "run")
    write_evidence(run, ev)
    back = load_evidence(run, X, t, 4, cfg, seed=0)
    assert back.probe.weight_decay == 0.3                       # not the config's first candidate
    np.testing.assert_allclose(back.refit(np.ones(len(t)), 1), ev.refit(np.ones(len(t)), 1), atol=1e-6)
    (run.path / runfiles.PROBE).write_text('{"weight_decay": "heavy"}')
    with pytest.raises(ValueError, match="probe.json.*weight decay"):
        load_evidence(run, X, t, 4, cfg, seed=0)


@pytest.mark.parametrize("bad", [[], -0.1, [0.01, 11.0]])
def test_a_bad_weight_decay_setting_is_refused(bad):
    from curator.config import ConfigError
    from curator.evidence.config import EvidenceConfig

    with pytest.raises(ConfigError, match="probe_weight_decay"):
        EvidenceConfig(probe_weight_decay=bad)
