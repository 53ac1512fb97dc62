"""The duplicate-group gallery's logic (curator.explore.duplicates): listing, order, the member kept (checked against
what `curator.audit.export` keeps), the group decisions and their state, one batch per group (one undo)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, for tests.fixtures_run
from tests.fixtures_run import write_fixture_run  # noqa: E402

from curator.explore.duplicates import (SHOW, duplicate_groups, group_plan, group_state, n_candidates,  # noqa: E402
                                        no_groups_reason, select_groups)
from curator.explore.review import decide_each, review_status  # noqa: E402
from curator.explore.run import load_run  # noqa: E402
from curator.review import load_decision_log, load_decisions, undo_last  # noqa: E402


def _table() -> pd.DataFrame:
    """Four groups by hand (rows in brackets):
    group 7 [0, 4]       same label, scores .1 .2          -> kept: the audit's choice, row 4 (duplicate_of empty)
    group 3 [1, 5, 6]    same label, scores .5 .4 .9       -> larger than 7: listed before it
    group 9 [2, 8]       labels 0 / 1 (conflict)          -> listed first
    group 5 [3, 9, 10]   labels 2 / 2 / 0 (conflict)      -> as many labels as group 9 but larger: the very first
    rows 7, 11: no group."""
    ids = [f"s{i}" for i in range(12)]
    group = [7, 3, 9, 5, 7, 3, 3, -1, 9, 5, 5, -1]
    label = [1, 4, 0, 2, 1, 4, 4, 3, 1, 2, 0, 3]
    score = [.1, .5, .3, .2, .2, .4, .9, .0, .8, .6, .7, .0]
    dup_of = ["s4", "s5", "", "", "", "", "s5", "", "s2", "s3", "s3", ""]
    return pd.DataFrame({"sample_id": ids, "dup_group": group, "label": label, "label_issue_score": score,
                         "duplicate_of": dup_of})


def test_groups_are_listed_conflicts_first_then_largest_with_the_kept_member_first():
    t = _table()
    g = duplicate_groups(t)
    assert g.group.tolist() == [5, 9, 3, 7]
    assert g.size.tolist() == [3, 2, 3, 2] and g.n_labels.tolist() == [2, 2, 1, 1]
    assert [g.members(i).tolist() for i in range(len(g))] == [[3, 9, 10], [2, 8], [5, 1, 6], [4, 0]]
    assert g.keeper.tolist() == [3, 2, 5, 4]                        # the audit's choice (duplicate_of empty)
    np.testing.assert_allclose(g.max_score, [.7, .8, .9, .2])
    assert 7 not in g.rows and 11 not in g.rows
    # same label count and size: the higher top score first
    t2 = t.assign(dup_group=[7, 3, 9, 5, 7, 3, -1, -1, 9, 5, -1, -1], label=[1, 4, 0, 2, 1, 4, 4, 3, 1, 0, 0, 3])
    assert duplicate_groups(t2).group.tolist() == [9, 5, 3, 7]      # conflicts .8 > .6, then .5 > .2


def test_without_the_audits_choice_the_lowest_score_is_kept_and_runs_without_groups_say_why():
    t = _table().drop(columns=["duplicate_of"])
    g = duplicate_groups(t)
    assert dict(zip(g.group.tolist(), g.keeper.tolist())) == {5: 3, 9: 2, 3: 5, 7: 0}   # lowest score per group
    assert duplicate_groups(t.drop(columns=["dup_group"])) is None
    assert "no duplicate check" in no_groups_reason(t.drop(columns=["dup_group"]), {})
    empty = duplicate_groups(t.assign(dup_group=-1))
    assert len(empty) == 0 and "found no identical" in no_groups_reason(t, {})
    assert "skipped in this run: switched off" in no_groups_reason(t, {"duplicates": {"skipped": "switched off"}})
    assert n_candidates(t) is None
    assert n_candidates(t.assign(duplicate_candidate_of=["", "s3"] + [""] * 10)) == 1


def test_group_plans_and_the_state_they_leave():
    t = _table()
    g = duplicate_groups(t)
    labels = t["label"].to_numpy()
    name = lambda c: f"c{c}"  # noqa: E731
    n = len(t)

    def apply(i, action, new=None):
        rows, acts, labs = group_plan(g, i, labels, action, new)
        status, new_label = np.zeros(n, np.int8), np.full(n, -1, np.int64)
        code = {"keep": 1, "relabel": 2, "drop": 3}
        for r, a, lab in zip(rows, acts, labs):
            status[r], new_label[r] = code[a], -1 if lab is None else lab
        return (rows.tolist(), acts, labs), group_state(g, i, labels, status, new_label, name)

    zero = np.zeros(n, np.int8)
    assert group_state(g, 0, labels, zero, np.full(n, -1), name) == "not decided"
    assert apply(0, "keep_one") == (([3, 9, 10], ["keep", "drop", "drop"], [None] * 3), "keep one, drop the others")
    assert apply(0, "keep_all")[1] == "keep all" and apply(0, "keep_all")[0][1] == ["keep"] * 3
    assert apply(0, "drop_all")[1] == "drop all" and apply(0, "drop_all")[0][1] == ["drop"] * 3
    # relabel all to 0: the member already labelled 0 is kept (its label confirmed), the others relabelled
    assert apply(0, "relabel_all", 0) == (([3, 9, 10], ["relabel", "relabel", "keep"], [0, 0, None]), "relabel all to c0")
    with pytest.raises(ValueError, match="needs new_label"):
        group_plan(g, 0, labels, "relabel_all")
    with pytest.raises(ValueError, match="unknown group decision"):
        group_plan(g, 0, labels, "merge")
    mixed = zero.copy()
    mixed[[3, 9]] = [3, 1]
    assert group_state(g, 0, labels, mixed, np.full(n, -1), name) == "mixed: 1 not reviewed, 1 kept, 1 dropped"
    # what is listed: all, the conflicts, the groups nobody decided on yet
    assert select_groups(g, SHOW[0], zero).tolist() == [0, 1, 2, 3]
    assert select_groups(g, SHOW[1], zero).tolist() == [0, 1]
    assert select_groups(g, SHOW[2], mixed).tolist() == [1, 2, 3]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return write_fixture_run(tmp_path_factory.mktemp("dupgroups") / "run")


def test_the_kept_member_is_the_one_the_deduplicated_export_keeps(run_dir, tmp_path):
    from curator.audit.export import build_export

    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    run = load_run(run_dir)
    g = duplicate_groups(run.table)
    planted = json.loads((run_dir / "fixture.json").read_text())["hygiene"]
    ids = run.table["sample_id"].to_numpy()
    assert set(ids[g.rows]) == set(planted["duplicate"]) and len(g) == 2
    assert set(ids[g.members(0)]) == set(planted["conflict"])      # the pair with two labels comes first
    kept = set(build_export(run_dir, "reweight", drop=("duplicate",))["sample_id"]) & set(ids[g.rows])
    assert kept == set(ids[g.keeper])


def test_a_group_decision_is_one_batch_and_one_undo_takes_it_back(run_dir):
    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    run = load_run(run_dir)
    g = duplicate_groups(run.table)
    labels = run.table["label"].to_numpy()
    ids = run.table["sample_id"].to_numpy()
    other = str(ids[next(r for r in range(run.n_samples) if r not in set(g.rows.tolist()))])
    decide_each(run, [other], ["drop"], [None], reviewer="ann")             # an earlier decision on another sample
    rows, acts, labs = group_plan(g, 0, labels, "keep_one")
    decide_each(run, ids[rows], acts, labs, reviewer="ann")
    log = load_decision_log(run_dir)
    assert log["batch"].nunique() == 2 and set(log.loc[log["batch"] == log["batch"].max(), "sample_id"]) == set(ids[rows])
    status, new_label = review_status(run)
    assert group_state(g, 0, labels, status, new_label, run.class_name) == "keep one, drop the others"
    target = int((labels[g.members(1)[0]] + 1) % run.n_classes)            # a class no member carries
    rows1, acts1, labs1 = group_plan(g, 1, labels, "relabel_all", target)
    decide_each(run, ids[rows1], acts1, labs1, reviewer="ann")
    status, new_label = review_status(run)
    assert group_state(g, 1, labels, status, new_label, run.class_name) == f"relabel all to {run.class_name(target)}"
    assert len(undo_last(run_dir, "ann")) == len(rows1)                       # the whole group, nothing else
    undo_last(run_dir, "ann")
    assert load_decisions(run_dir)["sample_id"].tolist() == [other]        # both groups back, the earlier one stays
    with pytest.raises(ValueError, match="not in run"):
        decide_each(run, ["no/such"], ["keep"], [None])
