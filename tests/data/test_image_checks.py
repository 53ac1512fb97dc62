"""`check_images`: every kind of bad or unusual image file is reported with its reason."""
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curator.data.options import DatasetOptions
from curator.data.problems import DataError, ProblemReport
from curator.data.registry import load_dataset
from curator.data.validate import check_images


def _save(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    good_jpeg = _save(rgb, "JPEG")
    files = {
        "good.jpg": good_jpeg,
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 2],
        "zero.jpg": b"",
        "garbage.jpg": b"this is not an image at all" * 4,
        "cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG"),
        "gray.png": _save(rgb.convert("L"), "PNG"),
        "alpha.png": _save(rgb.convert("RGBA"), "PNG"),
        "deep16.png": _save(Image.fromarray((rng.integers(0, 65535, (16, 16))).astype(np.uint16)), "PNG"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    pd.DataFrame({"path": list(files), "label": [0] * len(files)}).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path


EXPECTED = {"truncated.jpg": "truncated_image", "garbage.jpg": "unreadable_image", "cmyk.jpg": "cmyk_image",
            "gray.png": "grayscale_image", "alpha.png": "alpha_image", "deep16.png": "16bit_image"}


def test_every_bad_or_converted_image_is_reported(folder):
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(folder / "m.csv")))
    # the cheap load-time check already catches the zero-byte file
    assert {p.sample_id: p.kind for p in ds.problems.bad} == {"zero.jpg": "empty_file"}
    checked = check_images(ds, ds.problems, progress=False)
    p = ds.problems.to_frame().set_index("sample_id")
    for sid, kind in EXPECTED.items():
        assert p.loc[sid, "kind"] == kind, (sid, p.loc[sid].to_dict())
    for sid in ("cmyk.jpg", "gray.png", "alpha.png", "deep16.png"):
        assert p.loc[sid, "action"] == "converted"
    assert p.loc["truncated.jpg", "action"] == "skipped" and "truncated" in p.loc["truncated.jpg", "reason"].lower()
    assert set(checked.manifest["sample_id"]) == {"good.jpg", "cmyk.jpg", "gray.png", "alpha.png", "deep16.png"}
    assert checked.info["images_checked"] == {"n_checked": 7, "n_bad": 2, "n_converted": 4}
    for ref in checked.manifest["image_ref"]:
        img = checked.images.read(int(ref))
        assert img.dtype == np.uint8 and img.shape == (16, 16, 3)


def test_zero_byte_seen_by_decoder_and_keep_policy(folder):
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(folder / "m.csv"), on_bad="keep"))
    report = ProblemReport(on_bad="keep")
    checked = check_images(ds, report, progress=False)
    kinds = dict(zip(report.to_frame()["sample_id"], report.to_frame()["kind"]))
    assert kinds["zero.jpg"] == "empty_file" and kinds["truncated.jpg"] == "truncated_image"
    assert len(checked.manifest) == 8  # kept, but listed
    assert (report.to_frame().set_index("sample_id").loc["garbage.jpg", "action"]) == "kept"


def test_error_policy_stops_at_first_bad_image(folder):
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(folder / "m.csv"), on_bad="keep"))
    with pytest.raises(DataError, match=r"\[(truncated_image|empty_file|unreadable_image|cmyk_image|grayscale_image|alpha_image|16bit_image)\]"):
        check_images(ds, ProblemReport(on_bad="error"), progress=False)


def test_refs_limit_what_is_checked(folder):
    ds = load_dataset(DatasetOptions(dataset="csv", root=str(folder / "m.csv")))
    report = ProblemReport()
    pos = int(np.flatnonzero(ds.manifest["sample_id"] == "garbage.jpg")[0])
    out = check_images(ds, report, refs=[pos], progress=False)
    assert [p.sample_id for p in report.problems] == ["garbage.jpg"] and len(out.manifest) == len(ds.manifest) - 1
