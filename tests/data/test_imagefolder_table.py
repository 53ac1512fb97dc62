import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curator.data.options import DatasetOptions
from curator.data.problems import DataError
from curator.data.registry import load_dataset


def _png(path, value=0, size=6):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def test_imagefolder_classes_splits_and_notes(tmp_path):
    for split, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "ant"):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", 10 * i)
    (tmp_path / "train" / "zebra").mkdir()                       # empty class
    (tmp_path / "train" / "ant" / "notes.txt").write_text("hi")  # not an image
    (tmp_path / "train" / "ant" / "empty.jpg").write_bytes(b"")  # zero-byte
    _png(tmp_path / "val" / "dog" / "0.png")                     # class unknown to train
    ds = load_dataset(DatasetOptions(dataset="imagefolder", root=str(tmp_path)))
    assert ds.class_names == ["ant", "cat", "zebra"]
    assert len(ds.train) == 6 and len(ds.split("val")) == 2
    row = ds.manifest.set_index("sample_id").loc["train/cat/2.png"]
    assert row["label"] == 1 and row["split"] == "train"
    assert ds.images.read(int(row["image_ref"]))[0, 0, 0] == 20
    kinds = ds.problems.to_frame().set_index("source")["kind"]
    assert kinds["train/ant/empty.jpg"] == "empty_file"
    assert kinds["train/ant/notes.txt"] == "ignored_file"
    assert kinds["val/dog/0.png"] == "unknown_class"
    assert "empty_class" in set(kinds) and any("zebra" in r for r in ds.problems.to_frame()["reason"])


def test_imagefolder_flat_and_errors(tmp_path):
    _png(tmp_path / "a" / "x.jpg")
    _png(tmp_path / "b" / "y.JPEG")
    ds = load_dataset(DatasetOptions(dataset="imagefolder", root=str(tmp_path)))
    assert ds.class_names == ["a", "b"] and list(ds.train["label"]) == [0, 1]
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_dataset(DatasetOptions(dataset="imagefolder", root=str(tmp_path / "flat")))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DatasetOptions(dataset="imagefolder", root=str(tmp_path / "nowhere")))


def _table(tmp_path, rows, kind="csv", classes=None):
    for r in rows:
        if r.get("path") and not str(r["path"]).startswith(("..", "/")) and r.get("_make", True):
            _png(tmp_path / r["path"])
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "_make"} for r in rows])
    path = tmp_path / f"manifest.{kind}"
    df.to_csv(path, index=False) if kind == "csv" else df.to_parquet(path)
    if classes:
        (tmp_path / "classes.txt").write_text("\n".join(classes) + "\n")
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_table_with_names_truth_splits(tmp_path, kind):
    rows = [{"path": f"img/{i}.png", "label": ["cat", "dog", "ant"][i % 3], "true_label": ["cat", "dog", "ant"][(i + (i == 4)) % 3],
             "split": "test" if i == 5 else "train"} for i in range(6)]
    path = _table(tmp_path, rows, kind)
    ds = load_dataset(DatasetOptions(dataset=kind, root=str(path)))
    assert ds.class_names == ["ant", "cat", "dog"]
    assert list(ds.train["label"]) == [1, 2, 0, 1, 2]
    assert int((ds.train["label"] != ds.train["true_label"]).sum()) == 1
    assert list(ds.split("test")["sample_id"]) == ["img/5.png"]
    assert ds.problems.bad == []  # only the note that the classes were inferred
    assert [p.kind for p in ds.problems.notes] == ["inferred_classes"]


def test_table_bad_inputs_are_reported(tmp_path):
    outside = tmp_path.parent / "secret.png"
    _png(outside)
    rows = [
        {"path": "a.png", "label": "cat", "sample_id": "s1"},
        {"path": "b.png", "label": "zebra", "sample_id": "s2"},                      # unknown class name
        {"path": "c.png", "label": "cat", "sample_id": "s1"},                        # duplicate id
        {"path": "../secret.png", "label": "dog", "sample_id": "s4"},                # escapes the folder
        {"path": "gone.png", "label": "dog", "sample_id": "s5", "_make": False},    # missing file
        {"path": "d.png", "label": "dog", "sample_id": "s6", "true_label": "unicorn"},  # unknown true label
        {"path": "e.png", "label": "dog", "sample_id": "s7", "split": "holdout"},    # bad split
    ]
    path = _table(tmp_path, rows, classes=["cat", "dog", "bird"])
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(path)))
    p = ds.problems.to_frame()
    kinds = dict(zip(p["sample_id"], p["kind"]))
    assert kinds["s2"] == "unknown_class" and "zebra" in p.set_index("sample_id").loc["s2", "reason"]
    assert kinds["s1"] == "duplicate_id"
    assert kinds["s4"] == "path_escapes_root"
    assert kinds["s5"] == "missing_file"
    assert kinds["s6"] == "unknown_class" and "unicorn" in p.set_index("sample_id").loc["s6", "reason"]
    assert kinds["s7"] == "bad_split"
    assert any(k == "empty_class" and "bird" in r for k, r in zip(p["kind"], p["reason"]))
    assert list(ds.manifest["sample_id"]) == ["s1"]
    # keep: the duplicate is renamed, not dropped silently
    ds_keep = load_dataset(DatasetOptions(dataset="csv", root=str(path), on_bad="keep"))
    assert "s1#2" in set(ds_keep.manifest["sample_id"])
    with pytest.raises(DataError, match="zebra"):
        load_dataset(DatasetOptions(dataset="csv", root=str(path), on_bad="error"))


def test_table_integer_labels_out_of_range(tmp_path):
    rows = [{"path": f"{i}.png", "label": lab} for i, lab in enumerate([0, 1, 2, 5, -3])]
    path = _table(tmp_path, rows, classes=["a", "b", "c"])
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(path)))
    p = ds.problems.to_frame()
    assert list(p.loc[p["kind"] == "label_out_of_range", "sample_id"]) == ["3.png", "4.png"]
    assert len(ds.train) == 3
    (tmp_path / "classes.txt").unlink()
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(path)))
    assert ds.class_names == [str(c) for c in range(6)]


def test_table_missing_columns_and_file(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"file": ["a.png"], "label": [0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="path"):
        load_dataset(DatasetOptions(dataset="csv", root=str(path)))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DatasetOptions(dataset="parquet", root=str(tmp_path / "none.parquet")))
