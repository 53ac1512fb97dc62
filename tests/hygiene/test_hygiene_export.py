"""Export policies per hygiene kind: drop duplicates (keep one per group), leaked training copies, unusable images,
outliers; relabel never relabels an unusable image; review decisions override; clear errors."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from curator.audit.export import build_export, export_run
from curator.config import ConfigError
from curator.data.manifest import make_manifest
from curator.data.problems import DataError
from curator.review import record_decisions

ROWS = [  # sample_id, label, score, flagged, suggestion, confidence, kinds..., quality, duplicate_of
    ("a", 0, 0.1, False, 0, 0.9, True, False, "", False, ""),      # kept member of group a/b/c
    ("b", 0, 0.2, False, 0, 0.9, True, False, "", False, "a"),     # redundant copy of a
    ("c", 1, 0.8, True, 0, 0.9, True, False, "", False, "a"),      # copy of a with another label: a label issue
    ("d", 1, 0.1, False, 1, 0.9, False, True, "", False, ""),      # has a copy in test/
    ("e", 2, 0.1, False, 2, 0.9, False, False, "dark", False, ""),  # unusable
    ("f", 2, 0.1, False, 2, 0.9, False, False, "grayscale", False, ""),  # grey but usable
    ("g", 2, 0.9, True, 0, 0.9, False, False, "blurry,low_information", False, ""),  # label issue on an unusable image
    ("h", 1, 0.9, True, 2, 0.9, False, False, "", False, ""),      # plain label issue: relabelled
    ("i", 0, 0.1, False, 0, 0.9, False, False, "", True, ""),      # outlier
    ("j", 0, 0.1, False, 0, 0.9, False, False, "", False, ""),     # clean
]


@pytest.fixture()
def run(tmp_path):
    tmp_path = tmp_path / "run"
    tmp_path.mkdir()
    df = pd.DataFrame(ROWS, columns=["sample_id", "label", "label_issue_score", "is_label_issue", "suggested_label",
                                     "suggested_label_confidence", "is_duplicate_issue", "is_leak_issue",
                                     "quality_issues", "is_outlier_issue", "duplicate_of"])
    df["is_quality_issue"] = df["quality_issues"] != ""
    df["issue_kinds"] = ""          # (not read by the export)
    df.to_parquet(tmp_path / "audit.parquet")
    make_manifest(df["sample_id"], df["label"], source=[f"img/{s}.png" for s in df["sample_id"]]).to_parquet(
        tmp_path / "manifest.parquet")
    return tmp_path


def _ids(df):
    return sorted(df["sample_id"])


def test_without_drop_the_policies_are_as_before_except_relabel_of_unusable_images(run):
    assert _ids(build_export(run, "clean")) == ["a", "b", "d", "e", "f", "i", "j"]
    rel = build_export(run, "relabel").set_index("sample_id")
    assert "g" not in rel.index                           # flagged on a blurry, blank image: dropped, not relabelled
    assert rel.loc["h", "label"] == 2 and rel.loc["c", "label"] == 0 and rel.loc["c", "decision"] == "relabel"
    assert len(build_export(run, "reweight")) == len(ROWS)


def test_each_kind_can_be_dropped(run):
    base = set(_ids(build_export(run, "reweight")))
    assert base - set(_ids(build_export(run, "reweight", drop=["duplicate"]))) == {"b", "c"}   # a stays for its group
    assert base - set(_ids(build_export(run, "reweight", drop=["leak"]))) == {"d"}
    assert base - set(_ids(build_export(run, "reweight", drop=["quality"]))) == {"e", "g"}    # grayscale f stays
    assert base - set(_ids(build_export(run, "reweight", drop=["quality"], unusable=["grayscale"]))) == {"f"}
    assert base - set(_ids(build_export(run, "reweight", drop=["outlier"]))) == {"i"}
    everything = _ids(build_export(run, "clean", drop=["duplicate", "leak", "quality", "outlier"]))
    assert everything == ["a", "f", "j"]


def test_a_dropped_representative_hands_over_to_the_next_copy(run):
    record_decisions(run, ["a"], "drop")
    out = _ids(build_export(run, "reweight", drop=["duplicate"]))
    assert "a" not in out and "b" in out and "c" not in out        # b: the lower score of the two left


def test_review_decisions_override_the_hygiene_drops(run):
    record_decisions(run, ["b"], "keep")                            # a person keeps a copy on purpose
    record_decisions(run, ["e"], "keep")                            # and a dark image
    record_decisions(run, ["j"], "drop")
    out = build_export(run, "clean", drop=["duplicate", "quality"]).set_index("sample_id")
    assert {"b", "e"} <= set(out.index) and not {"a", "c", "j"} & set(out.index)   # b now stands for its group
    assert out.loc["b", "decided_by"] == "review"
    record_decisions(run, ["a"], "keep")                            # both kept by a person: both stay
    assert {"a", "b"} <= set(build_export(run, "clean", drop=["duplicate"])["sample_id"])


def test_the_summary_says_why_samples_were_dropped(run, tmp_path):
    s = export_run(run, "clean", "x.parquet", base=tmp_path, drop=("duplicate", "leak"))
    assert s["dropped_for"] == {"label": 3, "duplicate": 1, "leak": 1} and s["n_dropped"] == 5 and s["drop"] == [
        "duplicate", "leak"]


def test_bad_kinds_and_old_runs_are_refused_with_a_message(run, tmp_path):
    with pytest.raises(ConfigError, match="unknown kind"):
        build_export(run, "clean", drop=["dupes"])
    with pytest.raises(ConfigError, match="unknown image-quality check"):
        build_export(run, "clean", drop=["quality"], unusable=["fuzzy"])
    old = pd.read_parquet(run / "audit.parquet").drop(columns=["issue_kinds", "quality_issues"])
    old.to_parquet(run / "audit.parquet")
    with pytest.raises(DataError, match="no hygiene checks"):
        build_export(run, "clean", drop=["leak"])
    assert len(build_export(run, "clean")) == 7                    # without --drop an old run still exports


def test_cli_drop_option(run, tmp_path):
    out = subprocess.run([sys.executable, "-m", "curator", "export", str(run), "--policy", "clean", "--drop",
                          "duplicate,outlier", "--out", str(tmp_path / "c.csv")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "1 duplicate" in out.stdout and "1 outlier" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "curator", "export", str(run), "--policy", "clean", "--drop", "nope",
                          "--out", str(tmp_path / "d.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown kind" in bad.stderr and "Traceback" not in bad.stderr
    assert np.load(tmp_path / "c.weights.npy").shape == (len(pd.read_csv(tmp_path / "c.csv")),)
