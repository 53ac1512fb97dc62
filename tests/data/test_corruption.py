import numpy as np
import pytest

from curator.data.corruption import corrupt, target_counts
from curator.data.images import ArrayImages
from curator.data.manifest import Dataset, make_manifest
from curator.data.options import DatasetOptions
from curator.data.problems import DataError
from curator.data.registry import load_dataset

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def balanced(per_class=1000, n_classes=10, names=None, n_test=30):
    labels = np.repeat(np.arange(n_classes), per_class)
    np.random.default_rng(123).shuffle(labels)
    n = len(labels)
    test = np.arange(n_test) % n_classes
    m = make_manifest([f"train/{i}" for i in range(n)] + [f"test/{i}" for i in range(n_test)],
                      np.concatenate([labels, test]), source=["x"] * (n + n_test),
                      split=np.array(["train"] * n + ["test"] * n_test, dtype=object))
    return Dataset("toy", names or [str(c) for c in range(n_classes)], m, ArrayImages(np.zeros((n + n_test, 1, 1, 3), np.uint8)))


def opts(**kw):
    return DatasetOptions(dataset="toy", **kw)


def test_exponential_profile_realises_gamma_by_true_class():
    ds = corrupt(balanced(), opts(imbalance="exp", gamma=100, seed=0))
    c = ds.info["corruption"]
    counts = np.bincount(ds.train["true_label"], minlength=10)
    assert counts.tolist() == c["class_counts"] == [int(1000 * 100 ** (-i / 9)) for i in range(10)]
    assert counts[0] == 1000 and counts[-1] == 10 and c["realised_imbalance_ratio"] == pytest.approx(100)
    assert len(ds.split("test")) == 30  # evaluation splits are not subsampled
    assert (ds.train["label"] == ds.train["true_label"]).all() and c["realised_noise_rate"] == 0


def test_step_profile():
    ds = corrupt(balanced(per_class=200), opts(imbalance="step", gamma=10, seed=1))
    assert np.bincount(ds.train["true_label"]).tolist() == [200] * 5 + [20] * 5
    assert target_counts(np.array([50, 50, 50]), "step", 5).tolist() == [50, 50, 10]


def test_uniform_noise_rate_counts_same_class_draws_as_clean():
    ds = corrupt(balanced(per_class=2000), opts(noise="uniform", noise_rate=0.6, seed=3))
    c = ds.info["corruption"]
    train = ds.train
    realised = float((train["label"] != train["true_label"]).mean())
    assert c["realised_noise_rate"] == pytest.approx(realised)
    assert c["expected_noise_rate"] == pytest.approx(0.54)
    assert abs(realised - 0.54) < 0.015
    assert c["same_class_counts_as_noise"] is False and c["n_resampled_to_same_class"] > 0
    assert c["n_resampled"] - c["n_resampled_to_same_class"] == int((train["label"] != train["true_label"]).sum())


def test_flip_noise_is_pairwise():
    ds = corrupt(balanced(per_class=500), opts(noise="flip", noise_rate=0.3, seed=0))
    t = ds.train
    flipped = t[t["label"] != t["true_label"]]
    assert ((flipped["true_label"] + 1) % 10 == flipped["label"]).all()
    assert abs(len(flipped) / len(t) - 0.3) < 0.03


def test_asym_noise_uses_cifar10_confusions():
    ds = corrupt(balanced(per_class=500, names=CIFAR10_NAMES), opts(noise="asym", noise_rate=0.4, seed=0))
    t = ds.train
    moved = t[t["label"] != t["true_label"]]
    pairs = set(zip(moved["true_label"], moved["label"]))
    assert pairs == {(9, 1), (2, 0), (4, 7), (3, 5), (5, 3)}
    assert ds.info["corruption"]["expected_noise_rate"] == pytest.approx(0.4 * 5 / 10)
    other = corrupt(balanced(per_class=100, n_classes=4), opts(noise="asym", noise_rate=1.0, seed=0)).train
    assert ((other["true_label"] + 1) % 4 == other["label"]).all()


def test_seeded_and_truth_kept_with_both():
    a = corrupt(balanced(), opts(imbalance="exp", gamma=10, noise="uniform", noise_rate=0.4, seed=7))
    b = corrupt(balanced(), opts(imbalance="exp", gamma=10, noise="uniform", noise_rate=0.4, seed=7))
    c = corrupt(balanced(), opts(imbalance="exp", gamma=10, noise="uniform", noise_rate=0.4, seed=8))
    assert a.manifest.equals(b.manifest)
    assert not a.manifest.equals(c.manifest)
    orig = balanced().manifest.set_index("sample_id")["label"]
    assert (a.train["true_label"].to_numpy() == orig.loc[a.train["sample_id"]].to_numpy()).all()


def test_bad_parameters_are_data_errors():
    with pytest.raises(DataError, match="gamma"):
        corrupt(balanced(), opts(imbalance="exp", gamma=0.5))
    with pytest.raises(DataError, match="noise-rate"):
        corrupt(balanced(), opts(noise="uniform", noise_rate=1.5))


def test_load_dataset_applies_corruption_to_digits():
    ds = load_dataset(DatasetOptions(dataset="digits", imbalance="exp", gamma=10, noise="uniform", noise_rate=0.2, seed=0))
    c = ds.info["corruption"]
    assert c["realised_imbalance_ratio"] == pytest.approx(max(c["class_counts"]) / min(c["class_counts"]))
    assert 8 <= c["realised_imbalance_ratio"] <= 12 and 0.1 < c["realised_noise_rate"] < 0.26


SHARED = __import__("pathlib").Path("/work/shared/datasets/cifar10n")


@pytest.mark.skipif(not (SHARED / "embeddings-simsiam-r18-lt100" / "indices.npy").exists(), reason="shared CIFAR-10N copy not present")
def test_reproduces_the_shared_lt100_indices():
    from curator.data.adapters.cifarn import load_label_file
    from curator.data.corruption import subsample_long_tail

    clean = load_label_file(SHARED / "CIFAR-10_human.pt")["clean_label"]
    kept = subsample_long_tail(clean, 10, "exp", 100.0, np.random.default_rng(0))
    np.testing.assert_array_equal(kept, np.load(SHARED / "embeddings-simsiam-r18-lt100" / "indices.npy"))
