"""One sample: the image larger, every signal with its explanation, GDW class weights, per-epoch
history, nearest neighbours, and the review decision."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from curator.data.problems import DataError
from curator.columns import describe
from curator.explore.hygiene import duplicate_candidate, duplicate_members, kinds_text, leak_partners
from ui.common import (decision_text, filtered_positions, get_run, get_thumbnails, image_change, last_decision_text,
                       agreement_mark, gdw_summary, md, open_sample, resume_sample, save_decision, show_similar, thumbnail,
                       undo_decision)

run = get_run()
t = run.table
st.title("Sample")

positions = filtered_positions(run)
if "sample_id" not in st.session_state:
    st.session_state["sample_id"] = resume_sample(run, positions)
if st.session_state.get("_sample_shown") != st.session_state["sample_id"] or "sample_input" not in st.session_state:
    st.session_state["sample_input"] = st.session_state["sample_id"]
typed = st.text_input("Sample id", key="sample_input",
                      help="Type an id, or open one from the grid, the map or a neighbour.")
if typed != st.session_state["sample_id"]:
    st.session_state["sample_id"] = typed
st.session_state["_sample_shown"] = st.session_state["sample_id"]
try:
    pos = run.position(st.session_state["sample_id"])
except DataError as exc:
    st.error(md(str(exc)))
    st.stop()
sid = str(t["sample_id"].iat[pos])

# previous / next within the filtered, sorted list (keyboard: the arrow keys)
where = np.flatnonzero(positions == pos)
nav = st.columns([1, 1, 4])
if len(where):
    i = int(where[0])
    if nav[0].button("Previous", key="s_prev", icon=":material/arrow_back:", shortcut="Left", disabled=i == 0):
        open_sample(str(t["sample_id"].iat[int(positions[i - 1])]))
    if nav[1].button("Next", key="s_next", icon=":material/arrow_forward:", shortcut="Right",
                     disabled=i + 1 >= len(positions)):
        open_sample(str(t["sample_id"].iat[int(positions[i + 1])]))
    nav[2].caption(f"{i + 1} of {len(positions):,} in the filtered list")
else:
    nav[2].caption("This sample is outside the current filters.")

given = int(t["label"].iat[pos])
left, mid, right = st.columns([1, 1, 2])
with left:
    st.image(thumbnail(run, pos, 224), width=224)
    changed = image_change(run, pos)
    if changed:
        st.warning(md(f"The image of this sample changed since the run read it ({changed}); it is not shown."))
    st.caption(f"source: {md(t['source'].iat[pos])}")
with mid:
    st.markdown(f"**Given label:** {md(run.class_name(given))}")
    if "suggested_label" in t.columns:
        conf = t["suggested_label_confidence"].iat[pos] if "suggested_label_confidence" in t.columns else float("nan")
        st.markdown(f"**Suggested label:** {md(run.class_name(int(t['suggested_label'].iat[pos])))} (confidence {conf:.2f})")
    if run.has_audit:
        flagged = bool(t["is_label_issue"].iat[pos])
        st.metric("label_issue_score", f"{t['label_issue_score'].iat[pos]:.3f}",
                  help="How likely the given label is wrong (1 = almost surely wrong).")
        st.markdown(":red[**flagged as a label issue**]" if flagged else ":green[not flagged]")
    if int(t["true_label"].iat[pos]) >= 0:
        st.markdown(f"**True label (known):** {md(run.class_name(int(t['true_label'].iat[pos])))}")
    st.markdown(f"**Shot group:** {t['shot_group'].iat[pos]}")
    if "issue_kinds" in t.columns:
        kinds = kinds_text(run, pos)
        st.markdown(f"**Issues:** {md(kinds) if kinds else 'none'}")
        if "duplicate_of" in t.columns and str(t["duplicate_of"].iat[pos] or ""):
            st.caption(f"A de-duplicated export keeps {md(t['duplicate_of'].iat[pos])} instead of this copy.")
        if duplicate_candidate(run, pos):
            st.caption(f"Near-duplicate candidate of {md(duplicate_candidate(run, pos))}: close in the embeddings, but "
                       "no pixels confirm it (images not decoded), so it is not flagged or dropped.")
with right:
    st.subheader("Review")
    st.markdown(f"Current decision: **{md(decision_text(run, pos))}**")
    with st.container(horizontal=True, gap="small"):  # labelled buttons keep their full text (they wrap, not cut)
        if st.button("Keep label", key="s_keep", shortcut="K", help="The given label is right (key: k)"):
            save_decision(run, [sid], "keep")
            st.rerun()
        if st.button("Drop sample", key="s_drop", shortcut="D", help="Remove this sample from the dataset (key: d)"):
            save_decision(run, [sid], "drop")
            st.rerun()
        if st.button("Undo", key="s_undo", shortcut="U",
                     help="Take back your newest decision, on this or any sample (key: u)"):
            undone = undo_decision(run)
            if len(undone) == 1 and undone[0] != sid:
                open_sample(undone[0])
            st.rerun()
        if st.button("Clear", key="s_clear", help="Forget the decision on this sample (back to the audit's choice)"):
            save_decision(run, [sid], "clear")
            st.rerun()
    # The class chooser belongs to this sample (its key holds the sample id) and starts empty: a class chosen
    # on another sample can never carry over, and a relabel needs a class chosen here.
    sug = int(t["suggested_label"].iat[pos]) if "suggested_label" in t.columns else -1
    if 0 <= sug < run.n_classes and sug != given:
        if st.button(f"Relabel to the suggested label: {run.class_name(sug)}", key="s_accept", shortcut="S",
                     help="Accept the audit's suggestion for this sample (key: s)"):
            save_decision(run, [sid], "relabel", sug)
            st.rerun()
    new = st.selectbox("Relabel as", list(range(run.n_classes)), index=None, key=f"s_new_label_{sid}",
                       placeholder="choose a class for this sample",
                       format_func=lambda c: f"{c}: {run.class_name(c)}" + (" (suggested)" if c == sug else ""),
                       help="Streamlit reserves the r key, so the chooser has no shortcut: Tab to it or click it.")
    if st.button("Relabel to the chosen class", key="s_relabel", type="primary", disabled=new is None):
        save_decision(run, [sid], "relabel", int(new))
        st.rerun()
    st.caption("Keys: k keep · d drop · s accept the suggestion · u undo · ← → previous / next.")
    last = last_decision_text(run)
    if last:
        st.caption(md(last))

members = duplicate_members(run, pos)
partners = leak_partners(run, pos)
if len(members) or len(partners):
    st.subheader("Copies of this image")
    st.caption("Identical or near-identical images: other training samples in its duplicate group (marked 'same "
               "label' or 'OTHER label' against this sample's given label), and copies in the test / validation split "
               "(leakage).")
    thumbs = get_thumbnails(str(run.path))
    cols = st.columns(min(8, max(1, len(members) + len(partners))))
    for i, j in enumerate(members[:8]):
        j = int(j)
        lab = int(t["label"].iat[j])
        with cols[i % len(cols)]:
            st.image(thumbnail(run, j), width=80)
            st.caption(f"{agreement_mark(lab, given)} {md(run.class_name(lab))} · train")
            if st.button("Open", key=f"dup_{j}"):
                open_sample(str(t["sample_id"].iat[j]))
    for i, r in enumerate(partners.head(8).itertuples(), start=len(members[:8])):
        with cols[i % len(cols)]:
            if r.image_ref >= 0 and not isinstance(thumbs, str):
                st.image(thumbs.get(int(r.image_ref), 80), width=80)
            st.caption(f"{md(r.other_split)} · {r.match} · {r.similarity:.3f}")

st.subheader("Signals")
skip = {"sample_id", "label", "true_label", "image_ref", "source"}
rows = []
for col in t.columns:
    if col in skip:
        continue
    v = t[col].iat[pos]
    e = describe(col)
    if e.direction == "categorical" and isinstance(v, (int, np.integer)) and col.endswith(("label", "_pred")):
        shown = f"{int(v)}: {run.class_name(int(v))}" if v >= 0 else "—"
    elif isinstance(v, (float, np.floating)):
        shown = f"{v:.4g}"
    else:
        shown = str(v)
    rows.append({"signal": col, "value": shown, "meaning": e.explanation, "direction": e.direction_words, "source": e.source})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
             column_config={"meaning": st.column_config.TextColumn(width="large")})

g, _ = st.columns([3, 2])  # the class-weight bars; the history below gets the full width
with g:
    st.subheader("GDW class weights: how each changed")
    change = run.head_array("gdw", "omega_change")
    if change is None or change.shape[0] != run.n_samples:
        st.info("No GDW weight changes in this run (heads/gdw.npz with `omega_change`).")
    else:
        true = int(t["true_label"].iat[pos])
        fell_most = int(np.argmin(np.where(np.arange(change.shape[1]) == given, np.inf, change[pos])))

        def role(c: int) -> str:
            if c == given:
                return "given label"
            if c == true:
                return "true label (known)"
            return "fell most (GDW's suggestion)" if c == fell_most else "other"

        w = pd.DataFrame({"class": [run.class_name(c) for c in range(change.shape[1])],
                          "change of ω": change[pos].astype(float), "role": [role(c) for c in range(change.shape[1])]})
        st.caption("The change of GDW's class-level weight ω_j in its updates (ω′ − ω, mean over the last epochs; "
                   "RUN/heads/gdw.npz `omega_change`). Paper 003 fig. 4–5: on a mislabelled sample the weight of "
                   "its true class falls (the 'not <true class>' gradient is harmful) while most other classes' "
                   "weights rise; GDW's suggestion is the non-label class whose weight fell most. The weight "
                   "itself is clamped at 0 after the update, so its level says little; its change carries the "
                   "signal.")
        summary = gdw_summary(run)
        if summary:
            st.caption(f"Measured on this run's {summary['n_mislabelled']:,} known mislabelled samples: the true "
                       f"class's weight fell on {summary['true_fell']:.0%} (paper: over 80 %) and fell most on "
                       f"{summary['true_fell_most']:.0%}; the other classes' weights rose on "
                       f"{summary['others_rose_noisy']:.0%} of them"
                       + (f" ({summary['others_rose_clean']:.0%} on clean samples; paper: about 65 %)."
                          if summary["others_rose_clean"] is not None else "."))
        roles = ["given label", "true label (known)", "fell most (GDW's suggestion)", "other"]
        st.altair_chart(alt.Chart(w).mark_bar().encode(
            x=alt.X("class:N", sort=None), y=alt.Y("change of ω:Q"),
            color=alt.Color("role:N", scale=alt.Scale(domain=roles, range=["#d62728", "#2e7d32", "#e65100", "#1f77b4"])),
            tooltip=["class", "change of ω", "role"]), width="stretch")
st.subheader("Training history")
hist = run.sample_history(pos)
if len(hist) == 0:
    st.info("No per-epoch history in this run (history/*.npz).")
else:
    st.caption("Per-epoch records of this sample, one panel per quantity, one colour per head: loss, margin, "
               "SuperLoss σ*, GDW ω_t, FSR meta-margin, …")
    st.altair_chart(alt.Chart(hist).mark_line(point=True).encode(
        x="epoch:Q", y=alt.Y("value:Q", title=None),
        color=alt.Color("head:N", legend=alt.Legend(orient="bottom", title="head")),
        tooltip=["head", "record", "epoch", "value"],
        facet=alt.Facet("record:N", columns=4, title=None)).resolve_scale(y="independent").properties(height=110, width=170))

st.subheader("Nearest neighbours")
graph = run.knn()
if graph is None:
    st.info("No nearest neighbours: this run has no kNN graph (knn.npz), as a run audited with --pred-probs and no "
            "embeddings has none.")
else:
    idx, sim = graph.indices, graph.similarities
    st.caption("The most similar training samples in embedding space, with their given labels ('same label' or "
               "'OTHER label' against this sample's) and cosine similarity. *Find similar* shows them all as a grid "
               "you can review in bulk.")
    if st.button("Find similar", key="s_similar", icon=":material/grid_view:",
                 help="Show this sample's nearest neighbours on the grid page, where several can be selected"):
        show_similar(sid)
    cols = st.columns(min(10, idx.shape[1]))
    for col, j, s in zip(cols, idx[pos][: len(cols)], sim[pos][: len(cols)]):
        j = int(j)
        lab = int(t["label"].iat[j])
        with col:
            st.image(thumbnail(run, j), width=80)
            st.caption(f"{agreement_mark(lab, given)} {md(run.class_name(lab))} · {s:.2f}")
            if st.button("Open", key=f"nb_{j}"):
                open_sample(str(t["sample_id"].iat[j]))
