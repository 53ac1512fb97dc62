"""Flagged samples: a paged grid of thumbnails with given label, suggested label, the true label when
known and label_issue_score; filters in the sidebar; labelled review buttons on every tile, a tick box on
every tile for one bulk decision on the selected samples, a choosable thumbnail size, and "find similar"
(a sample and its kNN neighbours instead of the filtered list)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from curator.explore.filters import page_of
from curator.explore.hygiene import kinds_text
from ui.common import decision_text, filtered_positions, get_run, md, open_sample, save_decision, show_similar, thumbnail

SIZES = {"small (96 px)": 96, "medium (144 px)": 144, "large (200 px)": 200}
COLUMNS_FOR = {96: 6, 144: 4, 200: 3}

run = get_run()
t = run.table
st.title("Flagged samples")
if not run.has_audit:
    st.info("This run has no audit yet (audit.parquet is missing): showing every sample without scores.")

similar_to = st.session_state.get("similar_to")
graph = run.knn() if similar_to else None
if similar_to and graph is not None and similar_to in run.id_index:
    centre = run.position(similar_to)
    positions = np.concatenate([[centre], graph.indices[centre]]).astype(np.int64)
    st.markdown(f"**Similar to {md(similar_to)}**: the sample and its {len(positions) - 1} nearest neighbours in "
                "embedding space (the sidebar filters do not apply here).")
    if st.button("Back to the filtered list", key="similar_back", icon=":material/arrow_back:"):
        st.session_state.pop("similar_to", None)
        st.rerun()
else:
    st.session_state.pop("similar_to", None)
    positions = filtered_positions(run)
n = len(positions)

top = st.columns([2, 1, 1, 1])
top[0].markdown(f"**{n:,}** samples match the filters (of {run.n_samples:,}).")
size = SIZES[top[1].selectbox("Thumbnails", list(SIZES), index=1, key="grid_thumb")]
page_size = top[2].selectbox("Per page", [12, 24, 48], index=1, key="grid_page_size")
n_pages = max(1, -(-n // page_size))
page = top[3].number_input("Page", min_value=1, max_value=n_pages, value=1, step=1, key="grid_page") - 1
st.caption(f"Page {page + 1} of {n_pages}. Given → suggested label; the score is label_issue_score "
           "(1 = almost surely mislabelled); 'issues' lists every kind the sample has (choose kinds in the sidebar). "
           "Tick samples to decide for all of them at once; open a sample for every signal and its neighbours.")

shown = page_of(positions, page, page_size)
has_sug = "suggested_label" in t.columns
has_truth = "true_label" in t.columns and (t["true_label"].to_numpy() >= 0).any()
shown_ids = [str(t["sample_id"].iat[int(p)]) for p in shown]

# one bulk decision for the ticked samples
selected = [s for s in shown_ids if st.session_state.get(f"sel_{s}")]
bulk = st.container(border=True, horizontal=True, vertical_alignment="center")
with bulk:
    st.markdown(f"**{len(selected)}** of {len(shown_ids)} on this page selected")
    if st.button("Select all on page", key="sel_all"):
        for s in shown_ids:
            st.session_state[f"sel_{s}"] = True
        st.rerun()
    decided = False
    if st.button("Keep selected", key="bulk_keep", disabled=not selected):
        save_decision(run, selected, "keep")
        decided = True
    if st.button("Drop selected", key="bulk_drop", disabled=not selected):
        save_decision(run, selected, "drop")
        decided = True
    if has_sug and st.button("Relabel selected to their suggestions", key="bulk_fix", disabled=not selected):
        sug = t["suggested_label"].to_numpy()[run.id_index.get_indexer(selected)]
        for c in np.unique(sug):
            if 0 <= c < run.n_classes:
                save_decision(run, [s for s, g in zip(selected, sug) if g == c], "relabel", int(c))
        decided = True
    if decided:
        for s in selected:
            st.session_state.pop(f"sel_{s}", None)  # untick what was decided
        st.rerun()

n_cols = COLUMNS_FOR[size]
for start in range(0, len(shown), n_cols):
    cols = st.columns(n_cols)
    for col, pos in zip(cols, shown[start:start + n_cols]):
        pos = int(pos)
        sid = str(t["sample_id"].iat[pos])
        given = int(t["label"].iat[pos])
        with col.container(border=True):
            st.checkbox("select", key=f"sel_{sid}")
            st.image(thumbnail(run, pos, size), width=size)
            line = f"**{md(run.class_name(given))}**"
            if has_sug:
                sug = int(t["suggested_label"].iat[pos])
                line += f" → **{md(run.class_name(sug))}**" if sug != given else " (kept)"
            st.markdown(line)
            if has_truth and int(t["true_label"].iat[pos]) >= 0:
                true = int(t["true_label"].iat[pos])
                st.caption(f"true label: {md(run.class_name(true))}" + (" (given is right)" if true == given else ""))
            if run.has_audit:
                st.caption(f"score {t['label_issue_score'].iat[pos]:.2f} · {t['shot_group'].iat[pos]} · "
                           f"{md(decision_text(run, pos))}")
                kinds = kinds_text(run, pos)
                if kinds:
                    st.caption(f"issues: {md(kinds)}")
            else:
                st.caption(md(decision_text(run, pos)))
            # a flow row: labelled buttons keep their full text and wrap to a second line when the tile is narrow
            with st.container(horizontal=True, gap="small"):
                if st.button("Keep", key=f"keep_{sid}", help="Keep: the given label is right"):
                    save_decision(run, [sid], "keep")
                    st.rerun()
                if has_sug and st.button("Fix", key=f"fix_{sid}", help="Fix: relabel to the suggested label",
                                         disabled=int(t["suggested_label"].iat[pos]) == given):
                    save_decision(run, [sid], "relabel", int(t["suggested_label"].iat[pos]))
                    st.rerun()
                if st.button("Drop", key=f"drop_{sid}", help="Drop: remove this sample from the dataset"):
                    save_decision(run, [sid], "drop")
                    st.rerun()
                if st.button("Details", key=f"open_{sid}"):
                    open_sample(sid)
                if graph is None and run.knn() is not None and st.button(
                        "Similar", key=f"similar_{sid}", help="This sample's nearest neighbours as a grid"):
                    show_similar(sid)
if n == 0:
    st.info("No sample matches the filters. Widen them in the sidebar.")
