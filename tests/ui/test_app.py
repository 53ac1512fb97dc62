"""The Streamlit explorer under streamlit.testing.v1.AppTest on the fixture run: every page
opens, filters change the grid, decisions are persisted in decisions.parquet and the export uses
them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # repo root, for tests.fixtures_run
from tests.fixtures_run import write_fixture_run  # noqa: E402

from streamlit.testing.v1 import AppTest  # noqa: E402

from curator.explore.filters import SampleFilter, filter_samples  # noqa: E402
from curator.explore.run import load_run  # noqa: E402
from curator.review import load_decisions  # noqa: E402

APP = str(ROOT / "ui" / "app.py")
pytestmark = pytest.mark.slow  # each AppTest run re-executes the app script (a few seconds in all)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return write_fixture_run(tmp_path_factory.mktemp("ui") / "run", with_umap=True)


@pytest.fixture()
def app(run_dir, monkeypatch):
    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    monkeypatch.setenv("CURATOR_RUN_DIR", str(run_dir))
    monkeypatch.setenv("CURATOR_MAP_METHOD", "pca")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _matching_count(at) -> int:
    text = next(m.value for m in at.markdown if "samples match the filters" in m.value)
    return int(text.split("**")[1].replace(",", ""))


def test_every_page_opens(app, run_dir):
    n = json.loads((run_dir / "fixture.json").read_text())["n"]
    assert [t.value for t in app.title] == ["Overview"]
    assert any(m.label == "Training samples" and m.value == f"{n:,}" for m in app.metric)
    assert any("below 20 estimated clean samples" in w.value for w in app.warning), "tail classes at risk shown"
    for page, title in [("views/flagged.py", "Flagged samples"), ("views/sample.py", "Sample"),
                        ("views/map.py", "Embedding map"), ("views/duplicates.py", "Duplicate groups"),
                        ("views/review.py", "Review & export")]:
        app.switch_page(page).run()
        assert not app.exception, (page, app.exception)
        assert [t.value for t in app.title] == [title]


def test_grid_follows_filters(app, run_dir):
    run = load_run(run_dir)
    app.switch_page("views/flagged.py").run()
    n_flagged = int(run.table["is_label_issue"].sum())
    assert _matching_count(app) == n_flagged
    assert len(app.image) == min(24, n_flagged)
    app.multiselect(key="f_shots").set_value(["many"]).run()
    expected = filter_samples(run.table, SampleFilter(shot_groups=("many",)))
    assert _matching_count(app) == len(expected) < n_flagged
    captions = [c.value for c in app.caption if c.value.startswith("score ")]
    assert captions and all("· many ·" in c for c in captions)
    app.radio(key="f_flagged").set_value("all").run()
    app.slider(key="f_score").set_value((0.0, 0.3)).run()
    expected = filter_samples(run.table, SampleFilter(shot_groups=("many",), flagged="all", score_range=(0.0, 0.3)))
    assert _matching_count(app) == len(expected)
    shown = [float(c.value.split()[1]) for c in app.caption if c.value.startswith("score ")]
    assert shown and max(shown) <= 0.3 + 1e-9
    assert shown == sorted(shown, reverse=True)


def test_decisions_are_persisted_and_shown(app, run_dir):
    run = load_run(run_dir)
    app.switch_page("views/flagged.py").run()
    order = filter_samples(run.table, SampleFilter())
    first, second = (str(run.table["sample_id"].iat[int(p)]) for p in order[:2])
    app.button(key=f"drop_{first}").click().run()
    app.button(key=f"fix_{second}").click().run()
    d = load_decisions(run_dir).set_index("sample_id")
    assert d.loc[first, "action"] == "drop"
    sug = int(run.table.set_index("sample_id").loc[second, "suggested_label"])
    assert d.loc[second, "action"] == "relabel" and d.loc[second, "new_label"] == sug
    assert any("dropped" in c.value for c in app.caption)
    # the review filter sees the decision
    app.multiselect(key="f_review").set_value(["drop"]).run()
    assert _matching_count(app) == 1
    # sample page: relabel to an explicit class
    app.switch_page("views/sample.py").run()
    app.text_input(key="sample_input").set_value(first).run()
    app.selectbox(key=f"s_new_label_{first}").set_value(3).run()
    app.button(key="s_relabel").click().run()
    assert not app.exception
    d = load_decisions(run_dir).set_index("sample_id")
    assert d.loc[first, "action"] == "relabel" and d.loc[first, "new_label"] == 3
    assert any("relabelled → digit 3" in m.value for m in app.markdown)


def test_bulk_decision_for_filtered_set(app, run_dir):
    run = load_run(run_dir)
    app.multiselect(key="f_classes").set_value([9]).run()
    app.radio(key="f_flagged").set_value("all").run()
    app.switch_page("views/review.py").run()
    app.radio(key="bulk_action").set_value("drop").run()
    assert app.button(key="bulk_apply").disabled, "needs the confirmation first"
    app.checkbox(key="bulk_confirm_0").check().run()
    app.button(key="bulk_apply").click().run()
    assert not app.exception
    d = load_decisions(run_dir)
    expected = set(run.table.loc[run.table["label"] == 9, "sample_id"])
    assert set(d["sample_id"]) == expected and (d["action"] == "drop").all()
    assert any(m.label == "Dropped" and m.value == f"{len(expected):,}" for m in app.metric)


def test_sample_page_shows_signals_gdw_history_and_neighbours(app, run_dir):
    run = load_run(run_dir)
    sid = str(run.table["sample_id"].iat[7])
    app.switch_page("views/sample.py").run()
    app.text_input(key="sample_input").set_value(sid).run()
    assert not app.exception
    signals = app.dataframe[0].value
    assert "label_issue_score" in set(signals["signal"]) and "knn_agreement" in set(signals["signal"])
    assert signals["meaning"].str.len().min() > 10
    k = np.load(run_dir / "knn.npz")["indices"].shape[1]
    assert len(app.image) == 1 + min(10, k)  # the sample and its neighbours
    assert not any("No GDW weight changes" in i.value for i in app.info)
    assert any("Measured on this run" in c.value and "known mislabelled samples" in c.value for c in app.caption)
    assert not any("No per-epoch history" in i.value for i in app.info)
    # a neighbour opens its own page
    nb = int(np.load(run_dir / "knn.npz")["indices"][7, 0])
    app.button(key=f"nb_{nb}").click().run()
    assert app.session_state["sample_id"] == str(run.table["sample_id"].iat[nb])


def test_export_button_uses_decisions(app, run_dir):
    run = load_run(run_dir)
    ids = run.table["sample_id"].tolist()
    keep_first_unflagged = [s for s, f in zip(ids, run.table["is_label_issue"]) if not f][0]
    app.switch_page("views/sample.py").run()
    app.text_input(key="sample_input").set_value(keep_first_unflagged).run()
    app.button(key="s_drop").click().run()
    assert load_decisions(run_dir).set_index("sample_id").loc[keep_first_unflagged, "action"] == "drop"
    app.switch_page("views/review.py").run()
    app.selectbox(key="export_policy").set_value("clean").run()
    app.button(key="export_button").click().run()
    assert not app.exception
    assert any("Exported with policy clean" in s.value for s in app.success)
    out = sorted((run_dir / "exports").glob("clean*"))
    assert out, "export wrote a file under RUN/exports/"
    table = pd.read_parquet(out[0]) if out[0].suffix == ".parquet" else pd.read_csv(out[0])
    assert keep_first_unflagged not in set(table["sample_id"].astype(str)), "a dropped decision removes the sample"


def test_overview_shows_the_audits_warnings(tmp_path, monkeypatch):
    run = write_fixture_run(tmp_path / "run")
    text = "84% of the labels are flagged as wrong. Either most labels really are wrong, or ..."
    (run / "diagnostics.json").write_text(json.dumps({"flagged_share": 0.84, "warnings": [text]}))
    monkeypatch.setenv("CURATOR_RUN_DIR", str(run))
    monkeypatch.setenv("CURATOR_MAP_METHOD", "pca")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    from ui.common import md

    assert any(w.value == md(text) for w in at.warning)  # shown as plain text (Markdown characters escaped)


# --- hygiene: the kinds on the overview, the grid's kind filter, copies on the sample page, export drops ------------

def test_overview_counts_each_issue_kind(app, run_dir):
    planted = json.loads((run_dir / "fixture.json").read_text())["hygiene"]
    metrics = {m.label: m.value for m in app.metric}
    for kind in ("duplicate", "leak", "quality", "outlier"):
        assert metrics[kind.capitalize()] == f"{len(planted[kind]):,}", kind
    assert metrics["Label"] == f"{int(load_run(run_dir).table['is_label_issue'].sum()):,}"
    assert any("on images with an image-quality issue" in c.value for c in app.caption)
    assert any("copy in the test / validation split" in m.value for m in app.markdown)


def test_grid_filters_by_issue_kind(app, run_dir):
    planted = json.loads((run_dir / "fixture.json").read_text())["hygiene"]
    app.switch_page("views/flagged.py").run()
    app.multiselect(key="f_kinds").set_value(["quality"]).run()
    assert not app.exception
    assert _matching_count(app) == len(planted["quality"])
    kinds = [c.value for c in app.caption if c.value.startswith("issues:")]
    assert len(kinds) == len(planted["quality"]) and all("quality" in k for k in kinds)
    assert any("label · quality" in k for k in kinds)              # the label issue on a bad image says so
    app.multiselect(key="f_kinds").set_value(["duplicate", "leak"]).run()
    assert _matching_count(app) == len(set(planted["duplicate"]) | set(planted["leak"]))


def test_sample_page_shows_the_kinds_and_the_copies(app, run_dir):
    planted = json.loads((run_dir / "fixture.json").read_text())["hygiene"]
    app.switch_page("views/sample.py").run()
    app.text_input(key="sample_input").set_value(planted["conflict"][0]).run()
    assert not app.exception
    assert any(m.value.startswith("**Issues:**") and "duplicate" in m.value for m in app.markdown)
    assert "Copies of this image" in [s.value for s in app.subheader]
    other = load_run(run_dir).position(planted["conflict"][1])
    app.button(key=f"dup_{other}").click().run()                    # the copy opens its own page
    assert app.session_state["sample_id"] == planted["conflict"][1]


def test_export_can_drop_duplicates(app, run_dir):
    planted = json.loads((run_dir / "fixture.json").read_text())["hygiene"]
    app.switch_page("views/review.py").run()
    app.selectbox(key="export_policy").set_value("reweight").run()
    app.text_input(key="export_name").set_value("dedup.parquet").run()
    app.multiselect(key="export_drop").set_value(["duplicate"]).run()
    app.button(key="export_button").click().run()
    assert not app.exception
    table = pd.read_parquet(run_dir / "exports" / "dedup.parquet")
    kept = set(table["sample_id"]) & set(planted["duplicate"])
    assert len(kept) == 2                                           # one of each pair


# --- review that cannot mislabel by accident ---------------------------------------------------------------------

def _relabel_box(at):
    boxes = [s for s in at.selectbox if s.label == "Relabel as"]
    assert len(boxes) == 1, [s.label for s in at.selectbox]
    return boxes[0]


def _button(at, text):
    found = [b for b in at.button if text in b.label]
    assert found, (text, [b.label for b in at.button])
    return found[0]


def test_relabel_choice_does_not_carry_over_to_the_next_sample(app, run_dir):
    """The bug: relabel sample A to a class, press Next, and B's "Relabel as" box still held A's class, so one more
    click relabelled B wrongly. Each sample's chooser starts empty and relabelling needs a class chosen there."""
    run = load_run(run_dir)
    order = filter_samples(run.table, SampleFilter())
    a, b = (str(run.table["sample_id"].iat[int(p)]) for p in order[:2])
    sug_b = int(run.table["suggested_label"].iat[int(order[1])])
    chosen = (sug_b + 1) % run.n_classes                                     # a class that is not B's suggestion
    app.switch_page("views/sample.py").run()
    app.text_input(key="sample_input").set_value(a).run()
    _relabel_box(app).set_value(chosen).run()
    _button(app, "Relabel to the chosen class").click().run()
    assert load_decisions(run_dir).set_index("sample_id").loc[a, "new_label"] == chosen
    _button(app, "Next").click().run()
    assert not app.exception
    assert app.session_state["sample_id"] == b
    assert _relabel_box(app).value is None, "B's class chooser still holds A's choice"
    assert _button(app, "Relabel to the chosen class").disabled, "relabel needs a class chosen on B's own page"
    assert b not in set(load_decisions(run_dir)["sample_id"])
    _relabel_box(app).set_value(sug_b).run()                                 # choosing B's class enables it
    _button(app, "Relabel to the chosen class").click().run()
    d = load_decisions(run_dir).set_index("sample_id")
    assert d.loc[b, "new_label"] == sug_b and d.loc[a, "new_label"] == chosen


