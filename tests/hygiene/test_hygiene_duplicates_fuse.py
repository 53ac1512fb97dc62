"""Duplicate groups (hash + graph, calibrated threshold), leakage pairs, outliers, and the fusion with the audit."""
import numpy as np
import pandas as pd
import pytest

from curator.evidence import KnnGraph, standardise
from curator.evidence.knn import self_knn
from curator.hygiene.duplicates import (DETAIL_SIMILARITY, PIXEL_SIMILARITY, calibrate_near_duplicates, confirmed,
                                        duplicate_groups, exact_pairs, find_duplicates, judge_pairs, pixel_similarity)
from curator.hygiene.fuse import conflict_consensus, fuse_audit, issue_kinds_text, representatives, unusable_mask
from curator.hygiene.leakage import combine, confirm_near_leaks, exact_leaks, leak_columns, near_leaks, standardise_like
from curator.hygiene.outliers import find_outliers


def _graph(x, k):
    sims, idx = self_knn(x, k, device="cpu")
    return KnnGraph(idx, sims)


def _thumbs(n, copies, seed=0):
    """(n, 256) uint8 random thumbnails (every image its own picture); for each (a, b) of `copies` b's thumbnail is a's
    re-encoded: ±3 grey levels of noise and 10 levels brighter."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 256, (n, 256)).astype(np.int16)
    for a, b in copies:
        t[b] = t[a] + 10 + rng.integers(-3, 4, 256)
    return np.clip(t, 0, 255).astype(np.uint8)


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
    copies = pairs + [(5, 200), (5, 201), (5, 202)]
    d, summary = find_duplicates(_graph(x, 5), None, labels, z=4, thumbnails=_thumbs(500, copies))
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
    d, _ = find_duplicates(_graph(loose, 5), None, np.zeros(800, int), z=4, thumbnails=_thumbs(800, [(3, 7)]))
    assert set(np.flatnonzero(d["dup_group"] >= 0)) == {3, 7}


def test_fixed_threshold_overrides_calibration():
    x = np.random.default_rng(2).normal(size=(300, 8))
    d, s = find_duplicates(_graph(x, 5), None, np.zeros(300, int), z=4, fixed_similarity=0.2)
    assert s["near_duplicate_similarity"] == 0.2 and s["calibration"]["method"].startswith("fixed")
    assert (d["duplicate_type"] == "candidate").sum() > 50 and s["near_candidate_pairs"] > 50


def test_close_embeddings_of_different_pictures_are_not_duplicates():
    """Look-alikes: the embeddings put pairs next to each other (cosine ~1) but the pictures differ; exact and near
    copies (re-encoded, brighter, mirrored) are confirmed by the pixels."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 64)).astype(np.float32)
    for a, b in [(0, 100), (1, 101), (2, 102), (3, 103)]:
        x[b] = x[a] + 1e-3 * rng.normal(size=64)
    t = _thumbs(400, [(0, 100)])                                  # 0/100: a re-encoded copy
    t[101] = t[1].reshape(16, 16)[:, ::-1].ravel()               # 1/101: a mirror image
    # 2/102 and 3/103: different pictures (their own random thumbnails) with near-identical embeddings
    hashes = np.array([f"h{i}" for i in range(400)], dtype=object)
    hashes[103] = hashes[3] = "same"                             # ... unless the pixels are identical
    d, s = find_duplicates(_graph(x, 5), hashes, np.zeros(400, int), z=4, thumbnails=t,
                           ids=np.array([f"s{i}" for i in range(400)]))
    grouped = set(np.flatnonzero(d["dup_group"] >= 0).tolist())
    assert grouped == {0, 100, 1, 101, 3, 103}
    assert d["duplicate_type"][[0, 1, 2, 3]].tolist() == ["near", "near", "", "exact"]
    assert d["duplicate_pixel_similarity"][2] < 0.5 and d["duplicate_pixel_similarity"][0] > PIXEL_SIMILARITY
    assert s["near_rejected_pairs"] >= 1 and s["near_candidate_pairs"] == 0 and (d["duplicate_candidate_of"] == "").all()


