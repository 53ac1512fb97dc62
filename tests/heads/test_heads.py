"""Every head trains on digits quickly, returns the contract's columns, and LA+SuperLoss's σ*
separates planted label errors (30% uniform noise, exponential tail γ = 10) from clean samples."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from curator.columns import COLUMNS as SIGNAL_SPECS
from curator.heads.config import HeadsConfig
from curator.heads.predict import accuracy_report, evaluate_on_test, predict_probs
from curator.heads.registry import train_head

FAST = HeadsConfig(epochs=8, batch_size=64, hidden=128)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y.astype(np.int64)


def planted_long_tail_noise(y, gamma=10.0, rate=0.3, seed=0):
    """Exponential tail by true class, then uniform noise: a planted error always changes the label."""
    rng = np.random.default_rng(seed)
    n_max = np.bincount(y).min()
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), int(n_max * gamma ** (-c / 9)), replace=False)
                                   for c in range(10)]))
    truth = y[keep]
    noisy = truth.copy()
    hit = rng.random(len(truth)) < rate
    noisy[hit] = (truth[hit] + rng.integers(1, 10, hit.sum())) % 10
    return keep, noisy, truth


@pytest.mark.parametrize("head", ["ce", "la", "lasl", "cb", "focal", "ldam", "cbs"])
def test_each_head_trains_and_fills_the_contract(digits, head):
    X, y = digits
    r = train_head(head, X, y, 10, FAST, seed=0)
    n = len(y)
    assert r.probs.shape == (n, 10) and np.allclose(r.probs.sum(1), 1, atol=1e-4)
    assert (r.probs.argmax(1) == y).mean() > 0.95  # clean digits are easy
    for col in ("prob_label", "pred", "margin", "loss"):
        name = f"{head}_{col}"
        assert r.signals[name].shape == (n,) and name in SIGNAL_SPECS
    assert r.history["loss"].shape == (FAST.epochs, n) and r.history["pred"].shape == (FAST.epochs, n)
    assert (r.signals[f"{head}_margin"] > 0).mean() > 0.9
    # the returned model predicts from raw embeddings and agrees with the recorded probabilities
    np.testing.assert_allclose(predict_probs(r.model, X, device="cpu"), r.probs, atol=1e-4)


def test_sigma_separates_planted_errors(digits):
    X, y = digits
    keep, noisy, truth = planted_long_tail_noise(y)
    r = train_head("lasl", X[keep], noisy, 10, HeadsConfig(epochs=10, batch_size=64, hidden=128), seed=0)
    sigma = r.signals["lasl_sigma"]
    assert r.history["sigma"].shape == (10, len(keep))
    assert sigma.max() <= np.e + 1e-6 and sigma.min() > 0
    auroc = roc_auc_score(noisy != truth, -sigma)  # low σ* = likely wrong
    assert auroc >= 0.85, auroc


def test_multiple_views_and_unlabeled_rows(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    views = np.stack([X, X + rng.normal(0, 0.5, X.shape).astype(np.float32)])  # (2, N, d)
    y2 = y.copy()
    y2[:50] = -1
    r = train_head("lasl", views, y2, 10, FAST, seed=0)
    assert r.probs.shape == (len(y), 10)
    assert np.isnan(r.signals["lasl_sigma"][:50]).all() and np.isfinite(r.signals["lasl_sigma"][50:]).all()
    assert np.isnan(r.signals["lasl_prob_label"][:50]).all()
    assert (r.probs[:50].argmax(1) == y[:50]).mean() > 0.9  # still predicted


def test_bad_inputs_are_named(digits):
    X, y = digits
    y_bad = y.copy()
    y_bad[7] = 12
    with pytest.raises(ValueError, match="sample 7 has label 12"):
        train_head("ce", X, y_bad, 10, FAST, seed=0)
    X_bad = X.copy()
    X_bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        train_head("ce", X_bad, y, 10, FAST, seed=0)
    with pytest.raises(KeyError, match="unknown head"):
        train_head("nope", X, y, 10, FAST, seed=0)


def test_accuracy_report_shot_groups():
    probs = np.eye(3)[[0, 0, 1, 2, 2]]
    rep = accuracy_report(probs, np.array([0, 1, 1, 2, 0]), np.array([500, 50, 5]))
    assert rep["accuracy"] == pytest.approx(3 / 5)
    assert rep["per_shot"] == {"many": 0.5, "medium": 0.5, "few": 1.0}


def test_evaluate_on_test_split(digits):
    X, y = digits
    r = train_head("la", X[:1200], y[:1200], 10, FAST, seed=0)
    rep = evaluate_on_test(r.model, X[1200:], y[1200:], y[:1200], 10, device="cpu")
    assert rep["accuracy"] > 0.85 and rep["n_test"] == len(y) - 1200



def test_epochs_shrink_with_n_so_cost_grows_linearly():
    from curator.heads.config import HeadsConfig

    cfg = HeadsConfig(full_epochs_up_to=200_000)
    assert cfg.for_samples(50_000) is cfg and cfg.for_samples(200_000) is cfg
    big = cfg.for_samples(1_000_000)                            # share 200k / 1M = 0.2
    assert (big.epochs, big.last_epochs) == (2, 1)              # 10 · 0.2 = 2; last 3 · 0.2 → 1 (floor), +1 before
    for meta in (big.gdw, big.fsr):                             # warm-up 2 → 1, last 3 → 1, epochs 12 · 0.2 → 2
        assert (meta.warmup_epochs, meta.last_epochs, meta.epochs) == (1, 1, 2)
        assert meta.epochs > meta.warmup_epochs                 # at least one weighted epoch
    mid = cfg.for_samples(400_000)                              # share 0.5
    assert (mid.epochs, mid.last_epochs, mid.gdw.epochs, mid.gdw.warmup_epochs, mid.gdw.last_epochs) == (5, 2, 6, 1, 2)
    huge = cfg.for_samples(10**8)
    assert (huge.epochs, huge.gdw.epochs, huge.gdw.warmup_epochs) == (2, 2, 1)
    default = HeadsConfig()                                     # full epochs up to 10k samples
    assert default.for_samples(10_000) is default
    at50k = default.for_samples(50_000)                         # share 0.2
    assert (at50k.epochs, at50k.last_epochs, at50k.gdw.epochs, at50k.gdw.warmup_epochs, at50k.gdw.last_epochs) == \
        (2, 1, 2, 1, 1)
    at20k = default.for_samples(20_000)                         # share 0.5
    assert (at20k.epochs, at20k.gdw.epochs, at20k.gdw.warmup_epochs, at20k.fsr.epochs) == (5, 6, 1, 6)
    assert HeadsConfig(full_epochs_up_to=0).for_samples(10**7).epochs == 10
