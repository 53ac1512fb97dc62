"""Plant every hygiene problem in a small generated image folder and find each with the right kind and sample ids.

The folder has train/ and test/ splits (the imagefolder adapter); the stages run as in `curator audit`: the image
pass (prepare, which measures the properties), the evidence on embeddings, the hygiene stage, the audit (which
fuses the kinds in). Embeddings are 16 x 16 thumbnails (training-free), as in `curator bench hygiene`.
"""
import json

import numpy as np
import pandas as pd
import pytest

from curator import runfiles
from curator.audit.config import AuditConfig
from curator.bench.hygiene import thumbnail_embeddings
from curator.bench.hygiene_plant import PROBLEMS, expected, plant_folder
from curator.columns import COLUMNS
from curator.data.options import DatasetOptions
from curator.evidence.config import EvidenceConfig
from curator.hygiene.config import HygieneConfig
from hygiene_images import natural_images
from pipelines.audit import audit_stage
from pipelines.evidence import evidence_stage
from pipelines.hygiene import hygiene_stage
from pipelines.prepare import prepare_run, train_rows
from pipelines.signals import signals_stage

N_EACH = 4


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hygiene")
    px, y = natural_images(360, seed=1)
    tr_px, tr_y, te_px, te_y = px[:300], y[:300], px[300:], y[300:]
    planted = plant_folder(tmp / "folder", tr_px, tr_y, te_px, te_y, ["a", "b", "c", "d"], n_each=N_EACH, seed=0)
    run, ds = prepare_run(tmp / "run", DatasetOptions(dataset="imagefolder", root=str(tmp / "folder")))
    m = ds.manifest
    emb = thumbnail_embeddings(ds.images, m["image_ref"].to_numpy())
    run.write_npy(runfiles.EMBEDDINGS, emb[train_rows(ds)].astype(np.float16))
    run.write_npy(runfiles.EMBEDDINGS_TEST, emb[(m["split"] == "test").to_numpy()].astype(np.float16))
    train_emb = run.read_npy(runfiles.EMBEDDINGS)
    ev = evidence_stage(run, ds, train_emb, EvidenceConfig(k=10, folds=3, probe_steps=80), seed=0)
    hyg = hygiene_stage(run, ds, ev, train_emb, HygieneConfig())
    audit_stage(run, ds, ev, AuditConfig(rounds=1))
    audit = run.read_parquet(runfiles.AUDIT)
    truth = planted.train.set_index("sample_id").loc[audit["sample_id"]].reset_index()
    return {"run": run, "ds": ds, "ev": ev, "hyg": hyg, "audit": audit, "truth": truth, "planted": planted}


def _quality(audit, check):
    return audit["quality_issues"].fillna("").str.split(",").map(lambda names: check in names).to_numpy(bool)


@pytest.mark.parametrize("check", ["dark", "light", "blurry", "low_information", "grayscale", "odd_size",
                                   "odd_aspect_ratio"])
def test_each_planted_quality_problem_is_found_with_its_kind(planted_run, check):
    audit, truth = planted_run["audit"], planted_run["truth"]
    target = expected(truth, check)
    found = _quality(audit, check)
    assert target.sum() == N_EACH
    assert set(audit.loc[target, "sample_id"]) <= set(audit.loc[found, "sample_id"]), check     # every planted id
    assert all("quality" in k.split(",") for k in audit.loc[target, "issue_kinds"])
    clean = truth["planted"].to_numpy(object) == ""
    assert (found & clean).sum() <= 0.02 * clean.sum()                                       # few clean images


def test_duplicates_are_grouped_with_their_copies_and_typed(planted_run):
    audit, truth, hyg = planted_run["audit"], planted_run["truth"], planted_run["hyg"]
    group = hyg.set_index("sample_id").loc[truth["sample_id"], "dup_group"].to_numpy()
    dtype = hyg.set_index("sample_id").loc[truth["sample_id"], "duplicate_type"].to_numpy()
    for kind in ("dup_exact", "dup_near", "dup_flip"):
        rows = truth.index[truth["planted"] == kind]
        for src in truth.loc[rows, "source"].unique():
            pair = rows[truth.loc[rows, "source"] == src]
            assert len(pair) == 2 and group[pair[0]] == group[pair[1]] >= 0, (kind, truth.loc[pair, "sample_id"].tolist())
            if kind != "dup_near":
                assert (dtype[pair] == "exact").all()
    assert audit.loc[expected(truth, "duplicate"), "is_duplicate_issue"].all()
    assert all("duplicate" in k.split(",") for k in audit.loc[expected(truth, "duplicate"), "issue_kinds"])
    clean = truth["planted"].to_numpy(object) == ""
    assert audit.loc[clean, "is_duplicate_issue"].mean() <= 0.02
    # one member of each pair is kept by a de-duplicated export, the other names it
    dup_of = audit.set_index("sample_id")["duplicate_of"]
    for src in truth.loc[truth["planted"] == "dup_exact", "source"].unique():
        ids = truth.loc[(truth["planted"] == "dup_exact") & (truth["source"] == src), "sample_id"].tolist()
        kept = [i for i in ids if dup_of[i] == ""]
        assert len(kept) == 1 and dup_of[[i for i in ids if i not in kept][0]] == kept[0]


