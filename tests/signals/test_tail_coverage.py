"""Shot groups (paper 002 split) and per-class coverage."""
import numpy as np
import pytest

from curator.signals.tail import class_coverage, shot_group


def test_shot_group_boundaries():
    got = shot_group([0, 20, 21, 99, 100, 5000])
    assert got.tolist() == ["few", "few", "medium", "medium", "many", "many"]


def test_class_coverage_counts_clean_share_spread_and_risk():
    rng = np.random.default_rng(0)
    n_per = [150, 40, 12]
    labels = np.repeat(np.arange(3), n_per)
    x = rng.normal(size=(len(labels), 8)) + 5 * np.eye(8)[labels]
    clean = np.ones(len(labels), bool)
    clean[150:160] = False                                         # 10 of class 1 believed wrong
    truth = labels.copy()
    truth[150:160] = 0
    probs = np.eye(3)[labels] * 0.9 + 0.05                         # predicts the given label
    df = class_coverage(x, labels, 3, clean_mask=clean, probs=probs, true_labels=truth,
                        class_names=["a", "b", "c"], usable_floor=20)
    assert df["count"].tolist() == n_per
    assert df["shot_group"].tolist() == ["many", "medium", "few"]
    assert df["estimated_clean_count"].tolist() == [150, 30, 12]
    assert df["clean_share"].tolist() == pytest.approx([1.0, 0.75, 1.0])
    assert df["true_count"].tolist() == [160, 30, 12]
    # accuracy on samples whose truth is class 0: the 10 relabelled ones are predicted 1 → 150/160
    assert df["accuracy"].tolist() == pytest.approx([150 / 160, 1.0, 1.0])
    assert df["at_risk"].tolist() == [False, False, True]
    # spread: mean cosine distance to the normalised centroid, by hand for class 2
    xn = x[labels == 2] / np.linalg.norm(x[labels == 2], axis=1, keepdims=True)
    c = xn.mean(0) / np.linalg.norm(xn.mean(0))
    assert df["spread"][2] == pytest.approx(np.mean(1 - xn @ c), rel=1e-5)


def test_estimated_counts_drive_the_shot_group():
    labels = np.repeat([0, 1], [120, 30])
    x = np.random.default_rng(1).normal(size=(150, 4))
    df = class_coverage(x, labels, 2, estimated_counts=np.array([60.0, 90.0]))
    assert df["shot_group"].tolist() == ["medium", "medium"]
    assert df["estimated_count"].tolist() == [60.0, 90.0]
