"""Image properties: each measure moves the right way on a planted change, batches equal single images, the
content hash follows the pixels (not the file), and the image pass measures every image without decoding twice."""
import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from curator.bench.hygiene_plant import degrade
from curator.data.images import ArrayImages, EncodedImages
from curator.data.manifest import Dataset, make_manifest
from curator.data.problems import ProblemReport
from curator.data.validate import check_images
from curator.data.properties import (COLUMNS, MAX_SIDE, Measurer, measure_array, measure_batch, measure_image,
                                     prepare_image, thumbnails_array)
from curator.hygiene.thresholds import flag_properties
from hygiene_images import natural_images


@pytest.fixture(scope="module")
def images():
    return natural_images(40, seed=3)[0]


def _m(px):
    return measure_batch(np.asarray(px)[None] if np.asarray(px).ndim == 3 else np.asarray(px))


def test_each_measure_moves_the_right_way(images):
    rng = np.random.default_rng(0)
    base = measure_batch(images)
    dark = measure_batch(np.stack([degrade("dark", p, rng, 0.2) for p in images]))
    light = measure_batch(np.stack([degrade("light", p, rng, 0.2) for p in images]))
    blur = measure_batch(np.stack([degrade("blurry", p, rng, 1.5) for p in images]))
    blank = measure_batch(np.stack([degrade("blank", p, rng) for p in images]))
    gray = measure_batch(np.stack([degrade("grayscale", p, rng) for p in images]))
    assert (dark["darkness"] > base["darkness"] + 0.4).all()
    assert (light["lightness"] > base["lightness"] + 0.4).all()
    assert (blur["sharpness"] < 0.3 * base["sharpness"]).all()
    assert (blank["entropy"] < 4.0).all() and (base["entropy"] > 6.0).all()
    assert np.allclose(gray["colorfulness"], 0, atol=1e-6) and (base["colorfulness"] > 0.1).all()
    # sharpness is about detail, not brightness: darkening keeps it within a few percent
    np.testing.assert_allclose(dark["sharpness"], base["sharpness"], rtol=0.1)


def test_extremes_and_ranges():
    black, white = np.zeros((1, 16, 16, 3), np.uint8), np.full((1, 16, 16, 3), 255, np.uint8)
    assert measure_batch(black)["darkness"][0] == 1.0 and measure_batch(black)["lightness"][0] == 0.0
    assert measure_batch(white)["lightness"][0] == 1.0 and measure_batch(white)["darkness"][0] == 0.0
    assert measure_batch(black)["entropy"][0] == 0.0 and measure_batch(black)["sharpness"][0] == 0.0
    noise = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    assert 3.0 < measure_batch(noise)["sharpness"][0] < 5.0                       # white noise: about 4
    assert np.isnan(measure_batch(np.zeros((1, 3, 3, 3), np.uint8))["sharpness"][0])   # too small to measure
    with pytest.raises(ValueError, match="uint8"):
        measure_batch(np.zeros((1, 4, 4, 3), np.float32))


def test_batches_equal_single_images_and_the_measurer_keeps_ids(images):
    m = Measurer(batch=7)
    for i, p in enumerate(images):
        m.add(f"s{i}", __import__("curator.data.properties", fromlist=["prepare_image"]).prepare_image(p))
    df = m.frame()
    assert list(df.columns) == list(COLUMNS) and sorted(df["sample_id"]) == sorted(f"s{i}" for i in range(len(images)))
    df = df.set_index("sample_id")
    for i in (0, 13, 39):
        single = measure_image(images[i])
        row = df.loc[f"s{i}"]
        assert row["content_hash"] == single[0] and (row["width"], row["height"]) == (32, 32)
        np.testing.assert_allclose(row[["darkness", "lightness", "sharpness", "entropy", "colorfulness"]].to_numpy(float),
                                   np.asarray(single[3:8], float), rtol=1e-5)
        assert row["thumbnail"] == single[8] and len(single[8]) == 256


def test_large_images_are_measured_reduced_but_hashed_whole():
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (700, 900, 3), dtype=np.uint8)
    h, w, hh, *_ = measure_image(big)
    assert (w, hh) == (900, 700)
    other = big.copy()
    other[0, 0, 0] ^= 1                                       # one pixel differs: another image
    assert measure_image(other)[0] != h
    from curator.data.properties import prepare_image

    assert max(prepare_image(big)[3].shape[:2]) <= MAX_SIDE


def _encoded(arrays, fmt="PNG"):
    blobs = []
    for a in arrays:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format=fmt)
        blobs.append(buf.getvalue())
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    return EncodedImages(np.frombuffer(b"".join(blobs), np.uint8), offsets)


