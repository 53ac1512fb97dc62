import numpy as np
import pytest

from curator.data.options import DatasetOptions
from curator.data.registry import load_dataset
from curator.data.stats import class_counts, dataset_summary, imbalance_ratio, noise_rate, shot_group, shot_group_summary


@pytest.mark.parametrize("n,group", [(1000, "many"), (100, "many"), (99, "medium"), (21, "medium"), (20, "few"), (0, "few")])
def test_shot_group_boundaries(n, group):
    assert shot_group(n) == group


def test_counts_ratio_groups_noise():
    counts = class_counts(np.array([0, 0, 0, 2, 2, -1, 3]), 4)
    assert counts.tolist() == [3, 0, 2, 1]
    assert imbalance_ratio(counts) == 3.0 and imbalance_ratio([0, 0]) is None
    g = shot_group_summary([150, 50, 5], ["a", "b", "c"])
    assert g["many"]["names"] == ["a"] and g["medium"]["classes"] == [1] and g["few"]["n_classes"] == 1
    assert noise_rate(np.array([1, 2, 3, 4]), np.array([1, 0, -1, -1])) == 0.5
    assert noise_rate(np.array([1]), np.array([-1])) is None


def test_dataset_summary_digits_corrupted():
    ds = load_dataset(DatasetOptions(dataset="digits", imbalance="exp", gamma=20, noise="flip", noise_rate=0.25, seed=1))
    s = dataset_summary(ds)
    train = ds.train
    assert s["n_samples"] == len(train) and s["n_classes"] == 10
    assert s["class_counts"] == np.bincount(train["label"], minlength=10).tolist()
    assert s["noise_rate"] == pytest.approx(float((train["label"] != train["true_label"]).mean()))
    assert s["true_imbalance_ratio"] == pytest.approx(s["corruption"]["realised_imbalance_ratio"]) == pytest.approx(s["realised_imbalance_ratio"])
    assert sum(v["n_classes"] for v in s["true_shot_groups"].values()) == 10
    assert s["true_shot_groups"]["few"]["n_classes"] >= 1  # smallest class ~ 180/20 = 9
