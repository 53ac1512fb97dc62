"""Streamlit glue shared by the explorer's pages: cached loaders, the filter sidebar, small widgets.

No logic lives here beyond wiring: numbers come from `curator.explore`. The run is loaded once per
process (`st.cache_resource`, shared read-only by every session); decisions are re-read whenever
RUN/decisions.parquet changes, so a decision made in one tab shows in every other.

Text that comes from the data (class names, sample ids, file names, error messages) goes through
`md()` before any Streamlit call that renders Markdown (markdown, caption, info, warning, error,
success): a class named ``[x](https://…)`` is shown as those characters, not as a link.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import streamlit as st

from curator.hygiene import registry
from curator.explore.filters import FLAG_CHOICES, SampleFilter, available_kinds, filter_samples, sortable_columns
from curator.explore.review import REVIEW_STATUSES, decide, decide_each, describe_decision, review_status
from curator.data.stats import SHOT_GROUPS
from curator.explore.run import ExplorerRun, load_run
from curator import runfiles
from curator.review import default_reviewer, load_decisions, undo_last

RUN_ENV = "CURATOR_RUN_DIR"
THUMB = 96
_MD_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:=&")


def md(text) -> str:
    """`text` escaped for Streamlit Markdown: every character with a meaning there (links, emphasis,
    code, headings, lists, tables, HTML, LaTeX ``$``, ``:color[...]`` / ``:icon:`` directives) is
    backslash-escaped and line breaks become spaces, so data shows as the plain text it is."""
    out = []
    for ch in " ".join(str(text).splitlines()):
        out.append("\\" + ch if ch in _MD_SPECIAL else ch)
    return "".join(out)


def run_dir_from_argv(argv: list[str] | None = None) -> str | None:
    """`streamlit run ui/app.py -- --run DIR` (or ``-- DIR``), else $CURATOR_RUN_DIR."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--run", default=None)
    known, rest = p.parse_known_args(argv)
    if known.run:
        return known.run
    if os.environ.get(RUN_ENV):
        return os.environ[RUN_ENV]
    for a in rest:
        if not a.startswith("-") and (Path(a) / "manifest.parquet").exists():
            return a
    return None


def map_method_from_argv(argv: list[str] | None = None) -> str:
    """`-- --map-method pca|umap` (or $CURATOR_MAP_METHOD); default umap."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--map-method", dest="map_method", choices=["umap", "pca"], default=None)
    known, _ = p.parse_known_args(argv)
    return known.map_method or os.environ.get("CURATOR_MAP_METHOD", "umap")


@st.cache_resource(show_spinner=False, max_entries=4)
def _map_job(path: str, method: str, stamp: int):
    from curator.explore.embedding_map import MapJob

    return MapJob(path, method)


def map_job(run: ExplorerRun):
    """The embedding map computed in another process, started the first time any page opens (a warm-up: the
    person does not wait for UMAP's compilation on the map page)."""
    return _map_job(str(run.path), map_method_from_argv(), _mtime(run.path / runfiles.EMBEDDINGS))


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


@st.cache_resource(show_spinner="Loading the run…", max_entries=4)
def _load(path: str, stamp: tuple[int, ...]) -> ExplorerRun:
    return load_run(path)


def run_stamp(path: Path) -> tuple[int, ...]:
    """The modification times of the files the run's table is read from: a cache key that changes with them."""
    return tuple(_mtime(Path(path) / f) for f in ("manifest.parquet", "signals.parquet", "audit.parquet"))


def get_run() -> ExplorerRun:
    path = Path(st.session_state["run_dir"])
    return _load(str(path), run_stamp(path))


@st.cache_resource(show_spinner=False, max_entries=4)
def _status(path: str, stamp: int, _run: ExplorerRun) -> tuple[np.ndarray, np.ndarray, int]:
    decisions = load_decisions(path)
    status, new_label = review_status(_run, decisions)
    return status, new_label, len(decisions)


def get_status(run: ExplorerRun) -> tuple[np.ndarray, np.ndarray, int]:
    """(status codes, new labels, number of decisions), refreshed when decisions.parquet changes."""
    return _status(str(run.path), _mtime(run.path / runfiles.DECISIONS), run)


@st.cache_resource(show_spinner="Opening the dataset's images…", max_entries=2)
def get_thumbnails(path: str):
    """Thumbnails of the run's pinned images (with the samples that changed since the run), or why not."""
    from curator.explore.thumbnails import Thumbnails, open_run_images

    try:
        return Thumbnails(open_run_images(path))
    except Exception as exc:  # images may live on a disk that is not mounted here
        return f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)