def _fresh_app(run_dir, monkeypatch, reviewer):
    monkeypatch.setenv("CURATOR_RUN_DIR", str(run_dir))
    monkeypatch.setenv("CURATOR_MAP_METHOD", "pca")
    monkeypatch.setenv("CURATOR_REVIEWER", reviewer)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def test_keyboard_labelled_review_undo_and_resume(run_dir, monkeypatch):
    from curator.review import load_decision_log

    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    run = load_run(run_dir)
    order = [str(run.table["sample_id"].iat[int(p)]) for p in filter_samples(run.table, SampleFilter())]
    at = _fresh_app(run_dir, monkeypatch, "ann")
    at.switch_page("views/sample.py").run()
    assert at.session_state["sample_id"] == order[0]
    keep = at.button(key="s_keep")
    assert keep.label == "Keep label" and keep.proto.shortcut.lower() == "k"     # a word on the button, and a key
    keep.click().run()
    at.button(key="s_next").click().run()
    at.button(key="s_drop").click().run()
    log = load_decision_log(run_dir)
    assert log[["sample_id", "action", "reviewer"]].values.tolist() == [[order[0], "keep", "ann"],
                                                                          [order[1], "drop", "ann"]]
    at.button(key="s_undo").click().run()                                       # takes back the drop only
    d = load_decisions(run_dir).set_index("sample_id")
    assert order[1] not in d.index and d.loc[order[0], "action"] == "keep"
    assert len(load_decision_log(run_dir)) == 3                                 # the undo is logged, nothing erased
    # a new session of the same reviewer resumes at the first sample without a decision
    at = _fresh_app(run_dir, monkeypatch, "ann")
    at.switch_page("views/sample.py").run()
    assert at.session_state["sample_id"] == order[1]
    assert any("Your last decision" in c.value and "clear" in c.value and "an undo" in c.value for c in at.caption)


