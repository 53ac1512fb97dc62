"""Embeddings computed elsewhere: a CSV manifest whose image files are not on this machine is audited in full."""
import json

import numpy as np
import pandas as pd
import pytest

from curator.cli import main


def _write(tmp_path, n=240, missing=True):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, n)
    X = rng.normal(size=(3, 12))[t] * 3 + rng.normal(size=(n, 12))
    y = t.copy()
    flip = rng.random(n) < 0.15
    y[flip] = (t[flip] + 1) % 3
    names = np.array(["cat", "dog", "owl"])
    pd.DataFrame({"path": [f"imgs/{i:04d}.jpg" for i in range(n)], "label": names[y],
                  "true_label": names[t]}).to_csv(tmp_path / "labels.csv", index=False)
    np.save(tmp_path / "emb.npy", X.astype(np.float32))
    return flip


QUICK = ["--set", 'heads.heads=["lasl"]', "--set", "heads.epochs=2", "--set", "evidence.folds=3",
         "--set", "audit.rounds=1"]


@pytest.mark.slow
def test_missing_images_with_embeddings_keep_every_row_and_are_reported_once(tmp_path, capsys):
    flip = _write(tmp_path)
    out = tmp_path / "run"
    code = main(["audit", "--dataset", "csv", "--root", str(tmp_path / "labels.csv"), "--embeddings",
                 str(tmp_path / "emb.npy"), "--out", str(out), "--json", *QUICK])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["n_samples"] == 240                                   # nothing dropped
    assert captured.err.count("image files not found") == 1              # one summary line, not 240
    assert "240 of 240 image files not found" in captured.err
    problems = pd.read_parquet(out / "problems.parquet")
    assert (problems["kind"] == "images_not_found").sum() == 1 and problems["action"].eq("noted").all()
    audit = pd.read_parquet(out / "audit.parquet")
    assert len(audit) == 240 and audit["is_label_issue"].to_numpy()[flip].mean() > 0.8


def test_without_embeddings_missing_images_stay_bad_samples(tmp_path, capsys):
    _write(tmp_path, n=30)
    code = main(["inspect", "--dataset", "csv", "--root", str(tmp_path / "labels.csv"), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    s = json.loads(captured.out)
    assert s["problems"]["by_kind"].get("missing_file") == 30 and s["n_samples"] == 0
