"""Duplicate groups (hash + graph, calibrated threshold), leakage pairs, outliers, and the fusion with the audit."""
import numpy as np
import pandas as pd
import pytest

from curator.evidence import KnnGraph, standardise
from curator.evidence.knn import self_knn
from curator.hygiene.duplicates import calibrate_near_duplicates, duplicate_groups, exact_pairs, find_duplicates
from curator.hygiene.fuse import conflict_consensus, fuse_audit, issue_kinds_text, representatives, unusable_mask
from curator.hygiene.leakage import combine, exact_leaks, near_leaks, standardise_like
from curator.hygiene.outliers import find_outliers


def _graph(x, k):
    sims, idx = self_knn(x, k, device="cpu")
    return KnnGraph(idx, sims)


def test_planted_conflicting_duplicates_are_grouped():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 128)).astype(np.float32)     # high-dimensional, as embeddings are
    labels = rng.integers(0, 5, 500)
    pairs = [(0, 100), (1, 101), (2, 102), (3, 103)]   # dst becomes a near-copy of src; three get another label
    for a, b in pairs:
        x[b] = x[a] + 1e-3 * rng.normal(size=128)
    for a, b in pairs[:3]:
        labels[b] = (labels[a] + 1) % 5
    labels[103] = labels[3]
    x[200] = x[201] = x[202] = x[5]                     # a group of four
    labels[[5, 200, 201, 202]] = [1, 1, 1, 2]
    d, summary = find_duplicates(_graph(x, 5), None, labels, z=4)
    for a, b in pairs:
        assert d["dup_group"][a] == d["dup_group"][b] >= 0
    assert d["dup_conflict"][[0, 100, 1, 101, 2, 102]].all() and not d["dup_conflict"][[3, 103]].any()
    assert len({d["dup_group"][i] for i in (5, 200, 201, 202)}) == 1 and d["dup_conflict"][[5, 200, 201, 202]].all()
    planted = {0, 100, 1, 101, 2, 102, 3, 103, 5, 200, 201, 202}
    others = np.setdiff1d(np.arange(500), list(planted))
    assert (d["dup_group"][others] == -1).all() and d["dup_group"].max() == 4
    assert summary["n_groups"] == 5 and summary["n_in_groups"] == 12 and summary["n_conflicting_groups"] == 4
    assert 0.5 < summary["near_duplicate_similarity"] < 1.0


def test_exact_pairs_by_hash_join_groups_the_graph_does_not_see():
    labels = np.array([0, 0, 1, 2, 2])
    hashes = np.array(["h1", "h2", "h1", "", "h1"], dtype=object)     # "" = not measured: never a duplicate
    r, c = exact_pairs(hashes)
    assert sorted(zip(r.tolist(), c.tolist())) == [(2, 0), (4, 0)]
    d = duplicate_groups(5, r, c, labels)
    assert d["dup_group"].tolist() == [0, -1, 0, -1, 0] and d["dup_conflict"].tolist() == [True, False, True, False, True]


def test_calibration_follows_the_datasets_own_distances():
    rng = np.random.default_rng(0)
    tight = rng.normal(size=(800, 128)) * 0.05 + rng.normal(size=(1, 128))     # every sample close to every other
    loose = rng.normal(size=(800, 128))
    thr_t, _ = calibrate_near_duplicates(_graph(tight, 5), z=4)
    thr_l, info = calibrate_near_duplicates(_graph(loose, 5), z=4)
    assert thr_l < thr_t < 1.0 and info["method"] == "calibrated"
    # on random data nothing is a near duplicate; an identical copy always is
    loose[7] = loose[3]
    d, _ = find_duplicates(_graph(loose, 5), None, np.zeros(800, int), z=4)
    assert set(np.flatnonzero(d["dup_group"] >= 0)) == {3, 7}


def test_fixed_threshold_overrides_calibration():
    x = np.random.default_rng(2).normal(size=(300, 8))
    d, s = find_duplicates(_graph(x, 5), None, np.zeros(300, int), z=4, fixed_similarity=0.2)
    assert s["near_duplicate_similarity"] == 0.2 and s["calibration"]["method"].startswith("fixed")
    assert (d["dup_group"] >= 0).sum() > 50


