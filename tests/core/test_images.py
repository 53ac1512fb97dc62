import io

import numpy as np
import pytest
from PIL import Image

from curator.data.images import ArrayImages, EncodedImages, FileImages, ImageError, decode_image_bytes


def _png(img: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_modes_are_converted_to_rgb_with_a_note():
    for mode, note in [("L", "grayscale"), ("RGBA", "alpha"), ("I;16", "16-bit"), ("CMYK", "CMYK")]:
        img = Image.new(mode, (4, 5))
        fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
        arr, msg = decode_image_bytes(_png(img, fmt))
        assert arr.shape == (5, 4, 3) and arr.dtype == np.uint8
        assert note in msg


def test_truncated_and_empty_images_raise_with_reason():
    data = _png(Image.new("RGB", (64, 64), (10, 20, 30)), "JPEG")
    with pytest.raises(ImageError) as e:
        decode_image_bytes(b"")
    assert e.value.kind == "empty_file"
    with pytest.raises(ImageError) as e:
        decode_image_bytes(data[: len(data) // 2])
    assert e.value.kind in ("truncated_image", "unreadable_image")
    with pytest.raises(ImageError) as e:
        decode_image_bytes(b"not an image at all")
    assert "not a recognised image" in e.value.reason


def test_file_images_refuse_paths_escaping_root(tmp_path):
    (tmp_path / "root").mkdir()
    Image.new("RGB", (3, 3)).save(tmp_path / "outside.png")
    Image.new("RGB", (3, 3)).save(tmp_path / "root" / "ok.png")
    src = FileImages(tmp_path / "root", ["ok.png", "../outside.png", "/etc/passwd", "missing.png"])
    assert src.read(0).shape == (3, 3, 3)
    for ref, kind in [(1, "path_escapes_root"), (2, "path_escapes_root"), (3, "missing_file")]:
        with pytest.raises(ImageError) as e:
            src.read(ref)
        assert e.value.kind == kind


def test_array_and_encoded_sources_agree():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(3, 6, 6, 3), dtype=np.uint8)
    blobs = [_png(Image.fromarray(a)) for a in arr]
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    enc = EncodedImages(np.frombuffer(b"".join(blobs), np.uint8), offsets)
    mem = ArrayImages(arr)
    np.testing.assert_array_equal(enc.read_batch([2, 0]), mem.read_batch([2, 0]))
    assert mem.read_batch([1], size=12).shape == (1, 12, 12, 3)
