"""The explorer's thumbnails read the run's image cache (RUN/image_cache.json, `curator.data.cache.open_run_caches`):
the pixels the run trained on, also after the images were deleted and the run directory moved; the pinned file
when it is unchanged and larger views are asked for than the cache holds; the files, with one warning naming
why, when the recorded cache is missing or does not match; the placeholder with the cache's reason for a row
the cache could not decode.

The cache is built and recorded by the SSL stage's own code (`pipelines.ssl._split_data`); its pixels are then
overwritten with random ones, so a thumbnail read from the cache cannot be mistaken for one read from a file."""
from __future__ import annotations

import io
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for pipelines

from curator.data.options import DatasetOptions  # noqa: E402
from curator.data.problems import ProblemReport  # noqa: E402
from curator.explore.thumbnails import Thumbnails, open_run_images, placeholder, to_thumbnail  # noqa: E402
from curator.rundir import release_writer_lock  # noqa: E402
from curator.ssl.config import SSLConfig  # noqa: E402
from pipelines.prepare import prepare_run  # noqa: E402
from pipelines.ssl import _split_data  # noqa: E402

SIZE = 16   # the cache's side; the files are 8 x 8


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def _file_pixels(folder: Path, sample_id: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO((folder / sample_id).read_bytes())).convert("RGB"))


@pytest.fixture()
def cached_run(tmp_path):
    """(run dir, training rows, image folder, the planted cache pixels by row, the cache file)."""
    folder = _folder(tmp_path / "imgs")
    run, ds = prepare_run(tmp_path / "run", DatasetOptions(dataset="imagefolder", root=str(folder)))
    release_writer_lock(run.path)
    _split_data(run, ds, "train", SSLConfig(), SIZE, torch.device("cpu"), ProblemReport())
    (npy,) = (run.path / "cache").glob("images-*.npy")
    pixels = np.load(npy, mmap_mode="r+", allow_pickle=False)
    planted = np.random.default_rng(1).integers(0, 256, pixels.shape, dtype=np.uint8)
    pixels[:] = planted
    pixels.flush()
    del pixels
    train = ds.train[["sample_id", "image_ref"]].reset_index(drop=True)
    return run.path, train, folder, planted, npy


def test_thumbnails_come_from_the_run_cache(cached_run, caplog):
    run, train, folder, planted, _ = cached_run
    with caplog.at_level(logging.WARNING, logger="curator.explore.thumbnails"):
        images = open_run_images(run)
    assert not caplog.records and images.cache is not None and not images.changed
    thumbs = Thumbnails(images)
    for i, (sid, ref) in enumerate(zip(train["sample_id"], train["image_ref"])):
        np.testing.assert_array_equal(thumbs.get(int(ref), SIZE), planted[i], err_msg=sid)
        # larger than the cache, and the pinned file is unchanged: the file, not the 16-px cache enlarged
        np.testing.assert_array_equal(thumbs.get(int(ref), 4 * SIZE), to_thumbnail(_file_pixels(folder, sid), 4 * SIZE))


def test_a_file_changed_after_the_run_shows_what_the_run_read(cached_run):
    run, train, folder, planted, _ = cached_run
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / train["sample_id"][2])
    images = open_run_images(run)
    ref = int(train["image_ref"][2])
    assert not images.changed and images.cached_only == {ref}
    np.testing.assert_array_equal(Thumbnails(images).get(ref, 2 * SIZE), planted[2].repeat(2, 0).repeat(2, 1))


def test_a_run_shared_without_its_images_shows_the_cache(cached_run, tmp_path):
    run, train, folder, planted, _ = cached_run
    moved = tmp_path / "shared" / "run"
    shutil.move(str(run), str(moved))       # the recorded cache path no longer exists: found under RUN/cache/
    shutil.rmtree(folder)
    images = open_run_images(moved)
    assert images.cache is not None and not images.changed and len(images.cached_only) == len(train)
    thumbs = Thumbnails(images)
    for i, ref in enumerate(train["image_ref"]):
        np.testing.assert_array_equal(thumbs.get(int(ref), 3 * SIZE), planted[i].repeat(3, 0).repeat(3, 1))
        assert thumbs.error(int(ref)) is None


def _drop_cache_file(run: Path, npy: Path) -> None:
    npy.unlink()


def _other_samples(run: Path, npy: Path) -> None:
    meta = json.loads(npy.with_suffix(".json").read_text())
    meta["ids"] = "0" * 16
    npy.with_suffix(".json").write_text(json.dumps(meta))


def _other_row_count(run: Path, npy: Path) -> None:
    rec = json.loads((run / "image_cache.json").read_text())
    rec["caches"]["train@16"]["n"] += 1
    (run / "image_cache.json").write_text(json.dumps(rec))


def _other_images(run: Path, npy: Path) -> None:
    manifest = pd.read_parquet(run / "manifest.parquet")
    manifest.loc[0, "source"] = "elsewhere/0.png"
    manifest.to_parquet(run / "manifest.parquet")


@pytest.mark.parametrize("damage, why", [(_drop_cache_file, "is missing"), (_other_samples, "other samples"),
                                         (_other_row_count, "recorded for 7 rows"), (_other_images, "other images")])
def test_a_missing_or_mismatched_cache_falls_back_to_the_files(cached_run, caplog, damage, why):
    run, train, folder, planted, npy = cached_run
    damage(run, npy)
    with caplog.at_level(logging.WARNING, logger="curator.explore.thumbnails"):
        images = open_run_images(run)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "image cache is not used" in line and why in line and "train" in line, line
    assert images.cache is None
    thumbs = Thumbnails(images)
    for sid, ref in zip(train["sample_id"], train["image_ref"]):
        np.testing.assert_array_equal(thumbs.get(int(ref), SIZE), to_thumbnail(_file_pixels(folder, sid), SIZE))


def test_a_row_the_cache_could_not_decode_shows_the_placeholder_with_its_reason(cached_run):
    run, train, folder, planted, npy = cached_run
    meta = json.loads(npy.with_suffix(".json").read_text())
    reason = "planted: the image file is truncated"
    meta["bad"] = [{"row": 1, "sample_id": train["sample_id"][1], "source": train["sample_id"][1],
                    "kind": "truncated_image", "reason": reason}]
    npy.with_suffix(".json").write_text(json.dumps(meta))
    thumbs = Thumbnails(open_run_images(run))
    for size in (SIZE, 4 * SIZE):     # also where the (intact) file would be preferred for its size
        np.testing.assert_array_equal(thumbs.get(int(train["image_ref"][1]), size), placeholder(size))
    assert thumbs.error(int(train["image_ref"][1])) == reason
    np.testing.assert_array_equal(thumbs.get(int(train["image_ref"][0]), SIZE), planted[0])