def test_test_embeddings_are_standardised_with_the_training_statistics_and_leaks_found():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(400, 24)).astype(np.float32)
    np.testing.assert_allclose(standardise_like(train, train), standardise(train), atol=1e-5)
    test = rng.normal(size=(50, 24)).astype(np.float32)
    test[3] = train[10] * 1.001                                   # a near copy (cosine ~1)
    test[4] = 0.0                                                 # could not be embedded: left out
    ids = np.array([f"train/{i}" for i in range(400)])
    pairs = near_leaks(standardise(train), ids, test, train, np.array([f"test/{i}" for i in range(50)]), 0.99, 5,
                       device="cpu")
    assert pairs[["sample_id", "other_id"]].values.tolist() == [["train/10", "test/3"]]
    ex = exact_leaks(pd.DataFrame({"sample_id": ["a", "b"], "content_hash": ["h1", "h2"]}),
                     pd.DataFrame({"sample_id": ["t1", "v1"], "content_hash": ["h2", "h9"], "split": ["test", "val"]}))
    assert ex[["sample_id", "other_id", "match"]].values.tolist() == [["b", "t1", "exact"]]
    both = combine(ex, pd.DataFrame({"sample_id": ["b"], "other_id": ["t1"], "other_split": ["test"], "match": ["near"],
                                     "similarity": np.float32([0.99])}))
    assert both["match"].tolist() == ["exact"]                    # an exact pair is listed once, as exact


def test_outliers_are_isolated_samples_and_a_small_class_is_not():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(size=(600, 64)) * 0.3 + np.eye(64)[0] * 3,
                        rng.normal(size=(8, 64)) * 0.2 - np.eye(64)[0] * 3,            # a tail class of 8, tight
                        rng.normal(size=(4, 64)) * 0.3 + np.eye(64)[[2, 3, 4, 5]] * 6])   # four lone samples
    g = _graph(x, 20)
    out, info = find_outliers(g, neighbours=5, z=4)
    assert set(np.flatnonzero(out["is_outlier_issue"])) == {608, 609, 610, 611}
    assert info["distance_threshold"] > info["median_distance"]
    # the 20th neighbour of a tail sample is in another class: measured there, the tail class would look isolated
    far, _ = find_outliers(g, neighbours=20, z=4)
    assert far["is_outlier_issue"][600:608].all()


def test_fusion_flags_the_minority_copy_and_lists_the_kinds():
    table = pd.DataFrame({"sample_id": ["a", "b", "c", "d", "e"], "label": [0, 1, 2, 2, 2],
                          "label_issue_score": [0.1, 0.2, 0.9, 0.1, 0.3], "is_label_issue": [False, False, True, False, False],
                          "suggested_label": [0, 1, 1, 2, 0], "suggested_label_confidence": np.float32([0.9] * 5),
                          "rank": [5, 4, 1, 3, 2], "shot_group": ["many"] * 5})
    hyg = pd.DataFrame({"sample_id": ["a", "b", "c", "d", "e"], "dup_group": [0, 0, -1, 1, 1],
                        "is_duplicate_issue": [True, True, False, True, True], "is_leak_issue": [False, False, True, False, False],
                        "is_quality_issue": [False, False, True, True, False],
                        "quality_issues": ["", "", "blurry", "grayscale", ""], "is_outlier_issue": [False] * 5})
    cp = np.full((5, 3), 0.05)
    cp[:2, 0] = 0.9                                   # a and b look like class 0: b's label 1 is the wrong one
    cp[2:, 2] = 0.9
    out = fuse_audit(table, hyg, cp, cp)
    assert out["is_label_issue"].tolist() == [False, True, True, False, False]
    assert out.loc[1, "suggested_label"] == 0 and out.loc[1, "suggested_label_confidence"] == pytest.approx(0.9)
    assert out["issue_kinds"].tolist() == ["duplicate", "label,duplicate", "label,leak,quality", "duplicate,quality",
                                           "duplicate"]
    # the kept member of each group: not a label issue first; for d/e: d is grayscale (usable), lower score wins
    assert out["duplicate_of"].tolist() == ["", "a", "", "", "d"]
    with pytest.raises(ValueError, match="same order"):
        fuse_audit(table, hyg.iloc[::-1], cp, cp)


def test_consensus_is_one_of_the_groups_own_labels_and_representatives_prefer_usable_images():
    group = np.array([0, 0, -1, 1, 1, 1])
    labels = np.array([3, 4, 0, 1, 1, 1])
    cp = np.full((6, 5), 0.01)
    cp[:2, 2] = 0.95                                 # both look like class 2, which neither carries
    cp[:2, 4] = 0.03
    assert conflict_consensus(group, labels, cp).tolist() == [4, 4, -1, -1, -1, -1]
    rep = representatives(group, np.array([0, 0, 0, 0, 0, 0], bool), np.array([1, 0, 0, 1, 0, 0], bool),
                          np.array([0.1, 0.5, 0, 0.1, 0.2, 0.2]))
    assert rep.tolist() == [1, 1, -1, 4, 4, 4]
    assert unusable_mask(["dark,grayscale", "grayscale", "", None]).tolist() == [True, False, False, False]
    assert issue_kinds_text({"outlier": np.array([True, False]), "label": np.array([True, True])}).tolist() == \
        ["label,outlier", "label"]
