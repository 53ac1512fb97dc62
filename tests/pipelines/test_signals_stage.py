"""The signals stage writes the table and the kNN graph, and is skipped when nothing changed."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

import pipelines.signals as stage
from curator.data.options import DatasetOptions
from curator.heads.base import HeadResult
from curator.signals.config import SignalsConfig
from curator.columns import COLUMNS
from pipelines.prepare import prepare_run, train_rows


@pytest.fixture()
def digits_run(tmp_path):
    run, ds = prepare_run(tmp_path / "run", DatasetOptions(noise="uniform", noise_rate=0.2, seed=0, limit=600))
    train = ds.manifest.iloc[train_rows(ds)]
    pixels = load_digits().data[train["image_ref"].to_numpy()]
    emb = ((pixels - pixels.mean(0)) / (pixels.std(0) + 1e-6)).astype(np.float16)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), len(train)).astype(np.float32)
    heads = {"ce": HeadResult("ce", probs, signals={"ce_margin": rng.normal(size=len(train)).astype(np.float32)})}
    return run, ds, emb, heads, probs


def test_stage_writes_contract_files_and_skips_when_unchanged(digits_run, monkeypatch):
    run, ds, emb, heads, probs = digits_run
    cfg = SignalsConfig(k=8, cv_folds=3)
    df = stage.signals_stage(run, ds, emb, heads, cfg)
    n = len(emb)
    assert len(df) == n and list(df.columns[:3]) == ["sample_id", "label", "true_label"]
    for col in ["ce_prob_label", "ce_pred", "ce_margin", "knn_agreement", "knn_suggested_label",
                "knn_suggested_share", "knn_kth_distance", "dup_group", "dup_conflict",
                "cl_label_quality", "cl_suggested_label", "cl_is_issue"]:
        assert col in df.columns, col
    assert all(c in COLUMNS for c in df.columns[3:])           # every signal column is declared
    labels = df["label"].to_numpy()
    np.testing.assert_allclose(df["ce_prob_label"], probs[np.arange(n), labels])
    sims, idx = stage.load_knn(run)
    assert sims.shape == idx.shape == (n, 8) and idx.dtype == np.int64
    assert not (idx == np.arange(n)[:, None]).any()
    cv = np.load(run / "heads" / "cv_logreg.npz")["probs"]
    assert cv.shape == (n, 10)
    noisy = labels != df["true_label"].to_numpy()
    assert df.loc[noisy, "knn_agreement"].mean() < df.loc[~noisy, "knn_agreement"].mean() - 0.3

    # unchanged inputs: nothing is recomputed, the stored table is returned
    def boom(*a, **k):
        raise AssertionError("recomputed although nothing changed")
    monkeypatch.setattr(stage, "compute_knn", boom)
    again = stage.signals_stage(run, ds, emb, heads, cfg)
    assert again.equals(df)
    # a changed setting reruns
    with pytest.raises(AssertionError, match="recomputed"):
        stage.signals_stage(run, ds, emb, heads, SignalsConfig(k=5, cv_folds=3))


def test_head_with_wrong_length_is_named(digits_run):
    run, ds, emb, heads, probs = digits_run
    heads["la"] = HeadResult("la", probs[:-1])
    with pytest.raises(ValueError, match="head 'la'"):
        stage.signals_stage(run, ds, emb, heads, SignalsConfig(k=5, cv_folds=3))


def test_a_column_the_contract_does_not_declare_is_refused(digits_run):
    run, ds, emb, heads, probs = digits_run
    heads["ce"].signals["ce_novelty"] = np.zeros(len(emb), np.float32)
    with pytest.raises(ValueError, match="ce_novelty"):
        stage.signals_stage(run, ds, emb, heads, SignalsConfig(k=5, cv_folds=3))