def test_grid_selection_gets_one_bulk_decision_and_one_undo(run_dir, monkeypatch):
    from curator.review import load_decision_log

    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    run = load_run(run_dir)
    order = [str(run.table["sample_id"].iat[int(p)]) for p in filter_samples(run.table, SampleFilter())]
    at = _fresh_app(run_dir, monkeypatch, "bob")
    at.switch_page("views/flagged.py").run()
    assert at.button(key="bulk_drop").disabled                                 # nothing selected yet
    for s in order[1:4]:
        at.checkbox(key=f"sel_{s}").check().run()
    assert any("**3** of" in m.value for m in at.markdown)
    at.button(key="bulk_drop").click().run()
    assert not at.exception
    log = load_decision_log(run_dir)
    assert sorted(log["sample_id"]) == sorted(order[1:4]) and log["batch"].nunique() == 1  # one decision, one batch
    assert (log["action"] == "drop").all() and (log["reviewer"] == "bob").all()
    assert not any(at.checkbox(key=f"sel_{s}").value for s in order[1:4])     # the ticks are cleared
    at.button(key="sel_all").click().run()
    assert all(at.checkbox(key=f"sel_{s}").value for s in order[:24])
    # one undo (from the sample page) takes the whole bulk decision back
    at.switch_page("views/sample.py").run()
    at.button(key="s_undo").click().run()
    assert len(load_decisions(run_dir)) == 0


