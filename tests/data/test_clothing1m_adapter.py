"""The Clothing1M adapter on a generated miniature in the official layout."""
import numpy as np
import pytest
from data_builders import CLOTHING_NAMES, write_clothing1m

from curator.data.options import DatasetOptions
from curator.data.problems import DataError
from curator.data.registry import load_dataset


@pytest.fixture(scope="module")
def clothing(tmp_path_factory):
    root = tmp_path_factory.mktemp("clothing1m")
    return root, write_clothing1m(root)


def _load(root, label_set=None, **kw):
    return load_dataset(DatasetOptions(dataset="clothing1m", root=str(root), label_set=label_set, **kw))


def test_noisy_label_set(clothing):
    root, made = clothing
    ds = _load(root)
    assert ds.class_names == CLOTHING_NAMES and ds.n_classes == 14
    train = ds.train
    assert list(train["sample_id"]) == made["noisy_keys"]
    assert (train["label"].to_numpy() == [made["noisy"][p] for p in made["noisy_keys"]]).all()
    assert not train["trusted"].any()
    # images that also have a clean label carry it as truth; the others have unknown truth
    has_truth = train["true_label"] != -1
    assert set(train.loc[has_truth, "sample_id"]) == set(made["noisy_keys"][: made["n_overlap"]])
    overlap = train[has_truth]
    assert (overlap["true_label"].to_numpy() == [made["clean"][p] for p in overlap["sample_id"]]).all()
    assert int((overlap["label"] != overlap["true_label"]).sum()) == made["n_overlap"] // 2
    assert ds.info["n_noisy_with_clean_label"] == made["n_overlap"]
    assert len(ds.split("val")) == 20 and len(ds.split("test")) == 20
    assert ds.split("val")["trusted"].all()
    assert ds.problems.problems == []
    img = ds.images.read(int(train["image_ref"].iloc[3]))
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8


def test_clean_and_both_label_sets(clothing):
    root, made = clothing
    clean = _load(root, "clean").train
    assert list(clean["sample_id"]) == made["clean_train_keys"]
    assert clean["trusted"].all() and (clean["label"] == clean["true_label"]).all()
    both = _load(root, "both").train
    n_only_clean = len(made["clean_train_keys"]) - made["n_overlap"]
    assert len(both) == len(made["noisy_keys"]) + n_only_clean
    assert int(both["trusted"].sum()) == n_only_clean
    ov = both[both["sample_id"].isin(made["noisy_keys"][: made["n_overlap"]])]
    assert (ov["label"].to_numpy() == [made["noisy"][p] for p in ov["sample_id"]]).all()
    assert (ov["true_label"].to_numpy() == [made["clean"][p] for p in ov["sample_id"]]).all()
    assert not ov["trusted"].any()


def test_long_tail_subsampling_is_the_generic_corruption(clothing):
    root, _ = clothing
    ds = _load(root, "clean", imbalance="exp", gamma=2.0)
    assert ds.info["corruption"]["imbalance"] == "exp" and len(ds.train) < 60


def test_bad_keys_missing_file_escaping_path_missing_label(tmp_path):
    made = write_clothing1m(tmp_path, n_noisy=30, n_clean_train=10, n_overlap=5, n_val=5, n_test=5)
    (tmp_path / made["noisy_keys"][4]).unlink()
    (tmp_path / made["noisy_keys"][6]).write_bytes(b"")
    outside = tmp_path.parent / "outside.jpg"
    outside.write_bytes(b"x")
    with open(tmp_path / "noisy_label_kv.txt", "a") as f:
        f.write("../outside.jpg 3\nimages/0/00/99999.jpg 15\nthis line is broken\n")
    with open(tmp_path / "noisy_train_key_list.txt", "a") as f:
        f.write("../outside.jpg\nimages/0/00/99999.jpg\nimages/1/01/nolabel.jpg\n")
    ds = _load(tmp_path)
    p = ds.problems.to_frame().set_index("sample_id")
    assert p.loc[made["noisy_keys"][4], "kind"] == "missing_file"
    assert p.loc[made["noisy_keys"][6], "kind"] == "empty_file"
    assert p.loc["../outside.jpg", "kind"] == "path_escapes_root"
    assert p.loc["images/0/00/99999.jpg", "kind"] == "label_out_of_range"
    assert p.loc["images/1/01/nolabel.jpg", "kind"] == "missing_label"
    assert "bad_label_line" in set(p["kind"])
    bad = {made["noisy_keys"][4], made["noisy_keys"][6], "../outside.jpg", "images/0/00/99999.jpg", "images/1/01/nolabel.jpg"}
    assert not bad & set(ds.manifest["sample_id"])
    assert len(ds.train) == 30 - 2
    with pytest.raises(DataError, match=r"nolabel\.jpg.*missing_label"):
        _load(tmp_path, on_bad="error")


def test_missing_required_file_names_it(tmp_path):
    write_clothing1m(tmp_path, n_noisy=10, n_clean_train=4, n_overlap=2, n_val=2, n_test=2)
    (tmp_path / "noisy_label_kv.txt").unlink()
    with pytest.raises(DataError, match="noisy_label_kv.txt"):
        _load(tmp_path)
    assert len(_load(tmp_path, "clean").train) == 4  # the clean set does not need it
    with pytest.raises(DataError, match="label-set"):
        _load(tmp_path, "weird")


def test_an_empty_root_lists_every_missing_file_and_where_clothing1m_comes_from(tmp_path):
    with pytest.raises(DataError) as err:
        _load(tmp_path)
    msg = str(err.value)
    assert "noisy_label_kv.txt, noisy_train_key_list.txt" in msg and "optional" in msg and "clean_val_key_list.txt" in msg
    assert "by request" in msg and "\n" not in msg
