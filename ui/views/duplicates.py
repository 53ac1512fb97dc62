"""Duplicate groups: a paged gallery of the groups of identical or near-identical training images, groups whose
copies carry different labels first, then the largest. Each group is one row of thumbnails (sample id, given label,
true label when known, the member a de-duplicated export keeps marked) with its decision state and one decision
for the whole group, saved as one batch (one Undo takes the group back). Logic: curator.explore.duplicates."""
from __future__ import annotations

import numpy as np
import streamlit as st

from curator.explore.duplicates import (SHOW, duplicate_groups, group_plan, group_state, n_candidates,
                                        no_groups_reason, select_groups)
from curator.explore.filters import page_of
from ui.common import (decision_text, get_run, get_status, last_decision_text, md, open_sample, save_decisions,
                       run_stamp, thumbnail, undo_decision)

PER_PAGE = 10
SHOWN = 8      # thumbnails in a group's row; a decision applies to every member
SIZE = 112

WHAT = {"keep_one": "keep one, drop the others", "keep_all": "keep all", "drop_all": "drop all"}


@st.cache_resource(show_spinner=False, max_entries=4)
def _groups(path: str, stamp: tuple, _table):
    return duplicate_groups(_table)


run = get_run()
t = run.table
st.title("Duplicate groups")
groups = _groups(str(run.path), run_stamp(run.path), t)
candidates = n_candidates(t)
candidates_text = (f"{candidates:,} samples have an unconfirmed near-duplicate candidate (close in the embeddings, no "
                   "pixels to confirm it): never flagged, never dropped, and not in this gallery; the sample page "
                   "names each one's candidate." if candidates else "")
if groups is None or not len(groups):
    st.info(md(no_groups_reason(t, run.hygiene_summary())))
    if candidates_text:
        st.caption(candidates_text)
    st.stop()

status, new_label, _ = get_status(run)
labels = t["label"].to_numpy()
truth = t["true_label"].to_numpy() if run.has_truth else None
n_conflict = int((groups.n_labels > 1).sum())
st.markdown(f"**{len(groups):,}** group{'s' if len(groups) != 1 else ''} of identical or near-identical training images "
            f"({int(groups.size.sum()):,} samples), **{n_conflict:,}** with copies that carry different labels: those "
            "first, then the largest.")
st.caption("The member marked **export keeps** is the one `curator export --drop duplicate` keeps (the audit's "
           "choice: not a label issue, not an unusable image, lowest score); your decisions override it. Each group "
           "gets one decision, saved as one batch, so Undo takes the whole group back. " + candidates_text)

top = st.columns([3, 1, 1], vertical_alignment="bottom")
show = top[0].radio("Show", SHOW, horizontal=True, key="dg_show")
listed = select_groups(groups, show, status)
n_pages = max(1, -(-len(listed) // PER_PAGE))
if st.session_state.get("dg_page", 1) > n_pages:   # fewer groups listed than before (a filter, decisions)
    st.session_state["dg_page"] = n_pages
page = int(top[1].number_input("Page", min_value=1, max_value=n_pages, value=1, step=1, key="dg_page")) - 1
if top[2].button("Undo", key="dg_undo", icon=":material/undo:", help="Take back your newest decision (a whole group)"):
    undo_decision(run)
    st.rerun()
st.caption(f"Page {page + 1} of {n_pages}: {len(listed):,} groups listed, {PER_PAGE} per page.")
last = last_decision_text(run)
if last:
    st.caption(md(last))
if not len(listed):
    st.info("No group matches this choice.")

for i in page_of(listed, page, PER_PAGE):
    i = int(i)
    rows = groups.members(i)
    g = int(groups.group[i])
    keeper = int(groups.keeper[i])
    with st.container(border=True):
        own = [run.class_name(c) for c in np.unique(labels[rows])]
        st.markdown(f"**Group {g}** · {len(rows)} images · "
                    + (f"**different labels**: {md(', '.join(own))}" if len(own) > 1 else f"label {md(own[0])}")
                    + f" · decision: **{md(group_state(groups, i, labels, status, new_label, run.class_name))}**")
        cols = st.columns(SHOWN)
        for col, r in zip(cols, rows[:SHOWN]):
            r = int(r)
            sid = str(t["sample_id"].iat[r])
            with col:
                st.image(thumbnail(run, r, SIZE), width=SIZE)
                st.caption(md(sid))
                line = f"given: {md(run.class_name(labels[r]))}"
                if truth is not None and truth[r] >= 0:
                    line += f" · true: {md(run.class_name(truth[r]))}"
                st.caption(line)
                # every tile has this line, so the tiles' decisions and buttons stay level
                st.markdown(":green[**export keeps**]" if r == keeper else "a copy")
                st.caption(md(decision_text(run, r)))
                if st.button("Open", key=f"dg_open_{sid}"):
                    open_sample(sid)
        if len(rows) > SHOWN:
            st.caption(f"… and {len(rows) - SHOWN} more members; a decision applies to all {len(rows)}.")
        chosen = None
        with st.container(horizontal=True, vertical_alignment="bottom"):
            for action, label in (("keep_one", "Keep one, drop the others"), ("keep_all", "Keep all (not duplicates)"),
                                  ("drop_all", "Drop all")):
                if st.button(label, key=f"dg_{action}_{g}"):
                    chosen = (action, None)
            cls = st.selectbox("Relabel all to", list(range(run.n_classes)), index=None, key=f"dg_class_{g}",
                               format_func=lambda c, k=int(labels[keeper]): f"{c}: {run.class_name(c)}"
                               + (" (the kept copy's label)" if c == k else ""), placeholder="choose a class",
                               width=260)
            if st.button("Relabel all", key=f"dg_relabel_all_{g}", disabled=cls is None):
                chosen = ("relabel_all", int(cls))
        if chosen:
            action, cls = chosen
            member_rows, actions, new_labels = group_plan(groups, i, labels, action, cls)
            what = WHAT.get(action) or f"relabel all to {run.class_name(cls)}"
            save_decisions(run, t["sample_id"].to_numpy()[member_rows].astype(str).tolist(), actions, new_labels,
                           f"group {g}: {what}")
            st.rerun()