def test_the_image_pass_measures_every_image_and_the_hash_ignores_the_file_format(images):
    png, bmp = _encoded(images[:5], "PNG"), _encoded(images[:5], "BMP")
    both = EncodedImages(np.concatenate([png.buffer, bmp.buffer]),
                         np.concatenate([png.offsets, png.offsets[-1] + bmp.offsets[1:]]))
    man = make_manifest([f"x{i}" for i in range(10)], np.zeros(10, int), source=[f"s{i}" for i in range(10)])
    ds = Dataset("enc", ["a"], man, both)
    m = Measurer()
    check_images(ds, ProblemReport(), measure=m, progress=False)
    df = m.frame().set_index("sample_id")
    assert len(df) == 10
    for i in range(5):                                          # PNG and BMP of the same pixels: one content hash
        assert df.loc[f"x{i}", "content_hash"] == df.loc[f"x{i + 5}", "content_hash"]
    assert df["content_hash"].nunique() == 5


def test_in_memory_arrays_are_measured_in_batches_with_the_manifest_pins(images):
    from curator.data.pins import pixels_pin

    src = ArrayImages(images)
    man = make_manifest([f"a{i}" for i in range(len(images))], np.zeros(len(images), int),
                        source=[f"arr[{i}]" for i in range(len(images))])
    ds = Dataset("arr", ["a"], man, src)
    m = Measurer()
    check_images(ds, ProblemReport(), measure=m, progress=False)
    df = m.frame().set_index("sample_id")
    assert df.loc["a3", "content_hash"] == pixels_pin(images[3])
    ref = measure_array(images, np.arange(len(images)), [f"a{i}" for i in range(len(images))])
    np.testing.assert_allclose(df.loc[ref["sample_id"], "sharpness"].to_numpy(), ref["sharpness"].to_numpy(), rtol=1e-6)


def test_a_blurred_photograph_is_less_sharp_than_its_original():
    px = natural_images(1, seed=5)[0][0]
    blurred = np.asarray(Image.fromarray(px).filter(ImageFilter.GaussianBlur(1.2)))
    assert _m(blurred)["sharpness"][0] < 0.3 * _m(px)["sharpness"][0]


def test_the_thumbnail_is_the_box_filtered_luma():
    px = natural_images(3, seed=2)[0]
    luma = px.astype(float) @ np.array([0.299, 0.587, 0.114])
    want = luma.reshape(3, 16, 2, 16, 2).mean(axis=(2, 4))                   # 32 -> 16: the mean of each 2 x 2 block
    df = measure_array(px, np.arange(3), ["a", "b", "c"])
    got, ok = thumbnails_array(df["thumbnail"])
    assert ok.all() and got.shape == (3, 256)
    np.testing.assert_allclose(got.reshape(3, 16, 16), want, atol=1.5)       # rounded to grey levels twice (luma, then the mean)
    got2, ok2 = thumbnails_array([df["thumbnail"][0], None, b"short"])
    assert ok2.tolist() == [True, False, False] and (got2[1:] == 0).all()


def test_a_blurred_large_image_among_small_ones_is_blurry():
    """Sharpness is measured at the image's own pixel scale: 1,024-pixel images blurred with radius 2 are flagged among
    32-pixel images and sharp 1,024-pixel images are not. Reduced to 128 px first (the old measure) the blur is a
    radius of 0.25 and nothing is flagged."""
    small = natural_images(80, seed=11)[0]
    large = natural_images(6, size=1024, seed=12)[0]
    blurred = [np.asarray(Image.fromarray(p).filter(ImageFilter.GaussianBlur(2))) for p in large[3:]]
    m = Measurer()
    for i, p in enumerate([*small, *large[:3], *blurred]):
        m.add(f"s{i:03d}", prepare_image(p))
    props = m.frame().sort_values("sample_id").reset_index(drop=True)
    assert (props["width"].to_numpy()[80:] == 1024).all()
    blurry = flag_properties(props, z=4.0)[0]["blurry"]
    assert blurry[83:].all() and not blurry[:83].any()                     # the blurred large images, only they
    old = props.copy()                                                      # the old measure: after the reduction
    old.loc[80:, "sharpness"] = measure_batch(np.stack([prepare_image(p)[3] for p in [*large[:3], *blurred]]))["sharpness"]
    assert not flag_properties(old, z=4.0)[0]["blurry"].any()


def test_heavy_blur_at_full_resolution_is_not_mistaken_for_rounding_noise():
    """A 512-pixel image blurred with radius 6 has less real detail than 8-bit rounding adds; its finest octave would
    be pure rounding noise (a white-noise ratio, 'sharp') unless that noise is taken out."""
    px = natural_images(1, size=512, seed=4)[0][0]
    blurred = np.asarray(Image.fromarray(px).filter(ImageFilter.GaussianBlur(6)))
    sharp, soft = measure_image(px)[5], measure_image(blurred)[5]
    assert sharp > 0.8 and soft < 0.05
