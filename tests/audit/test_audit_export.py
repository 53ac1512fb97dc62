"""Export round trip: policies, review overrides, weights, safe output paths."""
import os

import numpy as np
import pandas as pd
import pytest

from curator.audit.export import UnsafePathError, build_export, export_run, resolve_output
from curator.data.manifest import make_manifest
from curator.review import record_decisions


@pytest.fixture()
def run(tmp_path):
    n = 40
    rng = np.random.default_rng(0)
    ids = [f"s/{i:03d}" for i in range(n)]
    label = rng.integers(0, 3, n)
    score = rng.random(n)
    flag = score > 0.7
    sugg = np.where(flag, (label + 1) % 3, label)
    conf = np.where(np.arange(n) % 2 == 0, 0.9, 0.3)
    pd.DataFrame({"sample_id": ids, "label": label, "label_issue_score": score, "is_label_issue": flag,
                  "suggested_label": sugg, "suggested_label_confidence": conf}).to_parquet(tmp_path / "audit.parquet")
    make_manifest(ids, label, source=[f"img/{i}.png" for i in range(n)]).to_parquet(tmp_path / "manifest.parquet")
    return tmp_path


def test_clean_relabel_reweight(run):
    audit = pd.read_parquet(run / "audit.parquet")
    flagged = set(audit.loc[audit["is_label_issue"], "sample_id"])
    clean = build_export(run, "clean")
    assert not flagged & set(clean["sample_id"]) and len(clean) == len(audit) - len(flagged)
    assert clean["source"].str.startswith("img/").all()
    rel = build_export(run, "relabel", min_confidence=0.5)
    conf = audit[audit["is_label_issue"] & (audit["suggested_label_confidence"] >= 0.5)]
    merged = rel.merge(conf, on="sample_id")
    assert len(merged) == len(conf) and (merged["label_x"] == merged["suggested_label"]).all()
    low = set(audit.loc[audit["is_label_issue"] & (audit["suggested_label_confidence"] < 0.5), "sample_id"])
    assert not low & set(rel["sample_id"])
    for balanced in (False, True):
        rw = build_export(run, "reweight", class_balanced=balanced)
        w = rw["weight"].to_numpy()
        assert len(rw) == len(audit) and np.isfinite(w).all() and (w > 0).all()


def test_decisions_override(run):
    audit = pd.read_parquet(run / "audit.parquet")
    f = audit.loc[audit["is_label_issue"], "sample_id"].iloc[0]
    ok = audit.loc[~audit["is_label_issue"], "sample_id"].iloc[:2].tolist()
    record_decisions(run, [f], "keep")
    record_decisions(run, [ok[0]], "drop")
    record_decisions(run, [ok[1]], "relabel", 2, n_classes=3)
    clean = build_export(run, "clean").set_index("sample_id")
    assert f in clean.index and ok[0] not in clean.index
    assert clean.loc[ok[1], "label"] == 2 and clean.loc[ok[1], "decided_by"] == "review"


def test_export_files_and_crafted_paths(run, tmp_path):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    s = export_run(run, "reweight", "m.csv", base=out_dir)
    c = export_run(run, "clean", "c.parquet", base=out_dir)      # a second export in the same folder
    table = pd.read_csv(out_dir / "m.csv")
    w = np.load(out_dir / "m.weights.npy")
    np.testing.assert_allclose(w, table["weight"].to_numpy())    # not overwritten by the clean export
    assert s["n_rows"] == len(table) and s["weights"] == str(out_dir / "m.weights.npy")
    assert len(np.load(out_dir / "c.weights.npy")) == c["n_rows"] == len(pd.read_parquet(out_dir / "c.parquet"))
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, out_dir / "link")
    for bad in ("../escape.parquet", "sub/../../escape.parquet", str(outside / "abs.parquet"), "link/x.parquet"):
        with pytest.raises(UnsafePathError):
            resolve_output(bad, out_dir)
    (outside / "target.parquet").write_text("keep me")
    os.symlink(outside / "target.parquet", out_dir / "evil.parquet")
    with pytest.raises(UnsafePathError):
        export_run(run, "clean", "evil.parquet", base=out_dir)
    assert (outside / "target.parquet").read_text() == "keep me"
    assert not list(outside.glob("*.npy"))