def image_notice(run: ExplorerRun) -> None:
    """One warning when images cannot be shown, or some changed since the audit (naming those samples)."""
    from curator.data.pins import describe_changes

    thumbs = get_thumbnails(str(run.path))
    if isinstance(thumbs, str):
        st.warning(md(f"Images cannot be shown: {thumbs}"), icon=":material/hide_image:")
    elif thumbs.changed:
        st.warning(md(f"The dataset changed since this run read it: {describe_changes(thumbs.changed)}. "
                      "Those images are not shown; re-run the audit on the current data."), icon=":material/warning:")
    elif thumbs.run_images.unpinned:
        st.caption("This run was written before curator pinned each sample's file, so images are found by their "
                   "source path and a changed file cannot be detected.")


def image_change(run: ExplorerRun, pos: int) -> str | None:
    """Why the image of sample `pos` is not shown (it changed since the run read it), or None."""
    thumbs = get_thumbnails(str(run.path))
    if isinstance(thumbs, str):
        return None
    return thumbs.run_images.changed_refs.get(int(run.table["image_ref"].iat[pos]))


def thumbnail(run: ExplorerRun, pos: int, size: int = THUMB) -> np.ndarray:
    from curator.explore.thumbnails import placeholder

    thumbs = get_thumbnails(str(run.path))
    if isinstance(thumbs, str):
        return placeholder(size)
    return thumbs.get(int(run.table["image_ref"].iat[pos]), size)


@st.cache_resource(show_spinner=False, max_entries=64)
def _column_range(path: str, stamp: tuple, column: str, _run: ExplorerRun) -> tuple[float, float]:
    v = _run.table[column].to_numpy().astype(np.float64)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)


def column_range(run: ExplorerRun, column: str) -> tuple[float, float]:
    return _column_range(str(run.path), (), column, run)


def reviewer() -> str:
    """Who is deciding: the sidebar's "Reviewer" box (recorded with every decision)."""
    return (st.session_state.get("reviewer") or "").strip() or default_reviewer()


def reviewer_box() -> None:
    if "reviewer" not in st.session_state:
        st.session_state["reviewer"] = default_reviewer()
    st.sidebar.text_input("Reviewer", key="reviewer",
                          help="Recorded with every decision you make (decisions.parquet keeps the whole log); "
                               "Undo takes back your own newest decision. Default: $CURATOR_REVIEWER or your login.")


def filter_sidebar(run: ExplorerRun) -> SampleFilter:
    """The filter widgets (sidebar, shared by the grid, map and review pages) -> a SampleFilter."""
    sb = st.sidebar
    reviewer_box()
    sb.header("Filters")
    sb.caption("Apply to the flagged grid, the map listing and bulk review.")
    names = {c: f"{c}: {run.class_name(c)}" for c in range(run.n_classes)}
    flagged = sb.radio("Audit flag", FLAG_CHOICES, key="f_flagged", horizontal=True,
                       help="Flagged = has an issue of one of the kinds below (by default: `is_label_issue`, the audit "
                            "believes the given label is wrong).")
    kinds_here = available_kinds(run.table)
    kinds = ("label",)
    if len(kinds_here) > 1:
        kinds = tuple(sb.multiselect("Issue kinds", kinds_here, default=["label"], key="f_kinds",
                                     help="What 'flagged' means: " + "; ".join(f"{k}: {registry.words(k)}"
                                                                               for k in kinds_here)
                                          + ". A sample matches if it has any of the chosen kinds."))
    classes = sb.multiselect("Given label", list(names), format_func=names.get, key="f_classes")
    suggested = sb.multiselect("Suggested label", list(names), format_func=names.get, key="f_suggested")
    shots = sb.multiselect("Shot group", list(SHOT_GROUPS), key="f_shots",
                           help="Size of the given label's class as the audit estimates it (its estimated true size, "
                                "not the label count; the label count before the audit has run): "
                                "many >= 100, medium 20-100, few <= 20 samples.")
    score = (0.0, 1.0)
    if run.has_audit:
        score = sb.slider("label_issue_score", 0.0, 1.0, (0.0, 1.0), 0.01, key="f_score",
                          help="How likely the given label is wrong (1 = almost surely wrong).")
    review = sb.multiselect("Review status", list(REVIEW_STATUSES), key="f_review")
    numeric = [c for c in sortable_columns(run.table) if c not in ("label", "true_label", "rank")]
    thresholds = []
    for col in sb.multiselect("Signal thresholds", numeric, key="f_signals",
                              help="Keep samples whose signal lies in a range."):
        lo, hi = column_range(run, col)
        if lo == hi:
            continue
        a, b = sb.slider(col, lo, hi, (lo, hi), key=f"f_thr_{col}")
        thresholds.append((col, a if a > lo else None, b if b < hi else None))
    sort_cols = numeric
    default = sort_cols.index("label_issue_score") if "label_issue_score" in sort_cols else 0
    sort_by = sb.selectbox("Sort by", sort_cols, index=default, key="f_sort")
    descending = sb.toggle("Highest first", value=True, key="f_desc")
    return SampleFilter(classes=tuple(classes), suggested=tuple(suggested), shot_groups=tuple(shots),
                        score_range=tuple(score), flagged=flagged if run.has_audit else "all", kinds=kinds,
                        review=tuple(review), thresholds=tuple(thresholds), sort_by=sort_by, descending=descending)


