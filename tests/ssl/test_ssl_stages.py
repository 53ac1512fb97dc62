"""The pretrain/embed stages on digits: kNN monitor, run-dir outputs, skipping, bad images, --embeddings."""
import json

import numpy as np
import pytest

from curator.data.images import ImageError, ArrayImages
from curator.data.options import DatasetOptions
from curator.data.problems import ProblemReport
from curator.ssl.data import decode_all


class BrokenAt(ArrayImages):
    """Digits whose image #3 cannot be decoded."""

    def read(self, ref):
        if ref == 3:
            raise ImageError("truncated file", "truncated_image")
        return super().read(ref)

    def read_batch(self, refs, size=None):
        return np.stack([self.read(int(r)) for r in refs])


def test_bad_image_reported_and_excluded():
    px = np.zeros((6, 8, 8, 3), np.uint8) + 7
    rep = ProblemReport(on_bad="skip")
    pixels, usable = decode_all(BrokenAt(px), np.arange(6), 8, sample_ids=[f"s{i}" for i in range(6)],
                                sources=[f"src{i}" for i in range(6)], problems=rep)
    assert usable.tolist() == [True, True, True, False, True, True]
    assert pixels[3].max() == 0 and pixels[2].max() == 7
    (p,) = rep.problems
    assert p.sample_id == "s3" and "truncated" in p.reason and p.action == "skipped"


@pytest.mark.slow
def test_digits_pretrain_embed_cli(tmp_path):
    from curator.cli import main

    out = tmp_path / "run"
    # the clean, balanced digits (the recipe's corruption switched off), 8 epochs
    plain = ["--dataset", "digits", "--imbalance", "none", "--noise", "none", "--epochs", "8", "--out", str(out)]
    assert main(["pretrain", *plain, "--json"]) == 0
    hist = json.loads((out / "checkpoints" / "history.json").read_text())
    assert hist["best_knn"] >= 0.85, hist["best_knn"]
    assert main(["embed", *plain]) == 0
    emb = np.load(out / "embeddings.npy")
    assert emb.shape == (1797, 32) and emb.dtype == np.float16 and np.isfinite(emb).all()
    stages = json.loads((out / "stages" / "embed.json").read_text())
    # a second embed is skipped (stage record unchanged)
    assert main(["embed", *plain]) == 0
    assert json.loads((out / "stages" / "embed.json").read_text()) == stages


def test_supplied_embeddings_skip_training(tmp_path):
    from pipelines.prepare import prepare_run
    from pipelines.ssl import embed_stage

    x = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    np.save(tmp_path / "mine.npy", x)
    run, ds = prepare_run(tmp_path / "run", DatasetOptions(limit=50, embeddings=str(tmp_path / "mine.npy")))
    emb = embed_stage(run, ds, seed=0)
    assert emb.shape == (50, 6) and emb.dtype == np.float16
    assert not (tmp_path / "run" / "checkpoints").exists()
