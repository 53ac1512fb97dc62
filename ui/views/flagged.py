"""Flagged samples: a paged grid of thumbnails with given label, suggested label and
label_issue_score; filters in the sidebar; quick review buttons on every tile."""
from __future__ import annotations

import streamlit as st

from curator.explore.filters import page_of
from curator.explore.hygiene import kinds_text
from ui.common import decision_text, filtered_positions, get_run, md, open_sample, save_decision, thumbnail

run = get_run()
st.title("Flagged samples")
positions = filtered_positions(run)
n = len(positions)
t = run.table
if not run.has_audit:
    st.info("This run has no audit yet (audit.parquet is missing): showing every sample without scores.")

top = st.columns([2, 1, 1])
top[0].markdown(f"**{n:,}** samples match the filters (of {run.n_samples:,}).")
page_size = top[1].selectbox("Per page", [12, 24, 48], index=1, key="grid_page_size")
n_pages = max(1, -(-n // page_size))
page = top[2].number_input("Page", min_value=1, max_value=n_pages, value=1, step=1, key="grid_page") - 1
st.caption(f"Page {page + 1} of {n_pages}. Given → suggested label; the score is label_issue_score "
           "(1 = almost surely mislabelled); 'issues' lists every kind the sample has (choose kinds in the sidebar). "
           "Open a sample for every signal and its neighbours.")

shown = page_of(positions, page, page_size)
n_cols = 4  # six cards per row left the keep / fix / drop icon buttons too narrow to show on a 1400 px window
has_sug = "suggested_label" in t.columns
for start in range(0, len(shown), n_cols):
    cols = st.columns(n_cols)
    for col, pos in zip(cols, shown[start:start + n_cols]):
        pos = int(pos)
        sid = str(t["sample_id"].iat[pos])
        given = int(t["label"].iat[pos])
        with col.container(border=True):
            st.image(thumbnail(run, pos), width=96)
            line = f"**{md(run.class_name(given))}**"
            if has_sug:
                sug = int(t["suggested_label"].iat[pos])
                line += f" → **{md(run.class_name(sug))}**" if sug != given else " (kept)"
            st.markdown(line)
            if run.has_audit:
                st.caption(f"score {t['label_issue_score'].iat[pos]:.2f} · {t['shot_group'].iat[pos]} · "
                           f"{md(decision_text(run, pos))}")
                kinds = kinds_text(run, pos)
                if kinds:
                    st.caption(f"issues: {md(kinds)}")
            else:
                st.caption(md(decision_text(run, pos)))
            b = st.columns(3)
            if b[0].button(":material/check:", key=f"keep_{sid}", help="Keep: the given label is right"):
                save_decision(run, [sid], "keep")
                st.rerun()
            if has_sug and b[1].button(":material/edit:", key=f"fix_{sid}", help="Fix: relabel to the suggested label",
                                       disabled=int(t["suggested_label"].iat[pos]) == given):
                save_decision(run, [sid], "relabel", int(t["suggested_label"].iat[pos]))
                st.rerun()
            if b[2].button(":material/delete:", key=f"drop_{sid}", help="Drop: remove this sample from the dataset"):
                save_decision(run, [sid], "drop")
                st.rerun()
            if st.button("Details", key=f"open_{sid}", width="stretch"):
                open_sample(sid)
if n == 0:
    st.info("No sample matches the filters. Widen them in the sidebar.")
