"""The evidence stage writes the kNN graph and the out-of-fold probe once; the signals table reads them."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

import pipelines.evidence as evidence_stage_module
from curator import runfiles
from curator.columns import COLUMNS
from curator.data.options import DatasetOptions
from curator.evidence import standardise
from curator.evidence.config import EvidenceConfig
from curator.evidence.graph import read_knn_graph
from curator.evidence.knn import self_knn
from curator.heads.base import HeadResult
from curator.signals.config import SignalsConfig
from pipelines.evidence import evidence_stage
from pipelines.prepare import prepare_run, train_rows
from pipelines.signals import signals_stage

ECFG = EvidenceConfig(k=8, folds=3, probe_steps=60)


@pytest.fixture()
def digits_run(tmp_path):
    run, ds = prepare_run(tmp_path / "run", DatasetOptions(noise="uniform", noise_rate=0.2, seed=0, limit=600))
    train = ds.manifest.iloc[train_rows(ds)]
    pixels = load_digits().data[train["image_ref"].to_numpy()]
    emb = ((pixels - pixels.mean(0)) / (pixels.std(0) + 1e-6)).astype(np.float16)
    run.write_npy(runfiles.EMBEDDINGS, emb)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), len(train)).astype(np.float32)
    heads = {"ce": HeadResult("ce", probs, signals={"ce_margin": rng.normal(size=len(train)).astype(np.float32)})}
    return run, ds, emb, heads, probs


def test_evidence_is_computed_once_and_is_what_the_signals_read(digits_run, monkeypatch):
    run, ds, emb, heads, probs = digits_run
    ev = evidence_stage(run, ds, emb, ECFG, seed=0)
    n = len(emb)
    labels = ds.manifest.iloc[train_rows(ds)]["label"].to_numpy()
    truth = ds.manifest.iloc[train_rows(ds)]["true_label"].to_numpy()
    # the kNN graph: exact, self excluded, on the one normalisation (standardised features)
    graph = read_knn_graph(run / runfiles.KNN)
    assert graph.indices.shape == (n, 8) and not (graph.indices == np.arange(n)[:, None]).any()
    sims, idx = self_knn(standardise(emb), 8, device="cpu")
    assert (graph.indices == idx).mean() > 0.99 and np.allclose(graph.similarities, sims, atol=1e-5)
    # the out-of-fold probabilities: one stratified fold assignment, rows sum to 1, a flipped label is not echoed
    folds = run.read_npy(runfiles.FOLDS)
    assert set(np.unique(folds)) == {0, 1, 2}
    for c in range(10):                                  # stratified: every class in every fold
        assert len(np.unique(folds[labels == c])) == 3
    oof = run.read_npy(runfiles.OOF_PROBS)
    assert oof.shape == (n, 10) and np.allclose(oof.sum(1), 1, atol=1e-5)
    noisy = labels != truth
    own = oof[np.arange(n), labels]
    assert own[noisy].mean() < own[~noisy].mean() - 0.4
    # the signals table is built from exactly that evidence
    df = signals_stage(run, ds, ev, heads, SignalsConfig())
    assert list(df.columns[:3]) == ["sample_id", "label", "true_label"] and len(df) == n
    assert all(c in COLUMNS for c in df.columns)
    np.testing.assert_allclose(df["cl_label_quality"], own, rtol=1e-6)
    np.testing.assert_allclose(df["ce_prob_label"], probs[np.arange(n), labels])
    assert df.loc[noisy, "knn_agreement"].mean() < df.loc[~noisy, "knn_agreement"].mean() - 0.3

    # unchanged inputs: nothing is recomputed
    def boom(*a, **k):
        raise AssertionError("evidence recomputed although nothing changed")
    monkeypatch.setattr(evidence_stage_module, "compute_evidence", boom)
    again = evidence_stage(run, ds, emb, ECFG, seed=0)
    np.testing.assert_array_equal(again.graph.indices, ev.graph.indices)
    assert signals_stage(run, ds, again, heads, SignalsConfig()).equals(df)
    # a changed setting or seed reruns
    with pytest.raises(AssertionError, match="recomputed"):
        evidence_stage(run, ds, emb, EvidenceConfig(k=5, folds=3, probe_steps=60), seed=0)
    with pytest.raises(AssertionError, match="recomputed"):
        evidence_stage(run, ds, emb, ECFG, seed=1)


def test_head_with_wrong_length_is_named(digits_run):
    run, ds, emb, heads, probs = digits_run
    ev = evidence_stage(run, ds, emb, ECFG, seed=0)
    heads["la"] = HeadResult("la", probs[:-1])
    with pytest.raises(ValueError, match="head 'la'"):
        signals_stage(run, ds, ev, heads, SignalsConfig())


def test_a_column_the_contract_does_not_declare_is_refused(digits_run):
    run, ds, emb, heads, probs = digits_run
    ev = evidence_stage(run, ds, emb, ECFG, seed=0)
    heads["ce"].signals["ce_novelty"] = np.zeros(len(emb), np.float32)
    with pytest.raises(ValueError, match="ce_novelty"):
        signals_stage(run, ds, ev, heads, SignalsConfig())
