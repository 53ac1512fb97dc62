"""The hygiene stage inside `run_pipeline`: with --embeddings on image files nothing is decoded, so the image checks
are skipped with the reason while duplicates (through the embeddings) and, with the test rows' embeddings, leaks are
still found; recipes take a [hygiene] section; the summary of `curator audit` counts the kinds."""
import json

import numpy as np
import pandas as pd
import pytest

from curator import runfiles
from curator.bench.hygiene import thumbnail_embeddings
from curator.bench.hygiene_plant import expected, plant_folder
from curator.config import ConfigError
from curator.data.options import DatasetOptions
from curator.data.registry import load_dataset
from hygiene_images import natural_images
from pipelines.audit import run_pipeline
from pipelines.recipes import load_recipe

RECIPE = {"heads": {"heads": []}, "evidence": {"k": 10, "folds": 3, "probe_steps": 60}, "audit": {"rounds": 1}}


@pytest.fixture(scope="module")
def folder_with_embeddings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hygiene_pipe")
    px, y = natural_images(260, seed=4)
    planted = plant_folder(tmp / "folder", px[:220], y[:220], px[220:], y[220:], ["a", "b", "c", "d"], n_each=3, seed=1)
    ds = load_dataset(DatasetOptions(dataset="imagefolder", root=str(tmp / "folder")))
    emb = thumbnail_embeddings(ds.images, ds.manifest["image_ref"].to_numpy())
    train, test = (ds.manifest["split"] == "train").to_numpy(), (ds.manifest["split"] == "test").to_numpy()
    np.save(tmp / "train.npy", emb[train])
    np.save(tmp / "test.npy", emb[test])
    return tmp, planted, ds


@pytest.mark.slow
def test_with_supplied_embeddings_the_image_checks_are_skipped_and_the_rest_runs(folder_with_embeddings):
    tmp, planted, ds = folder_with_embeddings
    options = DatasetOptions(dataset="imagefolder", root=str(tmp / "folder"), embeddings=str(tmp / "train.npy"))
    s = run_pipeline(options, tmp / "run", recipe=RECIPE, until="audit")
    run = tmp / "run"
    summary = json.loads((run / runfiles.HYGIENE_SUMMARY).read_text())
    assert "--embeddings skips the image pass" in summary["quality"]["skipped"]
    assert not (run / runfiles.IMAGE_PROPERTIES).exists()                     # nothing was decoded
    assert "no test embeddings" in summary["leakage"]["near"] and "skipped" in summary["leakage"]["exact"]
    audit = pd.read_parquet(run / runfiles.AUDIT)
    truth = planted.train.set_index("sample_id").loc[audit["sample_id"]].reset_index()
    exact = expected(truth, "exact_duplicate")
    # identical images have identical embeddings, but without pixels that is a candidate, not evidence: listed only
    hyg = pd.read_parquet(run / runfiles.HYGIENE).set_index("sample_id").loc[audit["sample_id"]]
    assert (hyg.loc[exact.tolist(), "duplicate_type"] == "candidate").all()
    assert (hyg.loc[exact.tolist(), "duplicate_candidate_of"] != "").all() and (hyg["dup_group"] == -1).all()
    assert not audit["is_duplicate_issue"].any() and (audit["duplicate_of"] == "").all()
    assert summary["duplicates"]["n_candidates"] >= exact.sum() and "unconfirmed" in summary["duplicates"]["near"]
    from curator.audit.export import build_export                         # and never dropped by an export

    assert len(build_export(run, "reweight", drop=["duplicate"])) == len(build_export(run, "reweight"))
    assert not audit["is_quality_issue"].any() and not audit["is_leak_issue"].any()
    assert s["hygiene"]["duplicate"] == int(audit["is_duplicate_issue"].sum()) and s["hygiene"]["quality"] == 0

    # the test rows' embeddings bring the near leaks back
    s2 = run_pipeline(options, tmp / "run", recipe=RECIPE, until="audit",
                      overrides=[f"hygiene.test_embeddings='{tmp / 'test.npy'}'"])
    audit = pd.read_parquet(run / runfiles.AUDIT)
    # ... as unconfirmed candidates (no pixels): every planted leak is listed, none flagged
    pairs = pd.read_parquet(run / runfiles.LEAKAGE)
    assert set(planted.leaks["sample_id"]) <= set(pairs["sample_id"]) and (pairs["match"] == "candidate").all()
    assert not audit["is_leak_issue"].any() and s2["hygiene"]["leak"] == 0


def test_recipes_take_a_hygiene_section_and_name_unknown_keys():
    rec = load_recipe("digits", overrides=["hygiene.property_z=5", "hygiene.near_duplicate_similarity=0.99"])
    assert rec.hygiene.property_z == 5.0 and rec.hygiene.near_duplicate_similarity == 0.99
    assert rec.record()["hygiene"]["property_z"] == 5.0
    with pytest.raises(ConfigError, match="fuzz"):
        load_recipe("digits", overrides=["hygiene.fuzz=1"])
    with pytest.raises(ConfigError, match="near_duplicate_similarity"):
        load_recipe("digits", overrides=["hygiene.near_duplicate_similarity=1.5"])
    with pytest.raises(ConfigError, match="duplicate_threshold"):          # moved to [hygiene], calibrated
        load_recipe("digits", overrides=["signals.duplicate_threshold=0.9"])