def test_grid_shows_true_label_sizes_and_similar(app, run_dir):
    run = load_run(run_dir)
    order = [str(run.table["sample_id"].iat[int(p)]) for p in filter_samples(run.table, SampleFilter())]
    app.switch_page("views/flagged.py").run()
    assert any(c.value.startswith("true label") for c in app.caption)
    app.selectbox(key="grid_thumb").set_value("large (200 px)").run()
    assert not app.exception
    app.button(key=f"similar_{order[0]}").click().run()
    assert not app.exception
    k = np.load(run_dir / "knn.npz")["indices"].shape[1]
    assert _matching_count(app) == 1 + k and len(app.image) == min(24, 1 + k)
    app.button(key="similar_back").click().run()
    assert _matching_count(app) == int(run.table["is_label_issue"].sum())


def test_spot_check_answers_become_decisions_and_an_estimate(run_dir, monkeypatch):
    from curator.audit.spot_check import read_spot_check

    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    (run_dir / "spot_check.json").unlink(missing_ok=True)
    run = load_run(run_dir)
    t = run.table.set_index("sample_id")
    at = _fresh_app(run_dir, monkeypatch, "cy")
    at.switch_page("views/spot_check.py").run()
    at.radio(key="sc_mode").set_value(at.radio(key="sc_mode").options[1]).run()   # quick
    at.button(key="sc_draw").click().run()
    assert not at.exception
    draw = read_spot_check(run_dir)
    assert draw["mode"] == "quick" and len(draw["sample"]) == min(30, int(t["is_label_issue"].sum()))
    assert all(bool(t.loc[s["sample_id"], "is_label_issue"]) for s in draw["sample"])
    answered = []
    for _ in range(len(draw["sample"])):                                          # a reviewer who knows the truth
        sid = next(c.value for c in at.caption if c.value.startswith("sample ")).split(" ", 1)[1].replace("\\", "")
        wrong = t.loc[sid, "true_label"] != t.loc[sid, "label"]
        at.button(key="sc_drop" if wrong else "sc_keep").click().run()
        answered.append((sid, wrong))
    assert not at.exception
    assert any("Every sample of this spot check is answered" in s.value for s in at.success)
    d = load_decisions(run_dir).set_index("sample_id")
    assert all(d.loc[s, "action"] == ("drop" if w else "keep") for s, w in answered)   # answers are decisions
    est = read_spot_check(run_dir)["estimate"]
    true_prec = float(np.mean([w for _, w in answered]))
    assert est["n_answered"] == len(answered)
    assert est["overall"]["low"] <= true_prec <= est["overall"]["high"]
    assert any(m.label == "Estimated precision" for m in at.metric)
    # the overview shows it
    at.switch_page("views/overview.py").run()
    assert any(m.label == "Flag precision (spot check)" for m in at.metric)


