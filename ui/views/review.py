"""Review & export: decisions so far, bulk decisions for the filtered set, and the export button."""
from __future__ import annotations

import numpy as np
import streamlit as st

from curator.hygiene import registry
from curator.data.problems import DataError
from curator.explore.review import REVIEW_STATUSES, export_manifest
from curator.review import load_decision_log
from ui.common import filtered_positions, get_run, get_status, md, save_decision

run = get_run()
t = run.table
st.title("Review & export")
status, new_label, n_decisions = get_status(run)

counts = np.bincount(status, minlength=len(REVIEW_STATUSES))
cols = st.columns(4)
for col, name, c in zip(cols, REVIEW_STATUSES, counts):
    col.metric({"unreviewed": "Not reviewed", "keep": "Kept", "relabel": "Relabelled", "drop": "Dropped"}[name], f"{int(c):,}")
st.caption("Decisions are saved immediately in decisions.parquet, a log of every decision and who made it (locked "
           "and atomic, safe with several tabs); the newest per sample overrides the audit's automatic choice in "
           "every export.")

st.subheader("Decide for the whole filtered set")
positions = filtered_positions(run)
st.markdown(f"The sidebar filters select **{len(positions):,}** samples.")
action = st.radio("Action", ["keep", "relabel to suggested label", "relabel to a class", "drop", "clear"],
                  horizontal=True, key="bulk_action")
target = None
if action == "relabel to a class":
    target = st.selectbox("Class", list(range(run.n_classes)), format_func=lambda c: f"{c}: {run.class_name(c)}",
                          key="bulk_class")
confirm = st.checkbox(f"Apply “{action}” to all {len(positions):,} filtered samples",
                      key=f"bulk_confirm_{st.session_state.get('bulk_round', 0)}")
if st.button("Apply to filtered set", disabled=not confirm or len(positions) == 0, type="primary", key="bulk_apply"):
    ids = t["sample_id"].to_numpy()[positions]
    if action == "relabel to suggested label":
        if "suggested_label" not in t.columns:
            st.error("This run has no suggested labels (audit.parquet is missing).")
        else:
            sug = t["suggested_label"].to_numpy()[positions]
            for c in np.unique(sug):
                if 0 <= c < run.n_classes:
                    save_decision(run, ids[sug == c].tolist(), "relabel", int(c))
    elif action == "relabel to a class":
        save_decision(run, ids.tolist(), "relabel", int(target))
    else:
        save_decision(run, ids.tolist(), action)
    st.session_state["bulk_round"] = st.session_state.get("bulk_round", 0) + 1  # untick the confirmation
    st.rerun()

st.subheader("Decisions")
log = load_decision_log(run.path)
if len(log):
    shown = log.sort_values("seq", ascending=False).head(500).copy()
    shown["new label"] = [run.class_name(c) if c >= 0 else "" for c in shown["new_label"]]
    shown["undo of"] = [f"batch {u}" if u >= 0 else "" for u in shown["undoes"]]
    st.dataframe(shown[["updated", "reviewer", "sample_id", "action", "new label", "batch", "undo of"]],
                 hide_index=True, width="stretch", height=240)
    st.caption(f"The review log, newest first ({len(log):,} entries for {n_decisions:,} samples decided now"
               + (", showing the latest 500" if len(log) > 500 else "") + "): every decision is kept with who made it; "
               "the newest per sample is in force. Undo (u on the sample page) takes back your newest batch.")
else:
    st.caption("No decisions yet. Review samples on the grid or the sample page.")

st.subheader("Export")
st.caption("clean: drop flagged samples · relabel: replace flagged labels by confident suggestions, drop the rest "
           "(and flagged images too dark, light, blurry or blank to relabel) · "
           "reweight: keep every sample, weight = the audit's P(label correct), at least 0.05. "
           "Your decisions override the automatic ones.")
c1, c2 = st.columns([1, 2])
policy = c1.selectbox("Policy", ["clean", "relabel", "reweight"], key="export_policy")
name = c2.text_input("File name (written under RUN/exports/)", value=f"{policy}.parquet", key="export_name")
drop = []
if "issue_kinds" in t.columns:
    drop = st.multiselect("Also drop", list(registry.droppable()), key="export_drop",
                          help=" · ".join(f"{k}: {registry.words(k)}" for k in registry.droppable())
                          + " (a duplicate group keeps one image; quality drops only unusable images: dark, light, "
                            "blurry, blank). Your decisions still override.")
if st.button("Export", key="export_button"):
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-").lstrip(".") or f"{policy}.parquet"
    out = run.path / "exports" / safe
    try:
        summary = export_manifest(run.path, policy, out, drop=tuple(drop))
    except (DataError, ValueError) as exc:
        st.error(md(f"Export failed: {exc}"))
    else:
        st.success(md(f"Exported with policy {policy} to {summary.get('out', out)}"))
        st.json({k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))})
