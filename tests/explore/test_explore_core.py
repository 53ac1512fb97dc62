"""The explorer's logic (curator.explore) on the fixture run: loading, filtering, review status,
thumbnails, explanations, overview numbers and the map cache."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for tests.fixtures_run
from tests.fixtures_run import write_fixture_run  # noqa: E402

from curator.data.images import ArrayImages  # noqa: E402
from curator.data.problems import DataError  # noqa: E402
from curator.explore.embedding_map import choose_map_rows, embedding_map, samples_in_region  # noqa: E402
from curator.columns import describe  # noqa: E402
from curator.explore.filters import SampleFilter, filter_samples, page_of  # noqa: E402
from curator.explore.overview import class_summary, overview_stats, signal_histogram, tails_at_risk  # noqa: E402
from curator.explore.review import REVIEW_STATUSES, decide, review_status  # noqa: E402
from curator.explore.run import load_run  # noqa: E402
from curator.explore.thumbnails import Thumbnails, open_image_source, placeholder, to_thumbnail  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return write_fixture_run(tmp_path_factory.mktemp("explore") / "run", with_umap=True)


@pytest.fixture()
def run(run_dir):
    for f in ("decisions.parquet",):
        (run_dir / f).unlink(missing_ok=True)
    return load_run(run_dir)


def test_load_run_aligns_signals_and_audit_to_manifest_order(run, run_dir):
    manifest = pd.read_parquet(run_dir / "manifest.parquet")
    audit = pd.read_parquet(run_dir / "audit.parquet")
    assert run.n_samples == len(manifest) == json.loads((run_dir / "fixture.json").read_text())["n"]
    assert list(run.table["sample_id"]) == list(manifest["sample_id"])
    assert {"knn_agreement", "label_issue_score", "shot_group", "image_ref"} <= set(run.table.columns)
    # shuffle audit rows on disk: the loader must still align by sample_id
    shuffled = audit.sample(frac=1.0, random_state=1)
    shuffled.to_parquet(run_dir / "audit.parquet", index=False)
    try:
        again = load_run(run_dir)
        np.testing.assert_allclose(again.table["label_issue_score"].to_numpy(), audit["label_issue_score"].to_numpy())
    finally:
        audit.to_parquet(run_dir / "audit.parquet", index=False)


def test_load_run_refuses_a_directory_without_manifest(tmp_path):
    with pytest.raises(DataError, match="manifest.parquet"):
        load_run(tmp_path)


def test_load_run_opens_a_run_before_the_audit(tmp_path, run_dir):
    import shutil

    for f in ("manifest.parquet", "config.json"):
        shutil.copy(run_dir / f, tmp_path / f)
    r = load_run(tmp_path)
    assert not r.has_audit and r.n_samples > 0
    assert filter_samples(r.table, SampleFilter(flagged="all", sort_by="label")).size == r.n_samples


def test_filter_by_class_shot_score_and_threshold(run):
    t = run.table
    flt = SampleFilter(classes=(1, 9), shot_groups=("few", "medium"), score_range=(0.2, 1.0), flagged="all",
                       thresholds=(("knn_agreement", None, 0.9),))
    pos = filter_samples(t, flt)
    expected = t[t["label"].isin([1, 9]) & t["shot_group"].isin(["few", "medium"]) & (t["label_issue_score"] >= 0.2)
                 & (t["knn_agreement"] <= 0.9)]
    assert sorted(pos.tolist()) == sorted(expected.index.tolist())
    assert len(pos) > 0
    scores = t["label_issue_score"].to_numpy()[pos]
    assert np.all(np.diff(scores) <= 0), "sorted by score, highest first"


def test_filter_flagged_and_ascending_sort(run):
    t = run.table
    pos = filter_samples(t, SampleFilter(flagged="flagged", sort_by="knn_agreement", descending=False))
    assert len(pos) == int(t["is_label_issue"].sum())
    assert np.all(np.diff(t["knn_agreement"].to_numpy()[pos]) >= 0)
    assert len(filter_samples(t, SampleFilter(flagged="not flagged"))) == run.n_samples - len(pos)


def test_cached_sort_order_gives_the_same_rows(run):
    t = run.table.copy()
    t.loc[t.index[::7], "knn_agreement"] = np.nan          # NaN goes last in both directions
    t["lasl_pred"] = t["lasl_pred"] % 2                    # many ties: table order must decide
    cache: dict = {}
    for flt in (SampleFilter(flagged="all", sort_by="knn_agreement", descending=False),
                SampleFilter(flagged="all", sort_by="knn_agreement"),
                SampleFilter(classes=(2, 3), flagged="all", sort_by="lasl_pred"),
                SampleFilter(sort_by="is_label_issue")):
        np.testing.assert_array_equal(filter_samples(t, flt, sort_cache=cache), filter_samples(t, flt))
    vals = t["knn_agreement"].to_numpy()[filter_samples(t, SampleFilter(flagged="all", sort_by="knn_agreement"))]
    assert np.isnan(vals[-1]) and not np.isnan(vals[0])


def test_filter_unknown_column_names_it(run):
    with pytest.raises(KeyError, match="no_such_signal"):
        filter_samples(run.table, SampleFilter(flagged="all", thresholds=(("no_such_signal", 0.0, None),)))


def test_page_of_clamps_to_last_page():
    pos = np.arange(50)
    assert page_of(pos, 0, 24).tolist() == list(range(24))
    assert page_of(pos, 2, 24).tolist() == [48, 49]
    assert page_of(pos, 9, 24).tolist() == [48, 49]


def test_decisions_map_to_rows_and_filter_by_review_status(run):
    ids = run.table["sample_id"].tolist()
    decide(run, ids[:3], "drop")
    decide(run, [ids[5]], "relabel", 4)
    decide(run, [ids[1]], "keep")        # newest decision wins
    status, new_label = review_status(run)
    assert [REVIEW_STATUSES[s] for s in status[:6]] == ["drop", "keep", "drop", "unreviewed", "unreviewed", "relabel"]
    assert new_label[5] == 4 and new_label[0] == -1
    pos = filter_samples(run.table, SampleFilter(flagged="all", review=("drop",), sort_by=""), status)
    assert pos.tolist() == [0, 2]
    with pytest.raises(ValueError, match="not in run"):
        decide(run, ["no/such/id"], "drop")
    with pytest.raises(ValueError, match="out of range"):
        decide(run, [ids[0]], "relabel", run.n_classes)


def test_thumbnails_read_through_the_dataset_accessor(run, run_dir):
    source = open_image_source(run_dir)
    thumbs = Thumbnails(source, capacity=4)
    ref = int(run.table["image_ref"].iat[0])
    th = thumbs.get(ref, 96)
    assert th.shape == (96, 96, 3) and th.dtype == np.uint8
    # nearest-neighbour: every 12x12 block is one source pixel
    src = source.read(ref)
    np.testing.assert_array_equal(th[::12, ::12], src)
    assert thumbs.get(ref, 96) is th, "second call is served from the cache"
    bad = thumbs.get(len(source) + 5, 96)
    np.testing.assert_array_equal(bad, placeholder(96))
    assert "outside" in thumbs.error(len(source) + 5)
    for r in range(6):
        thumbs.get(r, 32)
    assert len(thumbs._cache) <= 4


def test_to_thumbnail_shrinks_large_images():
    big = np.zeros((300, 200, 3), np.uint8)
    assert max(to_thumbnail(big, 96).shape[:2]) == 96
    tiny = ArrayImages(np.arange(64, dtype=np.uint8).reshape(1, 8, 8)).read(0)
    assert to_thumbnail(tiny, 64).shape == (64, 64, 3)


def test_explanations_cover_every_column(run):
    for col in run.table.columns:
        e = describe(col)
        assert e.explanation and e.name == col
    assert describe("label_issue_score").direction == "higher_is_issue"
    assert describe("lasl_prob_label").direction == "higher_is_clean"
    assert "LA+SuperLoss" in describe("lasl_loss").source or "lasl" in describe("lasl_loss").source.lower()


def test_overview_numbers(run):
    stats = overview_stats(run)
    t = run.table
    counts = np.bincount(t["label"], minlength=10)
    assert stats["imbalance_ratio"] == pytest.approx(counts.max() / counts.min())
    assert stats["n_flagged"] == int(t["is_label_issue"].sum())
    assert stats["noise_rate"] == pytest.approx((t["label"] != t["true_label"]).mean())
    summary = class_summary(run)
    assert summary["count"].tolist() == counts.tolist()
    assert summary.loc[0, "shot_group"] == "many" and summary.loc[9, "shot_group"] == "few"
    flagged9 = int((t["is_label_issue"] & (t["label"] == 9)).sum())
    assert summary.loc[9, "estimated_noise"] == pytest.approx(flagged9 / counts[9])
    risky = tails_at_risk(summary, min_clean=20)
    assert set(risky["class"]) <= set(summary.loc[summary["shot_group"] != "many", "class"])
    assert 9 in set(risky["class"])  # ~8 samples: under 20 clean by any estimate


def test_signal_histogram_splits_by_truth(run):
    h = signal_histogram(run, "knn_agreement", bins=10)
    assert set(h["group"]) == {"truly mislabelled", "truly clean"}
    assert h["count"].sum() == run.n_samples
    wrong = h[h["group"] == "truly mislabelled"]
    # planted errors sit in the low-agreement half
    low = wrong[wrong["bin_end"] <= 0.5 + 1e-9]["count"].sum()
    assert low > wrong["count"].sum() / 2


def test_choose_map_rows_keeps_flagged_and_caps_size():
    flagged = np.zeros(1000, bool)
    flagged[::50] = True
    rows = choose_map_rows(1000, flagged, 100, seed=0)
    assert len(rows) == 100 and len(np.unique(rows)) == 100
    assert set(np.flatnonzero(flagged)) <= set(rows.tolist())
    assert choose_map_rows(50, None, 100).tolist() == list(range(50))


def test_map_is_cached_and_regions_select_points(run_dir):
    m1 = embedding_map(run_dir, method="pca")
    mtime = (run_dir / "umap.parquet").stat().st_mtime_ns
    m2 = embedding_map(run_dir, method="pca")
    assert (run_dir / "umap.parquet").stat().st_mtime_ns == mtime, "second call must reuse the cache"
    pd.testing.assert_frame_equal(m1, m2)
    x0, x1 = np.quantile(m1["x"], [0.25, 0.75])
    inside = samples_in_region(m1, (x1, x0), (m1["y"].min(), m1["y"].max()))
    assert 0 < len(inside) < len(m1)
    assert inside["x"].between(x0, x1).all()


def test_explore_command_binds_localhost_headless(run_dir, tmp_path):
    from curator.cli.explore import app_path, streamlit_command

    cmd = streamlit_command(run_dir, port=8765)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--run") + 1] == str(run_dir.resolve())
    assert Path(cmd[cmd.index("run") + 1]) == app_path() and app_path().exists()
    with pytest.raises(DataError, match="not a curator run directory"):
        streamlit_command(tmp_path)


# --- hygiene: issue kinds, duplicates, leaks (curator.explore.hygiene, the kinds filter) ---------------------------

def _planted(run_dir):
    return json.loads((run_dir / "fixture.json").read_text())["hygiene"]


def test_the_flag_filter_follows_the_chosen_issue_kinds(run, run_dir):
    from curator.explore.filters import available_kinds

    planted = _planted(run_dir)
    ids = run.table["sample_id"].to_numpy()
    assert available_kinds(run.table) == ["label", "duplicate", "leak", "quality", "outlier"]
    label_only = set(ids[filter_samples(run.table, SampleFilter(flagged="flagged"))])
    assert label_only == set(ids[run.table["is_label_issue"].to_numpy()])             # default: the label flag
    for kind in ("duplicate", "leak", "quality", "outlier"):
        got = set(ids[filter_samples(run.table, SampleFilter(flagged="flagged", kinds=(kind,)))])
        assert got == set(planted[kind]), kind
    both = set(ids[filter_samples(run.table, SampleFilter(flagged="flagged", kinds=("leak", "outlier")))])
    assert both == set(planted["leak"]) | set(planted["outlier"])
    none = filter_samples(run.table, SampleFilter(flagged="not flagged", kinds=("quality",)))
    assert not set(ids[none]) & set(planted["quality"]) and len(none) == run.n_samples - len(planted["quality"])
    with pytest.raises(ValueError, match="unknown issue kind"):
        filter_samples(run.table, SampleFilter(flagged="flagged", kinds=("typo",)))


def test_kind_counts_duplicates_and_leak_partners(run, run_dir):
    from curator.explore.hygiene import (duplicate_members, has_hygiene, kinds_overview, kinds_text, leak_pairs_for_display,
                                         leak_partners)

    planted = _planted(run_dir)
    assert has_hygiene(run)
    ov = kinds_overview(run)
    counts = ov["kinds"].set_index("kind")["samples"].to_dict()
    assert counts["duplicate"] == 4 and counts["leak"] == 1 and counts["outlier"] == 1
    assert counts["quality"] == len(planted["quality"]) >= 2 and set(planted["planted_quality"]) <= set(planted["quality"])
    assert counts["label"] == int(run.table["is_label_issue"].sum())
    assert ov["kinds"].set_index("kind").loc["quality", "also_label"] == 1
    assert ov["label_split"]["on_quality_issue"] == 1
    q = ov["quality"].set_index("check")["samples"]
    assert q["dark"] >= 1 and q["blurry"] >= 1 and q["low_information"] >= 1 and q["grayscale"] == 0
    assert q.sum() >= counts["quality"]
    a, b = (run.position(s) for s in planted["duplicate"][:2])
    assert duplicate_members(run, a).tolist() == [b]
    assert len(duplicate_members(run, run.position(planted["leak"][0]))) == 0
    p = leak_partners(run, run.position(planted["leak"][0]))
    assert p["other_id"].tolist() == ["test/digits-copy-0001"] and p["image_ref"].tolist() == [-1]   # not in the manifest
    assert leak_pairs_for_display(run)["pos"].tolist() == [run.position(planted["leak"][0])]
    assert kinds_text(run, run.position(planted["label_and_quality"][0])) == "label · quality (blurry, low_information)"
    # the conflicting duplicate pair: the copy whose label the group's images do not support is a label issue
    conflict = [run.position(s) for s in planted["conflict"]]
    assert run.table["is_label_issue"].to_numpy()[conflict].sum() >= 1


def test_an_unconfirmed_duplicate_candidate_is_shown_as_such(run):
    from dataclasses import replace

    from curator.explore.hygiene import duplicate_candidate

    assert duplicate_candidate(run, 0) == ""                      # the fixture's images were decoded: no candidates
    cand = np.full(run.n_samples, "", dtype=object)
    cand[3] = str(run.table["sample_id"].iat[7])
    other = replace(run, table=run.table.assign(duplicate_candidate_of=cand))
    assert duplicate_candidate(other, 3) == run.table["sample_id"].iat[7] and duplicate_candidate(other, 4) == ""
    assert duplicate_candidate(replace(run, table=run.table.drop(columns=["duplicate_candidate_of"])), 3) == ""


def test_class_colours_are_distinct_and_visible_on_white():
    from curator.explore.embedding_map import CLASS_PALETTE, class_colours, contrast_on_white

    assert abs(contrast_on_white("#ffffff") - 1.0) < 1e-9 and abs(contrast_on_white("#000000") - 21.0) < 1e-9
    assert abs(contrast_on_white("#767676") - 4.54) < 0.01              # WCAG's reference grey
    assert contrast_on_white("#bab0ac") < 3                              # tableau10's class-9 grey fails the floor
    assert len(set(CLASS_PALETTE)) == len(CLASS_PALETTE)
    assert all(contrast_on_white(c) >= 3.0 for c in CLASS_PALETTE)
    assert len(set(class_colours(10))) == 10 and len(class_colours(25)) == 25


def test_gdw_fig45_summary_against_hand_counts():
    from curator.explore.gdw import fig45_summary

    d = np.array([[-0.3, 0.1, -0.1, 0.2],    # label 1, truly 0: true fell, fell most; others (2, 3): one rose
                  [0.2, -0.2, -0.1, 0.3],    # label 1, truly 0: true rose; class 2 fell most; others (2, 3): one rose
                  [0.1, 0.0, 0.2, -0.1]])    # label 1, clean: non-target (0, 2, 3): two rose
    s = fig45_summary(d, np.array([1, 1, 1]), np.array([0, 0, 1]))
    assert s == {"n_mislabelled": 2, "true_fell": 0.5, "true_fell_most": 0.5, "others_rose_noisy": 0.5,
                 "others_rose_clean": 2 / 3}
    assert fig45_summary(d, np.array([1, 1, 1]), np.array([1, 1, 1])) is None


def test_map_job_runs_in_another_process_and_matches_the_direct_map(run_dir):
    from curator.explore.embedding_map import MapJob, compute_map

    job = MapJob(run_dir, "pca")                                            # a separate process
    assert job.wait(300) and job.error is None
    direct = compute_map(run_dir, method="pca")
    assert job.result["sample_id"].tolist() == direct["sample_id"].tolist()
    assert np.allclose(job.result[["x", "y"]].to_numpy(), direct[["x", "y"]].to_numpy(), atol=1e-5)
    bad = MapJob(run_dir / "missing", "pca")
    assert bad.wait(300) and bad.result is None and "embeddings.npy" in bad.error
    assert not (run_dir / "missing").exists()
