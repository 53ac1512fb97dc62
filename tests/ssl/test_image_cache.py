"""Decode once: the uint8 image cache round-trips pixels, reports bad files by sample id (also when reused),
is shared by runs that only differ in labels, and its GPU decoding path (torchvision.io.decode_jpeg, chosen
by device) runs on the CPU here."""
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curator.data import cache as image_cache
from curator.data.images import FileImages, decode_image_bytes, resize_uint8
from curator.data.problems import ProblemReport

SIZE = 16


def _folder(tmp_path, n=6):
    """n images (JPEG and PNG, of different sizes) and one truncated JPEG as the third file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    root.mkdir()
    names = []
    for i in range(n):
        side = 20 + 4 * i
        arr = (rng.random((side, side + 3, 3)) * 255).astype(np.uint8)
        name = f"im{i}.{'png' if i % 3 == 1 else 'jpg'}"
        Image.fromarray(arr).save(root / name, quality=92)
        names.append(name)
    buf = io.BytesIO()
    Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    (root / "broken.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    names.insert(2, "broken.jpg")
    return root, names


def _build(root, names, folder, **kw):
    rep = ProblemReport(on_bad=kw.pop("on_bad", "skip"))
    ids = [f"id-{n}" for n in names]
    cache, usable = image_cache.build(FileImages(root, names), np.arange(len(names)), SIZE, folder, sample_ids=ids,
                                      sources=names, problems=rep, **kw)
    return cache, usable, rep


def test_round_trip_and_truncated_jpeg_reported_by_sample_id(tmp_path):
    root, names = _folder(tmp_path)
    cache, usable, rep = _build(root, names, tmp_path / "c")
    assert cache.pixels.shape == (len(names), SIZE, SIZE, 3) and cache.pixels.dtype == np.uint8
    for i, name in enumerate(names):
        if name == "broken.jpg":
            continue
        want = resize_uint8(decode_image_bytes((root / name).read_bytes())[0], SIZE)
        assert np.array_equal(cache.read(i), want), name
    assert usable.tolist() == [n != "broken.jpg" for n in names]
    (p,) = rep.problems
    assert p.sample_id == "id-broken.jpg" and p.kind == "truncated_image" and p.action == "skipped"
    assert cache.read(2).max() == 0
    # reused: nothing is decoded again, and the bad image is reported again, the same way
    stamp = cache.path.stat().st_mtime_ns
    again, usable2, rep2 = _build(root, names, tmp_path / "c", on_bad="keep")
    assert again.path == cache.path and again.path.stat().st_mtime_ns == stamp
    assert usable2.all() and [(q.sample_id, q.kind, q.action) for q in rep2.problems] == [("id-broken.jpg", "truncated_image", "kept")]
    assert np.array_equal(again.read_batch([5, 0, 3]), np.stack([cache.read(5), cache.read(0), cache.read(3)]))


def test_key_follows_the_images_not_the_labels(tmp_path):
    root, names = _folder(tmp_path)
    files = FileImages(root, names)
    refs = np.arange(len(names))
    k1 = image_cache.identity(files, refs, names)
    assert image_cache.identity(files, refs, names) == k1
    assert image_cache.identity(files, refs, names, pins=["stat:1:2"] * len(names)) != k1
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / names[0])      # an image file changed
    assert image_cache.identity(files, refs, names) != k1
    assert image_cache.cache_key(k1, 16, "pil") != image_cache.cache_key(k1, 32, "pil")


def test_process_pool_gives_the_same_cache(tmp_path):
    root, names = _folder(tmp_path)
    a, _, _ = _build(root, names, tmp_path / "a", workers=1, pool="thread")
    b, _, rep = _build(root, names, tmp_path / "b", workers=2, pool="process")
    assert np.array_equal(np.asarray(a.pixels), np.asarray(b.pixels)) and len(rep.problems) == 1
    assert b.meta["workers"] == 2


def test_torchvision_decoder_path_on_the_cpu(tmp_path):
    """The GPU path (decode_jpeg in batches) selected by device, run with device='cpu': JPEGs decode to (nearly)
    PIL's pixels, non-JPEGs and the truncated file go through PIL and are reported identically."""
    root, names = _folder(tmp_path)
    pil, _, rep_pil = _build(root, names, tmp_path / "p")
    tv, usable, rep_tv = _build(root, names, tmp_path / "t", decoder="torchvision", device="cpu")
    assert tv.meta["decoder"] == "torchvision" and tv.path != pil.path
    assert [(q.sample_id, q.kind, q.reason) for q in rep_tv.problems] == \
        [(q.sample_id, q.kind, q.reason) for q in rep_pil.problems]
    diff = np.abs(np.asarray(tv.pixels, np.int16) - np.asarray(pil.pixels, np.int16))
    assert diff.mean() < 3.0, diff.mean()           # two JPEG decoders and resizers: close, not identical
    png = [i for i, n in enumerate(names) if n.endswith(".png")]
    assert np.array_equal(np.asarray(tv.pixels)[png], np.asarray(pil.pixels)[png])


def test_open_run_caches_reads_only_what_the_run_recorded_and_matches(tmp_path):
    """The one reader of RUN/image_cache.json: nothing recorded -> nothing; the recorded cache when it holds the
    manifest's rows; a file not named like a cache, or one holding Python objects (loaded with allow_pickle=False,
    so never unpickled), is refused with the reason."""
    root, names = _folder(tmp_path)
    run = tmp_path / "run"
    cache, _, _ = _build(root, names, run / "cache")
    manifest = pd.DataFrame({"sample_id": [f"id-{n}" for n in names], "split": "train", "source": names,
                             "image_ref": np.arange(len(names))})

    def record(path) -> tuple[dict, dict]:
        entry = {"path": str(path), "split": "train", "size": SIZE, "ids": cache.meta["ids"], "n": len(names)}
        (run / "image_cache.json").write_text(json.dumps({"caches": {f"train@{SIZE}": entry}}))
        return image_cache.open_run_caches(run, manifest)

    assert image_cache.open_run_caches(run, manifest) == ({}, {})
    found, unused = record(cache.path)
    assert found["train"].path == cache.path and not unused
    assert np.array_equal(found["train"].read(3), cache.read(3))
    assert "test" not in image_cache.open_run_caches(run, manifest.assign(split="test"))[0]
    for name in ("objects.npy", "images-0123456789abcdef.npy"):
        hostile = tmp_path / "elsewhere" / name
        hostile.parent.mkdir(exist_ok=True)
        np.save(hostile, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)   # a pickle inside
        hostile.with_suffix(".json").write_text(json.dumps(cache.meta))
        found, unused = record(hostile)
        why = "not an image cache file" if name == "objects.npy" else "cannot be read"
        assert not found and why in unused["train"]


def test_bad_decoder_name(tmp_path):
    root, names = _folder(tmp_path)
    with pytest.raises(ValueError, match="decoder"):
        _build(root, names, tmp_path / "x", decoder="magic")