def test_the_pixels_find_copies_the_embeddings_leave_below_the_threshold():
    """Weak embeddings: a copy is its original's nearest neighbour but far below the calibrated similarity. With pixels
    the nearest neighbours are compared and the copy is found; without pixels it is not even a candidate."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    x[200] = x[7] + 1.2 * rng.normal(size=64)                     # cosine ~0.6: the nearest, not "near"
    g = _graph(x, 5)
    thr, _ = calibrate_near_duplicates(g, z=4)
    assert g.indices[200, 0] == 7 and g.similarities[200, 0] < thr
    d, s = find_duplicates(g, None, np.zeros(300, int), z=4, thumbnails=_thumbs(300, [(7, 200)]))
    assert set(np.flatnonzero(d["dup_group"] >= 0)) == {7, 200} and s["near_confirmed_below_similarity"] == 1
    d2, _ = find_duplicates(g, None, np.zeros(300, int), z=4)
    assert (d2["duplicate_type"] == "").all()


def test_the_pixel_bound_rises_where_all_pictures_are_alike():
    """Simple, alike pictures (like 8 x 8 digits): every thumbnail is one pattern plus its own variation, so neighbours
    correlate ~0.95 and a fixed 0.9 would make one group of nearly everything; the calibrated bound keeps the planted
    copy only."""
    rng = np.random.default_rng(12)
    pattern = 128 + 40 * rng.normal(size=256)                                       # one shared picture, with detail
    t = np.clip(pattern + rng.normal(0, 8, (200, 256)), 0, 255).astype(np.uint8)   # each image its own variation
    t[150] = np.clip(t[40].astype(int) + rng.integers(-1, 2, 256), 0, 255)          # the one copy
    x = rng.normal(size=(200, 32)).astype(np.float32)
    x[150] = x[40] + 0.3 * rng.normal(size=32)                                     # neighbours in the embeddings
    g = _graph(x, 5)
    fixed, _ = find_duplicates(g, None, np.zeros(200, int), z=4, thumbnails=t, pixel_threshold=PIXEL_SIMILARITY)
    calibrated, s = find_duplicates(g, None, np.zeros(200, int), z=4, thumbnails=t)
    assert (fixed["dup_group"] >= 0).sum() > 100
    assert s["pixel_similarity"] > 0.97 and s["pixel_calibration"]["median_neighbour_layout"] > 0.9
    assert set(np.flatnonzero(calibrated["dup_group"] >= 0)) == {40, 150}


def test_without_pixels_close_pairs_are_unconfirmed_candidates_only():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 64)).astype(np.float32)
    x[50] = x[10]                                                 # even identical embeddings
    x[60] = x[20] + 1e-3 * rng.normal(size=64)
    ids = np.array([f"s{i}" for i in range(300)])
    d, s = find_duplicates(_graph(x, 5), None, np.array([0, 1] * 150), z=4, ids=ids)
    assert (d["dup_group"] == -1).all() and not d["dup_conflict"].any() and s["n_groups"] == 0
    assert set(np.flatnonzero(d["duplicate_type"] == "candidate")) == {10, 50, 20, 60}
    assert (d["duplicate_candidate_of"][10], d["duplicate_candidate_of"][60]) == ("s50", "s20")
    assert np.isnan(d["duplicate_pixel_similarity"]).all() and s["n_candidates"] == 4
    # a thumbnail for only one side of a pair does not confirm it either
    has = np.ones(300, bool)
    has[50] = False
    d2, _ = find_duplicates(_graph(x, 5), None, np.zeros(300, int), z=4, thumbnails=_thumbs(300, [(10, 50), (20, 60)]),
                            has_thumbnail=has, ids=ids)
    assert d2["duplicate_type"][[10, 50, 20, 60]].tolist() == ["candidate", "candidate", "near", "near"]


def test_pixel_similarity_against_a_direct_computation():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (12, 256)).astype(np.uint8)
    b = rng.integers(0, 256, (12, 256)).astype(np.uint8)

    def direct(u, v, floor):                                      # loops, no vectorisation: the definition itself
        u, v = u.reshape(16, 16).astype(float), v.reshape(16, 16).astype(float)
        best = -1.0
        for w in (v, v[:, ::-1]):
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    p, q = [], []
                    for i in range(16):
                        for j in range(16):
                            if 0 <= i + dy < 16 and 0 <= j + dx < 16:
                                p.append(u[i + dy, j + dx]); q.append(w[i, j])
                    p, q = np.array(p) - np.mean(p), np.array(q) - np.mean(q)
                    best = max(best, np.mean(p * q) / (max(p.std(), floor) * max(q.std(), floor)))
        return best

    def detail(u):
        u = u.reshape(16, 16).astype(float)
        return u - ndimage.uniform_filter(u, size=3, mode="reflect")

    layout, fine = pixel_similarity(a, b, chunk=5)
    np.testing.assert_allclose(layout, [direct(a[i], b[i], 4.0) for i in range(12)], atol=1e-5)
    np.testing.assert_allclose(fine, [direct(detail(a[i]), detail(b[i]), 1.0) for i in range(12)], atol=1e-4)
    np.testing.assert_allclose(pixel_similarity(a, a), 1.0, atol=1e-5)
    flat = np.full((1, 256), 120, np.uint8)
    noisy = (flat + rng.integers(0, 2, (1, 256))).astype(np.uint8)   # a nearly flat image: its noise is no pattern
    assert pixel_similarity(noisy, noisy[:, ::-1])[0][0] < 0.2


def test_a_shared_layout_with_different_detail_is_not_one_picture():
    """Two skies with the same gradient and different content: the layout correlates, the detail does not; a
    re-encoded copy (noise of ±2 grey levels) keeps both."""
    rng = np.random.default_rng(8)
    ramp = np.repeat(np.linspace(60, 200, 16)[:, None], 16, axis=1)
    one = np.clip(ramp + rng.uniform(-10, 10, (16, 16)), 0, 255).astype(np.uint8).reshape(1, 256)
    other = np.clip(ramp + rng.uniform(-10, 10, (16, 16)), 0, 255).astype(np.uint8).reshape(1, 256)
    copy = np.clip(one.astype(int) + rng.integers(-2, 3, (1, 256)), 0, 255).astype(np.uint8)
    layout, fine = pixel_similarity(np.concatenate([one, one]), np.concatenate([other, copy]))
    assert layout[0] > PIXEL_SIMILARITY and fine[0] < DETAIL_SIMILARITY
    assert confirmed(layout, fine).tolist() == [False, True]
    # judge_pairs (detail only where the layout passes) decides exactly as the two measures do
    pairs_a = np.concatenate([one, one, one])
    pairs_b = np.concatenate([other, copy, np.random.default_rng(1).integers(0, 256, (1, 256)).astype(np.uint8)])
    lay, ok, _ = judge_pairs(pairs_a, pairs_b)
    np.testing.assert_allclose(lay, pixel_similarity(pairs_a, pairs_b)[0], atol=1e-5)
    assert ok.tolist() == confirmed(*pixel_similarity(pairs_a, pairs_b)).tolist() == [False, True, False]


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


def test_near_leaks_need_the_pixels_and_unconfirmed_ones_are_listed_not_flagged():
    t = _thumbs(4, [(0, 1)])                                     # a/t1: one picture; b/t2: look-alikes; c/t3: no pixels
    props = pd.DataFrame({"sample_id": ["a", "t1", "b", "t2", "c"],
                          "thumbnail": [t[0].tobytes(), t[1].tobytes(), t[2].tobytes(), t[3].tobytes(), None]})
    near = pd.DataFrame({"sample_id": ["a", "b", "c"], "other_id": ["t1", "t2", "t3"], "other_split": "test",
                         "match": "near", "similarity": np.float32([0.99, 0.995, 0.99])})
    got = confirm_near_leaks(near, props)
    assert got[["sample_id", "match"]].values.tolist() == [["a", "near"], ["c", "candidate"]]
    # below the embedding similarity only the pixels can speak for a pair: a/t1 stays, c/t3 (no pixels) goes
    low = confirm_near_leaks(near.assign(similarity=np.float32([0.3, 0.3, 0.3])), props, similarity=0.9)
    assert low[["sample_id", "match"]].values.tolist() == [["a", "near"]]
    flags = leak_columns(np.array(["a", "b", "c"]), got)
    assert flags["is_leak_issue"].tolist() == [True, False, False]
    assert (confirm_near_leaks(near, None)["match"] == "candidate").all()     # --embeddings: nothing decoded


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
