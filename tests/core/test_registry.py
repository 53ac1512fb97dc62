import numpy as np
import pytest

from curator.data import DataError, DatasetOptions
from curator.data.registry import load_dataset


def test_digits_default_dataset():
    ds = load_dataset(DatasetOptions())
    m = ds.manifest
    assert len(m) == 1797 and ds.n_classes == 10
    assert m["sample_id"].is_unique
    assert (m["label"] == m["true_label"]).all()
    img = ds.images.read(int(m["image_ref"].iloc[5]))
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8 and img.max() > 100


def test_unknown_dataset_and_missing_root_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset(DatasetOptions(dataset="nope"))


def test_subset_indices_and_limit(tmp_path):
    idx = np.array([5, 2, 9])
    np.save(tmp_path / "idx.npy", idx)
    ds = load_dataset(DatasetOptions(subset_indices=str(tmp_path / "idx.npy")))
    assert list(ds.manifest["sample_id"]) == ["digits/0005", "digits/0002", "digits/0009"]
    np.save(tmp_path / "bad.npy", np.array([1, 5000]))
    with pytest.raises(DataError, match="out of range"):
        load_dataset(DatasetOptions(subset_indices=str(tmp_path / "bad.npy")))
    assert len(load_dataset(DatasetOptions(limit=50)).manifest) == 50
