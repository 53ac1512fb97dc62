"""End to end: `run_pipeline` on a small noisy digits setting; planted errors rank high; re-runs do no work."""
import json

import pandas as pd
import pytest

from curator.data.options import DatasetOptions
from pipelines.audit import run_pipeline

RECIPE = {
    "dataset": {"dataset": "digits", "noise": "uniform", "noise_rate": 0.3, "seed": 1, "limit": 500},
    "ssl": {"epochs": 2, "max_minutes": 0.3},
    "heads": {"heads": ["lasl"], "epochs": 3},
    "evidence": {"k": 10, "folds": 3, "probe_steps": 80},
    "audit": {"rounds": 1},
}


@pytest.mark.slow
def test_pipeline_ranks_planted_errors_and_resumes(tmp_path):
    out = tmp_path / "run"
    s = run_pipeline(DatasetOptions(), out, recipe=RECIPE)
    for f in ("manifest.parquet", "embeddings.npy", "audit.parquet", "classes.parquet", "metrics.json", "report.html"):
        assert (out / f).exists(), f
    audit = pd.read_parquet(out / "audit.parquet")
    man = pd.read_parquet(out / "manifest.parquet").set_index("sample_id").loc[audit["sample_id"]]
    wrong = (man["label"].to_numpy() != man["true_label"].to_numpy())
    assert 0.2 < wrong.mean() < 0.4 and s["n_samples"] == 500
    k = int(wrong.sum())
    top = audit.sort_values("rank").index.to_numpy()[:k]
    assert wrong[top].mean() >= 0.75                                  # top-k precision of planted errors
    assert s["metrics"]["auroc"] >= 0.85 and "per_shot" in s["metrics"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    # the hygiene checks ran on the digits (measured from the arrays) and are fused into the audit
    for f in ("image_properties.parquet", "hygiene.parquet", "leakage.parquet", "hygiene.json"):
        assert (out / f).exists(), f
    assert {"issue_kinds", "is_duplicate_issue", "is_quality_issue"} <= set(audit.columns)
    assert set(s["hygiene"]) >= {"duplicate", "leak", "quality", "outlier"} and "Issues by kind" in html
    assert "darkness" not in s["metrics"]["per_signal"]           # image properties are not label-noise signals
    stages = {p.name: json.loads(p.read_text())["finished"] for p in (out / "stages").glob("*.json")}
    before = {f: (out / f).stat().st_mtime_ns for f in ("embeddings.npy", "audit.parquet", "report.html")}
    s2 = run_pipeline(DatasetOptions(), out, recipe=RECIPE)          # unchanged inputs: nothing recomputed
    assert {p.name: json.loads(p.read_text())["finished"] for p in (out / "stages").glob("*.json")} == stages
    assert before == {f: (out / f).stat().st_mtime_ns for f in before}
    assert s2["n_flagged"] == s["n_flagged"]
    s3 = run_pipeline(DatasetOptions(), out, recipe=RECIPE, overrides=["audit.threshold=0.9"])  # only the audit re-runs
    assert s3["n_flagged"] <= s["n_flagged"]
    assert (out / "embeddings.npy").stat().st_mtime_ns == before["embeddings.npy"]
    assert (out / "audit.parquet").stat().st_mtime_ns != before["audit.parquet"]
