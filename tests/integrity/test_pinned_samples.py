"""Pinned samples: each manifest row records its file and a content fingerprint; a dataset that
changed after the run is detected by every reader, and the explorer shows each sample's own image
(by its pinned path), never the image now at the same position of a re-listed folder."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curator.data.options import DatasetOptions
from curator.data.pins import changed_samples
from curator.data.registry import load_dataset
from curator.explore.thumbnails import Thumbnails, open_run_images, placeholder
from curator.rundir import release_writer_lock
from pipelines.prepare import prepare_run

from integrity_inputs import image_bytes, image_folder


def _pixels(raw: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def _prepare(folder: Path, out: Path, **kw):
    run, ds = prepare_run(out, DatasetOptions(dataset="imagefolder", root=str(folder), **kw))
    release_writer_lock(run.path)
    return run, ds


def test_manifests_carry_file_and_pin(tmp_path):
    image_folder(tmp_path / "f")
    ds = load_dataset(DatasetOptions(dataset="imagefolder", root=str(tmp_path / "f")))
    m = ds.manifest
    assert (m["file"] == m["sample_id"]).all()
    st = (tmp_path / "f/cat/0.png").stat()
    assert m.set_index("sample_id").loc["cat/0.png", "pin"] == f"stat:{st.st_size}:{st.st_mtime_ns}"
    digits = load_dataset(DatasetOptions(limit=5))
    assert (digits.manifest["file"] == "").all() and digits.manifest["pin"].str.startswith("px:").all()
    assert digits.manifest["pin"].nunique() == 5


def test_explorer_shows_each_samples_own_image_after_files_were_added(tmp_path):
    folder = image_folder(tmp_path / "f", per_class=4)
    original = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.png")}
    run, ds = _prepare(folder, tmp_path / "run")
    # after the audit: new files that sort before every old one, and one file replaced
    for c in ("cat", "dog"):
        (folder / c / "00-new.png").write_bytes(image_bytes(seed=500, size=8))
    (folder / "dog/2.png").write_bytes(image_bytes(seed=501, size=8))

    images = open_run_images(run.path)
    assert [(c.sample_id, "changed" in c.reason) for c in images.changed] == [("dog/2.png", True)]
    thumbs = Thumbnails(images)
    train = ds.train
    for sid, ref in zip(train["sample_id"], train["image_ref"]):
        if sid == "dog/2.png":
            np.testing.assert_array_equal(thumbs.get(int(ref), 16), placeholder(16))
            assert "changed" in thumbs.error(int(ref))
        else:
            np.testing.assert_array_equal(images.source.read(int(ref)), _pixels(original[sid]), err_msg=sid)


def test_a_deleted_file_is_named(tmp_path):
    folder = image_folder(tmp_path / "f")
    run, _ = _prepare(folder, tmp_path / "run")
    (folder / "cat/1.png").unlink()
    images = open_run_images(run.path)
    assert [(c.sample_id, c.reason) for c in images.changed] == [("cat/1.png", "file 'cat/1.png' is missing")]


def test_in_memory_images_are_checked_against_their_pixel_hash(tmp_path):
    run, ds = prepare_run(tmp_path / "run", DatasetOptions(limit=50, imbalance="none", noise="none"))
    release_writer_lock(run.path)
    assert not open_run_images(run.path).changed
    m = pd.read_parquet(run / "manifest.parquet")
    m.loc[3, "pin"] = "px:0000000000000000"  # as if the dataset's pixels had changed since the run
    m.to_parquet(run / "manifest.parquet")
    images = open_run_images(run.path)
    assert [c.sample_id for c in images.changed] == [m.loc[3, "sample_id"]]


def test_a_rerun_names_the_changed_samples_and_recomputes(tmp_path, caplog):
    folder = image_folder(tmp_path / "f")
    run, _ = _prepare(folder, tmp_path / "run")
    first = run.stage_record("check_images")["inputs"]
    (folder / "cat/2.png").write_bytes(image_bytes(seed=77, size=10))
    with caplog.at_level(logging.WARNING):
        run, _ = _prepare(folder, tmp_path / "run")
    assert any("cat/2.png" in r.getMessage() and "changed" in r.getMessage() for r in caplog.records)
    assert run.stage_record("check_images")["inputs"] != first, "the image check ran again on the new content"


def test_changed_samples_reasons(tmp_path):
    folder = image_folder(tmp_path / "f")
    m = load_dataset(DatasetOptions(dataset="imagefolder", root=str(folder))).manifest
    assert changed_samples(m, root=folder) == []
    (folder / "cat/0.png").write_bytes(image_bytes(seed=3, size=20))
    (folder / "dog/0.png").unlink()
    reasons = {c.sample_id: c.reason for c in changed_samples(m, root=folder)}
    assert set(reasons) == {"cat/0.png", "dog/0.png"}
    assert "size" in reasons["cat/0.png"] and "missing" in reasons["dog/0.png"]