def test_duplicate_groups_get_one_decision_each_and_undo_takes_a_group_back(run_dir, monkeypatch):
    from curator.explore.duplicates import SHOW, duplicate_groups
    from curator.review import load_decision_log

    (run_dir / "decisions.parquet").unlink(missing_ok=True)
    run = load_run(run_dir)
    groups = duplicate_groups(run.table)
    ids, labels = run.table["sample_id"].to_numpy(), run.table["label"].to_numpy()
    a, b = (int(x) for x in groups.group)                           # the pair with two labels first, then the other
    members = {int(x): list(ids[groups.members(i)]) for i, x in enumerate(groups.group)}
    keeper = str(ids[groups.keeper[0]])
    at = _fresh_app(run_dir, monkeypatch, "dee")
    at.switch_page("views/duplicates.py").run()
    assert not at.exception
    heads = [m.value for m in at.markdown if m.value.startswith("**Group")]
    assert [h.split("**")[1] for h in heads] == [f"Group {a}", f"Group {b}"] and "different labels" in heads[0]
    assert sum("export keeps" in m.value for m in at.markdown) == 2 and all("not decided" in h for h in heads)

    def actions(group):
        d = load_decisions(run_dir).set_index("sample_id")
        return {s: (d.loc[s, "action"], int(d.loc[s, "new_label"])) if s in d.index else None for s in members[group]}

    at.button(key=f"dg_keep_one_{a}").click().run()
    assert actions(a) == {s: ("keep" if s == keeper else "drop", -1) for s in members[a]}
    assert any(m.value.startswith(f"**Group {a}") and "keep one, drop the others" in m.value for m in at.markdown)
    at.button(key=f"dg_keep_all_{a}").click().run()
    assert actions(a) == {s: ("keep", -1) for s in members[a]}
    at.button(key=f"dg_drop_all_{a}").click().run()
    assert actions(a) == {s: ("drop", -1) for s in members[a]}
    assert at.button(key=f"dg_relabel_all_{b}").disabled                   # relabel needs a class chosen on that group
    target = int((labels[run.position(members[b][0])] + 1) % run.n_classes)
    at.selectbox(key=f"dg_class_{b}").set_value(target).run()
    at.button(key=f"dg_relabel_all_{b}").click().run()
    assert not at.exception
    assert actions(b) == {s: ("relabel", target) for s in members[b]}
    assert actions(a) == {s: ("drop", -1) for s in members[a]}              # the other group is untouched
    assert at.selectbox(key=f"dg_class_{a}").value is None                  # the class chosen for b is b's only
    log = load_decision_log(run_dir)
    assert log["batch"].nunique() == 4 and log.groupby("batch").size().tolist() == [2, 2, 2, 2]   # a batch per decision
    at.button(key="dg_undo").click().run()                                  # takes group b back, whole
    assert actions(b) == {s: None for s in members[b]} and actions(a) == {s: ("drop", -1) for s in members[a]}
    at.button(key="dg_undo").click().run()                                  # then a's "drop all": back to "keep all"
    assert actions(a) == {s: ("keep", -1) for s in members[a]}
    at.radio(key="dg_show").set_value(SHOW[2]).run()                        # only the groups nobody decided on yet
    assert [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**Group")] == [f"Group {b}"]


def test_duplicate_groups_page_of_a_run_without_the_duplicate_check_says_why(run_dir, tmp_path, monkeypatch):
    import shutil

    for f in ("manifest.parquet", "config.json"):                            # a run before the audit: no dup_group
        shutil.copy(run_dir / f, tmp_path / f)
    at = _fresh_app(tmp_path, monkeypatch, "eve")
    at.switch_page("views/duplicates.py").run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Duplicate groups"]
    assert any("no duplicate check" in i.value for i in at.info) and not any(b.key == "dg_undo" for b in at.button)
