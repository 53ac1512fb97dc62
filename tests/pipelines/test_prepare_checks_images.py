"""A broken image file must be reported and left out before pre-training, never kill the run."""
import sys
from pathlib import Path

from curator.data import DatasetOptions
from pipelines.prepare import prepare_run

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for tests.fixtures_images
from tests.fixtures_images import folder_with_a_broken_image  # noqa: E402


def test_broken_image_is_reported_and_left_out_and_the_check_is_cached(tmp_path):
    folder_with_a_broken_image(tmp_path / "imgs", cmyk=True)
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
