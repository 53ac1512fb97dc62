"""The audit says so when it flags most labels: label noise and useless embeddings look alike."""
import numpy as np
import pandas as pd
import pytest

from curator.audit.diagnostics import audit_diagnostics
from curator.data.options import DatasetOptions
from pipelines.audit import run_pipeline
from tests.fixtures_run import count_calls, csv_with_embeddings


def test_warning_only_when_most_labels_are_flagged():
    y = np.array([0] * 60 + [1] * 40)
    P = np.zeros((100, 2))
    P[np.arange(100), y] = 1.0
    P[:20] = [0.0, 1.0]                                   # the image-only class disagrees with 20 labels (all class 0)
    quiet = audit_diagnostics(y, P, np.arange(100) < 30)
    assert quiet["warnings"] == [] and quiet["flagged_share"] == pytest.approx(0.3)
    assert quiet["label_agreement"] == pytest.approx(0.8) and quiet["chance_agreement"] == pytest.approx(0.6)
    loud = audit_diagnostics(y, P, np.arange(100) < 70)
    assert len(loud["warnings"]) == 1
    assert "70%" in loud["warnings"][0] and "80%" in loud["warnings"][0] and "60%" in loud["warnings"][0]
    assert audit_diagnostics(np.zeros(0, int), np.zeros((0, 2)), np.zeros(0, bool))["warnings"] == []


@pytest.mark.slow
def test_uninformative_embeddings_give_the_weak_evidence_warning_everywhere(tmp_path):
    # clean digits labels, random embeddings: the audit cannot tell label errors from useless features, so the
    # evidence grade is weak, few labels are flagged (the weak-evidence cap) and every surface says so
    emb = tmp_path / "random.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(400, 16)).astype(np.float32))
    recipe = {"dataset": {"dataset": "digits", "imbalance": "none", "noise": "none", "limit": 400,
                          "embeddings": str(emb)},
              "heads": {"heads": ["ce"], "epochs": 2}, "evidence": {"k": 10, "folds": 3, "probe_steps": 60},
              "audit": {"rounds": 1}}
    out = tmp_path / "run"
    s = run_pipeline(DatasetOptions(), out, recipe=recipe)
    audit = pd.read_parquet(out / "audit.parquet")
    assert audit["is_label_issue"].mean() <= 0.10
    ev = s["evidence"]
    assert ev["grade"] == "weak" and ev["separability"] < 0.6 and ev["flagged_before_cap"] > 0.3 * 400
    # the posterior believes only the noise the evidence supports: no longer a third of a clean dataset
    assert ev["posterior_noise_before"] > 0.3
    assert audit["label_issue_score"].mean() == pytest.approx(ev["believed_noise_rate"], abs=0.005)
    assert pd.read_parquet(out / "classes.parquet")["estimated_noise_rate"].max() < 0.1
    assert ev["representation"]["kind"] == "embeddings"
    assert len(s["warnings"]) == 1 and s["warnings"][0].startswith("Evidence: weak")
    assert "Evidence: weak" in (out / "report.html").read_text()
    from curator.explore.run import load_run
    run = load_run(out)
    assert run.warnings == s["warnings"] and run.evidence["grade"] == "weak"


def test_a_new_audit_method_rescores_an_existing_run(tmp_path, monkeypatch):
    """A stage is redone when its inputs change; the audit's method version is one of them, so a run directory made
    by an earlier curator is re-scored by the next `curator audit` instead of keeping the old scores."""
    import pipelines.audit as audit_pipeline

    options = csv_with_embeddings(tmp_path)
    calls = count_calls(monkeypatch, audit_pipeline, "audit_stage")

    def audit():
        run_pipeline(options, tmp_path / "run", overrides=["heads.heads=[]", "evidence.folds=3", "audit.rounds=0"],
                     until="audit")

    audit()
    audit()                                                      # the second run reuses the stage
    assert len(calls) == 1
    monkeypatch.setattr(audit_pipeline, "METHOD_VERSION", audit_pipeline.METHOD_VERSION + 1)
    audit()
    assert len(calls) == 2
