"""Estimate precision: a random, score-band stratified sample of the flagged samples, one answer per sample
("the given label is wrong": drop or relabel; "right": keep), and the measured precision of the flags with
its interval, overall and per band, plus the score threshold for a requested precision
(curator.audit.spot_check; the answers are ordinary review decisions)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from curator.audit.spot_check import (QUICK_N, answers_from_decisions, draw_spot_check, read_spot_check, sample_size,
                                      summarise, threshold_for, write_spot_check)
from curator.review import load_decisions
from ui.common import get_run, md, save_decision, thumbnail, undo_decision

run = get_run()
t = run.table
st.title("Estimate precision")
st.caption("How many of the audit's flags are real? Answer for a random sample of the flagged samples whether the "
           "given label is right or wrong; curator estimates the share of flags that are real (their precision) with "
           "a 95 % interval. The sample is stratified by label_issue_score band; the score and the suggestion are "
           "hidden so they do not sway the answer. Every answer is also a review decision (keep, drop or relabel) "
           "that the export uses.")
if not run.has_audit:
    st.info("This run has no audit yet (audit.parquet is missing): there are no flags to check.")
    st.stop()

draw = read_spot_check(run.path)
FULL_N = sample_size(0.7)
with st.expander("Start a new spot check" if draw else "Start a spot check", expanded=draw is None):
    mode = st.radio("Size", [f"full: {FULL_N} samples (about ±10 % at 95 %)",
                             f"quick: {QUICK_N} samples (a first look, about ±17 %)"], key="sc_mode")
    if draw:
        st.caption("Drawing a new sample replaces the current spot check (its answers stay as review decisions).")
    if st.button("Draw the sample", key="sc_draw", type="primary"):
        flagged = np.flatnonzero(t["is_label_issue"].to_numpy(bool))
        n = FULL_N if mode.startswith("full") else QUICK_N
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        draw = draw_spot_check(t["sample_id"].to_numpy()[flagged], t["label_issue_score"].to_numpy()[flagged], n,
                               seed=seed)
        draw["mode"] = "full" if mode.startswith("full") else "quick"
        write_spot_check(run.path, draw, load_decisions(run.path))
        st.rerun()
if draw is None:
    st.stop()

decisions = load_decisions(run.path)
answers = answers_from_decisions(draw, decisions)
todo = answers[answers["answer"] == ""]
n_done = len(answers) - len(todo)
mode_name = draw.get("mode", "full")
st.progress(n_done / max(len(answers), 1),
            text=f"{n_done} of {len(answers)} answered ({mode_name} spot check"
                 + (", a first look: its interval is wide)" if mode_name == "quick" else ")"))

if len(todo):
    sid = str(todo["sample_id"].iat[0])
    pos = run.position(sid)
    given = int(t["label"].iat[pos])
    left, right = st.columns([1, 2])
    with left:
        st.image(thumbnail(run, pos, 224), width=224)
        st.caption(f"sample {md(sid)}")
    with right:
        st.markdown(f"**Given label:** {md(run.class_name(given))}")
        st.markdown("Is the given label right for this image?")
        row = st.container(horizontal=True, gap="small")  # labelled buttons keep their full text
        if row.button("Right: keep the label", key="sc_keep", shortcut="K", help="The given label is right (key: k)"):
            save_decision(run, [sid], "keep")
            write_spot_check(run.path, draw, load_decisions(run.path))
            st.rerun()
        if row.button("Wrong: drop the sample", key="sc_drop", shortcut="D",
                       help="The given label is wrong and the sample should go (key: d)"):
            save_decision(run, [sid], "drop")
            write_spot_check(run.path, draw, load_decisions(run.path))
            st.rerun()
        if row.button("Undo", key="sc_undo", shortcut="U", help="Take back your newest decision (key: u)"):
            undo_decision(run)
            write_spot_check(run.path, draw, load_decisions(run.path))
            st.rerun()
        new = st.selectbox("Wrong: relabel as", list(range(run.n_classes)), index=None, key=f"sc_class_{sid}",
                           placeholder="choose the right class for this sample",
                           format_func=lambda c: f"{c}: {run.class_name(c)}")
        if st.button("Wrong: relabel to the chosen class", key="sc_relabel", disabled=new is None):
            save_decision(run, [sid], "relabel", int(new))
            write_spot_check(run.path, draw, load_decisions(run.path))
            st.rerun()
        st.caption("Keys: k right (keep) · d wrong (drop) · u undo. Relabelling also answers 'wrong'.")
else:
    st.success("Every sample of this spot check is answered.")

est = summarise(draw, decisions)
st.subheader("Measured precision of the flags")
o = est["overall"]
if o is None:
    st.caption("No answers yet.")
    st.stop()
c = st.columns(3)
c[0].metric("Estimated precision", f"{o['precision']:.1%}",
            help="Share of flagged samples whose given label is wrong, weighted by the size of each score band.")
c[1].metric("95 % interval", f"{o['low']:.1%} – {o['high']:.1%}")
c[2].metric("Answers", f"{o['n_answered']} of {est['n_drawn']}")
if o["covers"] < 1:
    st.caption(f"Only bands with answers are counted: the estimate covers {o['covers']:.0%} of the flagged samples.")
bands = pd.DataFrame([{"score band": f"{b['score_from']:.3f} – {min(b['score_to'], 1.0):.3f}",
                       "flagged in band": b["n_flagged"], "answered": b["n_answered"], "label wrong": b["n_wrong"],
                       "precision": "" if b["precision"] is None else f"{b['precision']:.1%}",
                       "95 % interval": "" if b["low"] is None else f"{b['low']:.1%} – {b['high']:.1%}"}
                      for b in est["bands"]])
st.dataframe(bands, hide_index=True, width="stretch")
st.caption("Per band: Wilson interval. Overall: the band estimates weighted by band size, with a Wilson interval "
           "at the stratified design's effective sample size (docs/spot_check.md). Saved in spot_check.json; "
           "report.html shows it after `curator audit` is run again with the same arguments (only the report is "
           "re-written).")
target = st.slider("Precision you need", 0.50, 0.99, 0.90, 0.01, key="sc_target")
thr = threshold_for(est, target)
if thr is None:
    st.markdown(f"No score band reaches an estimated precision of {target:.0%}.")
else:
    st.markdown(f"Flags with **label_issue_score ≥ {thr['score_from']:.3f}** ({thr['n_flagged']:,} samples) have an "
                f"estimated precision of **{thr['precision']:.1%}** (95 % interval {thr['low']:.1%} – {thr['high']:.1%}).")
