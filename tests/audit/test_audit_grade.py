"""The evidence grade's parts: the supported noise rate, the flag cap and the weak-evidence posterior."""
import numpy as np
import pytest

from curator.audit.grade import cap_flags, grade_evidence, supported_noise_rate, temper_posterior


def _likelihoods(n: int, C: int, noise: float, strength: float, seed: int):
    """Out-of-fold-like evidence: each row peaks on the TRUE class with weight `strength`; `noise` of the given
    labels are flipped to a uniformly random other class."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, C, n)
    given = true.copy()
    flip = rng.random(n) < noise
    given[flip] = (true[flip] + rng.integers(1, C, flip.sum())) % C
    L = rng.dirichlet(np.ones(C), n) * (1 - strength)
    L[np.arange(n), true] += strength
    return L, given, flip


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.3])
def test_supported_noise_rate_bounds_uniform_noise_from_above_and_tightly(noise):
    L, y, flip = _likelihoods(20000, 10, noise, 0.5, seed=1)
    nu = supported_noise_rate(L, y)
    assert flip.mean() - 0.01 <= nu <= flip.mean() + 0.05


def test_supported_noise_rate_of_uninformative_evidence_is_high():
    rng = np.random.default_rng(0)
    L = rng.dirichlet(np.ones(10), 5000)                    # says nothing about any label
    assert supported_noise_rate(L, rng.integers(0, 10, 5000)) > 0.5


def test_cap_flags_keeps_the_highest_scores():
    score = np.array([0.9, 0.6, 0.95, 0.7, 0.2])
    flags = score > 0.5
    assert cap_flags(flags, score, None).tolist() == flags.tolist()
    assert cap_flags(flags, score, 10).tolist() == flags.tolist()
    assert np.flatnonzero(cap_flags(flags, score, 2)).tolist() == [0, 2]
    assert not cap_flags(flags, score, 0).any()


def test_temper_posterior_is_bayes_with_one_prior_odds_factor():
    rng = np.random.default_rng(3)
    n, C = 3000, 5
    post = rng.dirichlet(np.ones(C) * 0.7, n)
    y = rng.integers(0, C, n)
    rows = np.arange(n)
    before = 1 - post[rows, y]
    assert before.mean() > 0.5                             # a posterior that believes most labels wrong
    out, k = temper_posterior(post, y, 0.04)
    after = 1 - out[rows, y]
    assert after.mean() == pytest.approx(0.04, abs=1e-6)   # believes exactly the allowed noise
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-9)
    # independently: every sample's odds of a wrong label were multiplied by the same k
    odds_ratio = (after / (1 - after)) / (before / (1 - before))
    np.testing.assert_allclose(odds_ratio, k, rtol=1e-6)
    # the other classes keep their proportions (the suggestion among them does not change) ...
    others = post.copy()
    others[rows, y] = -1
    o2 = out.copy()
    o2[rows, y] = -1
    assert (others.argmax(1) == o2.argmax(1)).all()
    # ... and the order of the scores is the same (the review list and AUROC do not change)
    assert (np.argsort(before, kind="stable") == np.argsort(after, kind="stable")).all()


def test_temper_posterior_never_raises_the_noise():
    post = np.array([[0.9, 0.1], [0.8, 0.2]])
    out, k = temper_posterior(post, np.array([0, 0]), 0.5)
    assert k == 1.0 and np.array_equal(out, post)


def test_weak_grade_caps_flags_by_the_supported_noise():
    # weak, informative evidence on clean labels: ν̂ ≈ 0, so the cap is 3 × the 3 % floor
    L, y, _ = _likelihoods(4000, 10, 0.0, 0.15, seed=2)
    knn = np.roll(L, 1, axis=1)                             # a second view that mostly disagrees: low separability
    g = grade_evidence(L, knn, L, y)
    assert g["grade"] == "weak" and g["informative"]
    assert g["believed_noise_rate"] == pytest.approx(max(g["supported_noise_rate"], 0.03))
    assert g["flag_cap"] == int(np.ceil(3 * g["believed_noise_rate"] * 4000))
    strong = grade_evidence(L, L, L, y)                     # the two views agree: no cap
    assert strong["grade"] == "strong" and strong["flag_cap"] is None


@pytest.mark.parametrize("grade,sep", [("moderate", 0.74), ("weak", 0.45)])
def test_evidence_sentence_tells_how_to_measure_the_flags_on_ones_own_data(grade, sep):
    """Moderate and weak evidence: the sentence gives what was measured on similar data and points to the spot
    check; moderate names the clean-folder measurement (flags on labels that were all correct)."""
    from curator.audit.diagnostics import evidence_sentence

    ev = {"grade": grade, "probe_label_agreement": 0.71, "separability": sep, "supported_noise_rate": 0.0,
          "separability_measure": "probe_knn_agreement", "believed_noise_rate": 0.03, "flagged_before_cap": 500,
          "representation": {"kind": "pretrained", "weights": "imagenet"}}
    s = evidence_sentence(ev, n_flagged=180, n=2000)
    assert s.startswith(f"Evidence: {grade}") and "Estimate precision page" in s and "Measured:" in s
    assert "a larger pretrained network (--backbone)" in s and "--embeddings from a pretrained" not in s
    assert ("labels were all correct" in s) == (grade == "moderate")
    assert ("flags only 180 of 2000" in s) == (grade == "weak")
    assert ("the real noise may be higher" in s) == (grade == "weak")


def test_strong_evidence_sentence_has_no_weak_caveats_but_its_measured_precision():
    """Strong evidence is not a licence to relabel unseen: the sentence quotes the precision measured at that grade
    (long-tailed CIFAR-10N, where 2 in 5 flags were still wrong at 8 % noise) and points to the spot check."""
    from curator.audit.diagnostics import evidence_sentence

    s = evidence_sentence({"grade": "strong", "probe_label_agreement": 0.95, "separability": 0.93,
                           "supported_noise_rate": 0.05}, n_flagged=50, n=1000)
    assert s.startswith("Evidence: strong") and "rough" not in s and "cannot tell" not in s
    assert "Measured:" in s and "Estimate precision page" in s and "acted on" not in s


def test_separability_names_each_views_class_under_the_class_prior():
    """Two views that agree on the image but both lean, each its own way, toward a rare class when read as
    likelihoods: under the class prior they name the same class, so long-tailed data is not graded weak for it."""
    probe = np.tile([0.9, 0.1], (100, 1))
    probe[80:] = [0.05, 0.95]    # 20 tail images both views place in the tail class
    knn = probe.copy()
    probe[:40] = [0.4, 0.6]      # head images the probe's class-balanced likelihood tilts to the tail class ...
    knn[:40] = [0.7, 0.3]        # ... and the kNN vote does not
    y = np.repeat([0, 1], [80, 20])
    prior = np.array([0.8, 0.2])
    uniform = grade_evidence(probe, knn, probe, y)
    # raw agreement 0.6; by chance (40·80 + 60·20) / 100² = 0.44 (the probe names 60 tail images, the kNN vote 20)
    assert uniform["probe_knn_agreement"] == pytest.approx(0.6)
    assert uniform["separability_chance"] == pytest.approx(0.44)
    assert uniform["separability"] == pytest.approx((0.6 - 0.44) / 0.56) and uniform["grade"] == "weak"
    g = grade_evidence(probe, knn, probe, y, prior=prior)
    post_p, post_k = probe * prior, knn * prior          # p(c | x) of each view, unnormalised
    assert g["probe_knn_agreement"] == pytest.approx(np.mean(post_p.argmax(1) == post_k.argmax(1))) == 1.0
    assert g["separability_chance"] == pytest.approx(0.8**2 + 0.2**2)
    assert g["separability"] == pytest.approx(1.0) and g["grade"] == "strong"


def test_separability_is_zero_when_both_views_name_one_class():
    """Chance agreement 1 (every image named the same class by both views): no evidence of separation, κ = 0."""
    P = np.tile([0.7, 0.3], (20, 1))
    g = grade_evidence(P, P, P, np.zeros(20, np.int64))
    assert g["probe_knn_agreement"] == 1.0 and g["separability"] == 0.0 and g["grade"] == "weak"


def test_the_audit_grades_with_its_own_class_prior():
    from sklearn.metrics import cohen_kappa_score

    from curator.audit.aggregate import aggregate, knn_likelihood
    from curator.audit.config import AuditConfig
    from curator.evidence import compute_evidence
    from curator.evidence.config import EvidenceConfig

    rng = np.random.default_rng(0)
    sizes = (600, 200, 60, 20)
    t = np.concatenate([np.full(s, c) for c, s in enumerate(sizes)])
    X = (rng.normal(size=(4, 16)) * 1.5)[t] + rng.normal(size=(len(t), 16))
    ev = compute_evidence(X.astype(np.float32), t, 4, EvidenceConfig(k=8, folds=3, probe_steps=80), seed=0,
                          device="cpu")
    res = aggregate(ev, AuditConfig(rounds=0))
    knn = knn_likelihood(ev.graph, t, np.ones(len(t)), 4)
    named_knn, named_probe = (knn * res.prior).argmax(1), (ev.oof_probs * res.prior).argmax(1)
    assert res.evidence["probe_knn_agreement"] == pytest.approx(np.mean(named_knn == named_probe))
    assert res.evidence["separability"] == pytest.approx(cohen_kappa_score(named_probe, named_knn))  # independent κ


def test_a_representation_ceiling_caps_the_grade_and_keeps_the_measured_one():
    """Patch k-means features grade at most weak: the weak rules (flag cap, sentence) apply, the separability's own
    grade is kept beside it; a ceiling above the measured grade changes nothing."""
    from curator.audit.diagnostics import evidence_sentence
    from curator.audit.grade import REPRESENTATION_CEILING

    L, y, _ = _likelihoods(4000, 10, 0.0, 0.5, seed=3)
    free = grade_evidence(L, L, L, y)
    capped = grade_evidence(L, L, L, y, ceiling=REPRESENTATION_CEILING["patch_kmeans"])
    assert free["grade"] == "strong" and "grade_measured" not in free and free["flag_cap"] is None
    assert capped["grade"] == "weak" and capped["grade_measured"] == "strong" and capped["grade_ceiling"] == "weak"
    assert capped["flag_cap"] == int(np.ceil(3 * capped["believed_noise_rate"] * 4000))
    assert capped["separability"] == free["separability"]
    weak = grade_evidence(L, np.roll(L, 1, axis=1), L, y, ceiling="weak")
    assert weak["grade"] == "weak" and "grade_measured" not in weak
    s = evidence_sentence({**capped, "representation": {"kind": "patch_kmeans"}}, n_flagged=360, n=4000)
    assert s.startswith("Evidence: weak") and "whatever their separability" in s and "grade them strong" in s


def test_the_audit_stage_caps_patch_kmeans_evidence(tmp_path, monkeypatch):
    """`audit_stage` reads the run's representation and hands its ceiling to the aggregation."""
    import pipelines.audit as pa

    seen = {}

    def fake_aggregate(evidence, cfg, *, sample_ids=None, grade_ceiling=None):
        seen["ceiling"] = grade_ceiling
        raise RuntimeError("stop here")

    monkeypatch.setattr(pa, "aggregate", fake_aggregate)
    for kind, want in (("patch_kmeans", "weak"), ("pretrained", None)):
        monkeypatch.setattr(pa, "representation", lambda run, kind=kind: {"kind": kind})
        ds = type("DS", (), {"manifest": __import__("pandas").DataFrame({"sample_id": ["a"], "split": ["train"]})})()
        monkeypatch.setattr(pa, "train_rows", lambda ds: np.arange(1))
        ev = type("EV", (), {"labels": np.zeros(1, np.int64)})()
        with pytest.raises(RuntimeError, match="stop here"):
            pa.audit_stage(None, ds, ev, None)
        assert seen["ceiling"] == want