def filtered_positions(run: ExplorerRun) -> np.ndarray:
    flt = st.session_state.get("filter") or SampleFilter(flagged="flagged" if run.has_audit else "all")
    status, _, _ = get_status(run)
    return filter_samples(run.table, flt, status, sort_cache=run.sort_cache)


def open_sample(sample_id: str) -> None:
    st.session_state["sample_id"] = sample_id
    st.switch_page(st.session_state["pages"]["sample"])


def resume_sample(run: ExplorerRun, positions: np.ndarray) -> str:
    """Where a reviewer picks up: the first sample of the filtered list without a decision (else the first)."""
    if not len(positions):
        return str(run.table["sample_id"].iat[0])
    status, _, _ = get_status(run)
    open_ = positions[status[positions] == 0]
    return str(run.table["sample_id"].iat[int(open_[0] if len(open_) else positions[0])])


def last_decision_text(run: ExplorerRun) -> str | None:
    """"Your last decision: …" for this reviewer, or None."""
    from curator.review import last_decision_by, load_decision_log

    row = last_decision_by(load_decision_log(run.path), reviewer())
    if row is None:
        return None
    what = f"relabel to {run.class_name(int(row['new_label']))}" if row["action"] == "relabel" else row["action"]
    undo = " (an undo)" if int(row["undoes"]) >= 0 else ""
    return f"Your last decision: {what}{undo} on {row['sample_id']} at {row['updated']}."


def spot_check_summary(run: ExplorerRun) -> dict | None:
    """The spot check's estimate from the current decisions (None without a spot check or an answer)."""
    from curator.audit.spot_check import read_spot_check, summarise

    draw = read_spot_check(run.path)
    if draw is None:
        return None
    est = summarise(draw, load_decisions(run.path))
    return None if est["overall"] is None else {**est, "mode": draw.get("mode", "full")}


@st.cache_resource(show_spinner=False, max_entries=4)
def _gdw_summary(path: str, stamp: tuple, _run: ExplorerRun) -> dict | None:
    from curator.explore.gdw import fig45_summary

    change = _run.head_array("gdw", "omega_change")
    if change is None or change.shape[0] != _run.n_samples:
        return None
    return fig45_summary(change, _run.table["label"].to_numpy(), _run.table["true_label"].to_numpy())


def gdw_summary(run: ExplorerRun) -> dict | None:
    """Paper 003 fig. 4-5 measured on the run's known mislabelled samples (curator.explore.gdw), or None."""
    return _gdw_summary(str(run.path), (_mtime(run.path / "heads" / "gdw.npz"),), run)


def agreement_mark(label: int, given: int) -> str:
    """A neighbour's or copy's label against the sample's, in words (no emoji: they need a font to render)."""
    return ":green[same label]" if label == given else ":red[**OTHER label**]"


def show_similar(sample_id: str) -> None:
    """Open the grid on `sample_id` and its kNN neighbours (the grid page shows them instead of the filters)."""
    st.session_state["similar_to"] = sample_id
    st.switch_page(st.session_state["pages"]["flagged"])


def decision_text(run: ExplorerRun, pos: int) -> str:
    status, new_label, _ = get_status(run)
    return describe_decision(status[pos], new_label[pos], run.class_name)


def save_decision(run: ExplorerRun, ids, action: str, new_label: int | None = None) -> None:
    decide(run, ids, action, new_label, reviewer=reviewer())
    n = len(ids)
    what = f"relabel to {run.class_name(new_label)}" if action == "relabel" else action
    st.toast(md(f"Saved: {what} for {n} sample{'s' if n != 1 else ''}"))


def save_decisions(run: ExplorerRun, ids, actions, new_labels, what: str) -> None:
    """One batch in which each sample has its own action (e.g. a duplicate group's "keep one, drop the others"):
    one Undo takes all of it back. `what` names the decision in the toast."""
    decide_each(run, ids, actions, new_labels, reviewer=reviewer())
    n = len(ids)
    st.toast(md(f"Saved: {what} for {n} sample{'s' if n != 1 else ''}"))


def undo_decision(run: ExplorerRun) -> list[str]:
    """Undo this reviewer's newest decision (one sample or one bulk batch); returns the sample ids it touched."""
    rows = undo_last(run.path, reviewer())
    if not len(rows):
        st.toast("Nothing of yours to undo.")
        return []
    n = len(rows)
    st.toast(f"Undone: your last decision on {n} sample{'s' if n != 1 else ''}")
    return rows["sample_id"].astype(str).tolist()
