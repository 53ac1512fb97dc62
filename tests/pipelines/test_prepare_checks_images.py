"""A broken image file must be reported and left out before pre-training, never kill the run."""
import numpy as np
from PIL import Image

from curator.data import DatasetOptions
from pipelines.prepare import prepare_run


def _folder(root):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("CMYK", (12, 12)).save(root / "b" / "cmyk.jpg")


def test_broken_image_is_reported_and_left_out_and_the_check_is_cached(tmp_path):
    _folder(tmp_path / "imgs")
    opts = DatasetOptions(dataset="imagefolder", root=str(tmp_path / "imgs"))
    run, ds = prepare_run(tmp_path / "run", opts)
    ids = set(ds.manifest["sample_id"])
    assert "a/broken.jpg" not in ids and "b/cmyk.jpg" in ids and len(ids) == 13
    problems = run.read_parquet("problems.parquet").set_index("sample_id")
    assert problems.loc["a/broken.jpg", "action"] == "skipped"
    assert problems.loc["b/cmyk.jpg", "action"] == "converted"
    first = run.stage_record("check_images")
    run2, ds2 = prepare_run(tmp_path / "run", opts)          # unchanged manifest: not decoded again
    assert run2.stage_record("check_images") == first
    assert set(ds2.manifest["sample_id"]) == ids
    assert "a/broken.jpg" in set(run2.read_parquet("problems.parquet")["sample_id"])
