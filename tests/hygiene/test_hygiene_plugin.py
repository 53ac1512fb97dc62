"""Adding a hygiene check is one file and one registry line: a toy check shows up in every surface — the hygiene
table, the column contract, hygiene.json and its counts, the fused ``issue_kinds``, the kind counts, the explorer's
filters, ``export --drop``, the report and the overview's sections, the stage fingerprint — and can be switched off."""
import numpy as np
import pandas as pd
import pytest

from curator import columns
from curator.audit.export import build_export
from curator.audit.report import render_report
from curator.config import ConfigError
from curator.data.manifest import make_manifest
from curator.evidence import KnnGraph
from curator.evidence.knn import self_knn
from curator.explore.filters import SampleFilter, available_kinds, filter_mask
from curator.hygiene import registry
from curator.hygiene.checks import run_checks
from curator.hygiene.config import HygieneConfig
from curator.hygiene.counts import check_sections, kind_counts
from curator.hygiene.fuse import fuse_audit
from tests.fixtures_run import count_calls, csv_with_embeddings
from tests.hygiene.toy_check import ToyCheck, registered

N = 40


def _inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8)).astype(np.float32)
    x[1] = x[0] + 1e-3                                    # one close pair: the toy check fires on both
    sims, idx = self_knn(x, 5, device="cpu")
    train = pd.DataFrame({"sample_id": [f"s{i:02d}" for i in range(N)], "label": np.arange(N) % 3})
    return train, KnnGraph(idx, sims)


def _audit(train):
    n = len(train)
    return pd.DataFrame({"sample_id": train["sample_id"], "label": train["label"], "label_issue_score": np.full(n, 0.1),
                         "is_label_issue": np.zeros(n, bool), "suggested_label": train["label"],
                         "suggested_label_confidence": np.full(n, 0.9, np.float32), "rank": np.arange(1, n + 1),
                         "shot_group": ["many"] * n})


def test_a_toy_check_appears_in_every_surface(tmp_path):
    train, graph = _inputs()
    with registered(ToyCheck()):
        res = run_checks(train, train.iloc[:0], None, graph, HygieneConfig())
        flagged = res.table["is_toy_issue"].to_numpy(bool)
        assert list(res.table.columns)[-1] == "is_toy_issue" and "toy_score" in res.table.columns
        assert flagged[:2].all() and flagged.sum() == res.summary["counts"]["toy"] == res.summary["toy"]["n_flagged"]
        assert columns.describe("toy_score").tables == ("hygiene", "signals")      # in the column contract
        assert columns.describe("is_toy_issue").explanation.startswith("The toy check fired")
        assert registry.versions()["toy"] == 3                                     # in the stage's fingerprint
        assert registry.kinds()[-1] == "toy" and "toy" in registry.droppable()

        cp = np.full((N, 3), 1 / 3)
        audit = fuse_audit(_audit(train), res.table, cp, cp)
        assert audit["is_toy_issue"].tolist() == flagged.tolist()
        assert all("toy" in k.split(",") for k in audit.loc[flagged, "issue_kinds"])
        counts = kind_counts(audit).set_index("kind")
        assert counts.loc["toy", "samples"] == flagged.sum() and counts.loc["toy", "meaning"] == ToyCheck.words
        assert "toy" in available_kinds(audit)
        assert filter_mask(audit, SampleFilter(kinds=("toy",))).tolist() == flagged.tolist()

        sections = {s["kind"]: s for s in check_sections(res.summary)}
        assert sections["toy"]["title"] == "Toy check" and "toy score" in sections["toy"]["text"]
        classes = pd.DataFrame({"class": [0, 1, 2], "class_name": list("abc"), "labelled_count": [14, 13, 13],
                                "estimated_true_size": [14, 13, 13], "estimated_noise_rate": [0.0] * 3,
                                "at_risk": [False] * 3})
        html = render_report(audit, classes, class_names=["a", "b", "c"], hygiene=res.summary)
        assert "Toy check" in html and ToyCheck.words in html

        run = tmp_path / "run"
        run.mkdir()
        audit.to_parquet(run / "audit.parquet")
        make_manifest(audit["sample_id"], audit["label"], source=[f"{s}.png" for s in audit["sample_id"]]).to_parquet(
            run / "manifest.parquet")
        kept = build_export(run, "reweight", drop=["toy"])
        assert set(kept["sample_id"]) == set(train["sample_id"][~flagged])

        off = run_checks(train, train.iloc[:0], None, graph, HygieneConfig(off=["toy"]))
        assert not off.table["is_toy_issue"].any() and "switched off" in off.summary["toy"]["skipped"]
    assert "toy" not in registry.kinds() and columns.column("toy_score") is None   # the test leaves no trace


def test_switching_off_an_unknown_check_is_an_error():
    train, graph = _inputs()
    with pytest.raises(ConfigError, match="hygiene.off: unknown check"):
        run_checks(train, train.iloc[:0], None, graph, HygieneConfig(off=["nonsense"]))
    with pytest.raises(ConfigError, match="list of check names"):
        HygieneConfig(off="outlier")


def test_a_changed_check_version_reruns_the_hygiene_stage(tmp_path, monkeypatch):
    import pipelines.hygiene as hygiene_pipeline
    from pipelines.audit import run_pipeline

    options = csv_with_embeddings(tmp_path)
    calls = count_calls(monkeypatch, hygiene_pipeline, "run_checks")

    def hygiene():
        run_pipeline(options, tmp_path / "run", overrides=["heads.heads=[]", "evidence.folds=3"], until="hygiene")

    hygiene()
    hygiene()                                                    # the second run reuses the stage
    assert len(calls) == 1
    monkeypatch.setattr(registry.check("outlier"), "version", registry.check("outlier").version + 1)
    hygiene()
    assert len(calls) == 2                                       # a changed check re-runs, no stale table
