import pickle

import numpy as np
import pytest
import torch
from data_builders import write_cifar

from curator.data.options import DatasetOptions
from curator.data.problems import DataError
from curator.data.registry import ADAPTERS, load_dataset


def test_cifar10_layout_images_labels_and_ids(tmp_path):
    made = write_cifar(tmp_path)
    ds = load_dataset(DatasetOptions(dataset="cifar10", root=str(tmp_path)))
    assert ds.class_names[:3] == ["airplane", "automobile", "bird"] and ds.n_classes == 10
    train, test = ds.split("train"), ds.split("test")
    assert len(train) == 100 and len(test) == 20
    assert train["sample_id"].iloc[5] == "train/000005" and test["sample_id"].iloc[3] == "test/000003"
    np.testing.assert_array_equal(train["label"].to_numpy(), made["labels"])
    # row 1024*c + 32*y + x of the flat record is channel c at (y, x)
    img = ds.images.read(int(train["image_ref"].iloc[7]))
    flat = made["data"][7]
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert img[2, 5, 0] == flat[2 * 32 + 5] and img[2, 5, 1] == flat[1024 + 2 * 32 + 5] and img[2, 5, 2] == flat[2048 + 2 * 32 + 5]
    # the batch folder itself is accepted as root
    ds2 = load_dataset(DatasetOptions(dataset="cifar10", root=str(made["folder"])))
    assert len(ds2.train) == 100


def test_cifar100_layout(tmp_path):
    made = write_cifar(tmp_path, n_classes=100, per_batch=150)
    ds = load_dataset(DatasetOptions(dataset="cifar100", root=str(tmp_path)))
    assert ds.n_classes == 100 and len(ds.train) == 150
    np.testing.assert_array_equal(ds.train["label"].to_numpy(), made["labels"])


def test_label_out_of_range_in_batch_is_reported(tmp_path):
    labels = np.zeros(100, dtype=np.int64)
    labels[17] = 12
    write_cifar(tmp_path, train_labels=labels)
    ds = load_dataset(DatasetOptions(dataset="cifar10", root=str(tmp_path)))
    probs = ds.problems.to_frame()
    row = probs[probs["kind"] == "label_out_of_range"]
    assert list(row["sample_id"]) == ["train/000017"] and "12" in row["reason"].iloc[0]
    assert "train/000017" not in set(ds.manifest["sample_id"]) and len(ds.train) == 99


def test_crafted_pickle_in_batch_is_refused(tmp_path):
    import os

    made = write_cifar(tmp_path)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (made["folder"] / "data_batch_3").write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(DataError) as err:
        load_dataset(DatasetOptions(dataset="cifar10", root=str(tmp_path)))
    assert "data_batch_3" in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_missing_batch_and_wrong_root_name_the_path(tmp_path):
    made = write_cifar(tmp_path)
    (made["folder"] / "data_batch_2").unlink()
    with pytest.raises(DataError, match="data_batch_2"):
        load_dataset(DatasetOptions(dataset="cifar10", root=str(tmp_path)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset(DatasetOptions(dataset="cifar10", root=str(tmp_path / "empty")))


def _write_human(path, clean, **sets):
    torch.save({"clean_label": np.asarray(clean, dtype=np.int64), **{k: np.asarray(v, dtype=np.int64) for k, v in sets.items()}}, path)


def test_cifar10n_label_sets_and_truth(tmp_path):
    made = write_cifar(tmp_path)
    clean = made["labels"]
    rng = np.random.default_rng(1)
    worse = np.where(rng.random(100) < 0.4, (clean + 1) % 10, clean)
    aggre = clean.copy()
    aggre[:9] = (aggre[:9] + 3) % 10
    _write_human(tmp_path / "CIFAR-10_human.pt", clean, worse_label=worse, aggre_label=aggre,
                 random_label1=clean, random_label2=clean, random_label3=clean)
    ds = load_dataset(DatasetOptions(dataset="cifar10n", root=str(tmp_path)))  # default: worse
    assert ds.info["label_set"] == "worse"
    np.testing.assert_array_equal(ds.train["label"], worse)
    np.testing.assert_array_equal(ds.train["true_label"], clean)
    np.testing.assert_array_equal(ds.split("test")["label"], made["test_labels"])
    ds = load_dataset(DatasetOptions(dataset="cifar10n", root=str(made["folder"]), label_set="aggre"))
    assert (ds.train["label"] != ds.train["true_label"]).sum() == 9
    with pytest.raises(DataError, match="label-set"):
        load_dataset(DatasetOptions(dataset="cifar10n", root=str(tmp_path), label_set="noisy100"))


def test_cifar100n_default_label_set(tmp_path):
    made = write_cifar(tmp_path, n_classes=100, per_batch=50)
    noisy = (made["labels"] + 1) % 100
    _write_human(tmp_path / "CIFAR-100_human.pt", made["labels"], noisy_label=noisy)
    ds = load_dataset(DatasetOptions(dataset="cifar100n", root=str(tmp_path)))
    assert ds.info["label_set"] == "noisy100"
    np.testing.assert_array_equal(ds.train["label"], noisy)


def test_cifarn_label_file_with_code_is_refused(tmp_path):
    import os

    write_cifar(tmp_path)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"clean_label": Evil()}, tmp_path / "CIFAR-10_human.pt")
    with pytest.raises(DataError, match="CIFAR-10_human.pt"):
        load_dataset(DatasetOptions(dataset="cifar10n", root=str(tmp_path)))
    assert not marker.exists()


def test_cifarn_missing_label_file(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(DataError, match="CIFAR-10_human.pt"):
        load_dataset(DatasetOptions(dataset="cifar10n", root=str(tmp_path)))


def test_all_adapters_registered():
    assert {"digits", "cifar10", "cifar100", "cifar10n", "cifar100n", "clothing1m", "imagefolder", "csv", "parquet"} <= set(ADAPTERS)


def test_several_missing_batches_are_named_at_once(tmp_path):
    made = write_cifar(tmp_path)
    for f in ("data_batch_2", "data_batch_4", "test_batch"):
        (made["folder"] / f).unlink()
    with pytest.raises(DataError, match="missing 3 CIFAR batch files: data_batch_2, data_batch_4, test_batch"):
        load_dataset(DatasetOptions(dataset="cifar10", root=str(tmp_path)))