def test_an_exact_copy_with_a_flipped_label_is_a_label_issue_in_plain_sight(planted_run):
    audit, truth = planted_run["audit"], planted_run["truth"]
    copies = expected(truth, "label")                       # the flipped copies
    originals = (truth["planted"] == "dup_flip").to_numpy() & ~copies
    assert audit.loc[copies, "is_label_issue"].all()
    assert all(k.split(",")[:2] == ["label", "duplicate"] for k in audit.loc[copies, "issue_kinds"])
    # the suggestion for the copy is the original's label
    src_label = truth.loc[originals].set_index("source")["label"]
    sugg = audit.loc[copies, "suggested_label"].to_numpy()
    assert (sugg == src_label.loc[truth.loc[copies, "source"]].to_numpy()).all()
    assert not audit.loc[originals, "is_label_issue"].any()


def test_leaks_into_test_are_flagged_and_the_pairs_listed(planted_run):
    run, audit, truth, planted = planted_run["run"], planted_run["audit"], planted_run["truth"], planted_run["planted"]
    target = expected(truth, "leak")
    assert audit.loc[target, "is_leak_issue"].all()
    assert audit.loc[~target & (truth["planted"] == "").to_numpy(), "is_leak_issue"].mean() <= 0.02
    pairs = run.read_parquet(runfiles.LEAKAGE)
    got = set(zip(pairs["sample_id"], pairs["other_id"], pairs["match"]))
    for row in planted.leaks.itertuples():
        assert (row.sample_id, row.other_id, row.match) in got
    assert set(pairs["other_split"]) == {"test"}
    summary = json.loads((run / runfiles.HYGIENE_SUMMARY).read_text())
    assert summary["leakage"]["n_train_leaked"] == int(audit["is_leak_issue"].sum())


def test_foreign_images_are_outliers(planted_run):
    audit, truth = planted_run["audit"], planted_run["truth"]
    target = expected(truth, "outlier")
    assert audit.loc[target, "is_outlier_issue"].all()
    clean = truth["planted"].to_numpy(object) == ""
    assert audit.loc[clean, "is_outlier_issue"].mean() <= 0.02


def test_kinds_are_declared_and_the_signals_carry_the_measurements(planted_run):
    run, ds, ev, audit = planted_run["run"], planted_run["ds"], planted_run["ev"], planted_run["audit"]
    assert all(c in COLUMNS and "audit" in COLUMNS[c].tables for c in audit.columns)
    kinds = audit["issue_kinds"].fillna("")
    for kind in ("label", "duplicate", "leak", "quality", "outlier"):
        flag = audit["is_label_issue" if kind == "label" else f"is_{kind}_issue"].to_numpy(bool)
        assert (kinds.str.split(",").map(lambda k, kind=kind: kind in k).to_numpy(bool) == flag).all(), kind
    sig = signals_stage(run, ds, ev, {}, __import__("curator.signals.config", fromlist=["SignalsConfig"]).SignalsConfig(),
                        hygiene=planted_run["hyg"])
    for col in ("darkness", "sharpness", "entropy", "colorfulness", "dup_group", "dup_conflict", "outlier_distance",
                "leak_similarity"):
        assert col in sig.columns, col
    assert len(PROBLEMS) == 13


def test_the_image_pass_measured_every_image_once(planted_run):
    run, ds = planted_run["run"], planted_run["ds"]
    props = run.read_parquet(runfiles.IMAGE_PROPERTIES)
    assert set(props["sample_id"]) == set(ds.manifest["sample_id"])          # train and test, one row each
    assert props["sample_id"].is_unique
    stage = json.loads((run / "stages" / "check_images.json").read_text())
    assert runfiles.IMAGE_PROPERTIES in stage["outputs"]
    odd = props.set_index("sample_id").loc[planted_run["truth"].loc[expected(planted_run["truth"], "odd_size"),
                                                                    "sample_id"]]
    assert ((odd["width"] != 32) & (odd["height"] != 32)).all()


def test_a_rerun_with_unchanged_inputs_reuses_the_hygiene_stage(planted_run, monkeypatch):
    import pipelines.hygiene as stage_module

    def boom(*a, **k):
        raise AssertionError("hygiene recomputed although nothing changed")
    monkeypatch.setattr(stage_module, "run_checks", boom)
    train_emb = planted_run["run"].read_npy(runfiles.EMBEDDINGS)
    again = hygiene_stage(planted_run["run"], planted_run["ds"], planted_run["ev"], train_emb, HygieneConfig())
    pd.testing.assert_frame_equal(again, planted_run["hyg"])
    with pytest.raises(AssertionError, match="recomputed"):
        hygiene_stage(planted_run["run"], planted_run["ds"], planted_run["ev"], train_emb, HygieneConfig(property_z=3.0))
