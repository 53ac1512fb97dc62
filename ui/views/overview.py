"""Overview: size, classes, imbalance, class histogram (log scale) with shot groups, estimated
noise per class, flagged count, issues by kind (label, duplicate, leak, quality, outlier) with the
leaked pairs, signal distributions, tail classes at risk."""
from __future__ import annotations

import altair as alt
import streamlit as st

from curator.columns import describe
from curator.explore.filters import sortable_columns
from curator.explore.hygiene import has_hygiene, kinds_overview, leak_pairs_for_display
from curator.explore.overview import class_summary, overview_stats, signal_histogram, tails_at_risk
from ui.common import get_run, get_status, get_thumbnails, md, open_sample, spot_check_summary, thumbnail

run = get_run()
st.title("Overview")
stats = overview_stats(run)
_, _, n_decisions = get_status(run)

if run.evidence.get("summary") and run.evidence.get("grade") != "weak":  # a weak grade is one of the warnings
    st.info(md(run.evidence["summary"]))
for w in run.warnings:
    st.warning(md(w), icon="⚠️")
if run.knn() is None:
    st.caption("This run has no embeddings (--pred-probs alone): no embedding map and no nearest neighbours.")

cols = st.columns([1, 1, 1, 1.8, 1])  # the flagged count carries its share: give it room not to be cut off
cols[0].metric("Training samples", f"{stats['n_samples']:,}")
cols[1].metric("Classes", stats["n_classes"])
cols[2].metric("Imbalance ratio", f"{stats['imbalance_ratio']:.1f}", help="Largest class size / smallest class size (given labels).")
if stats["n_flagged"] is not None:
    cols[3].metric("Flagged as label issues", f"{stats['n_flagged']:,} ({stats['flagged_share']:.1%})",
                   help="Samples whose label_issue_score passes the audit's threshold (is_label_issue).")
else:
    cols[3].metric("Flagged as label issues", "—", help="The audit has not run yet: audit.parquet is missing.")
cols[4].metric("Review decisions", f"{n_decisions:,}")
if "noise_rate" in stats:
    st.caption(f"True labels are known for this run: {stats['noise_rate']:.1%} of given labels are wrong.")
if run.metrics:
    m = {k: v for k, v in run.metrics.items() if isinstance(v, (int, float)) and k in ("auroc", "precision", "recall", "f1")}
    if m:
        st.caption("Detection against the known truth: " + " · ".join(f"{k} {v:.3f}" for k, v in m.items()))

spot = spot_check_summary(run)
if spot is not None:
    o = spot["overall"]
    sc = st.columns([1.4, 3])
    sc[0].metric("Flag precision (spot check)", f"{o['precision']:.1%}",
                 help="Share of flagged samples whose given label is wrong, measured by a person on a random "
                      "sample of the flags (page Estimate precision).")
    sc[1].caption(f"95 % interval {o['low']:.1%} – {o['high']:.1%} from {o['n_answered']} answers "
                  f"({spot.get('mode', 'full')} spot check"
                  + (f", {spot['n_drawn'] - spot['n_answered']} still to answer" if spot["n_answered"] < spot["n_drawn"]
                     else "") + "). Per score band on the Estimate precision page.")

if has_hygiene(run):
    st.subheader("Issues by kind")
    hy = kinds_overview(run)
    kinds = hy["kinds"]
    kcols = st.columns(len(kinds))
    for col, row in zip(kcols, kinds.itertuples()):
        col.metric(row.kind.capitalize(), f"{row.samples:,}", help=f"{row.meaning}; {row.share:.1%} of the training samples"
                   + (f"; {int(row.also_label)} of them are label issues too" if row.kind != "label" else ""))
    split = hy["label_split"]
    if "on_quality_issue" in split:
        st.caption(f"Of {split['label_issues']:,} label issues, {split['label_only']:,} are on images with no other issue "
                   f"and {split['on_quality_issue']:,} on images with an image-quality issue (dark, blurry, blank, …): "
                   "those call for another decision (drop, not relabel). Filter by kind in the sidebar.")
    with st.expander("Image quality, duplicates, leakage, outliers: what each check found and its threshold"):
        for sec in hy["sections"]:
            st.markdown(f"**{md(sec['title'])}**: {md(sec['text'])}")
            if sec["details"]:
                st.dataframe(sec["details"], hide_index=True, width="stretch")
    pairs = leak_pairs_for_display(run, limit=12)
    if len(pairs):
        n_pairs = len(run.leakage())
        st.markdown(f"**Training images with a copy in the test / validation split** ({n_pairs:,} pair{'s' if n_pairs != 1 else ''}, "
                    "most similar first; all in RUN/leakage.parquet)")
        thumbs = get_thumbnails(str(run.path))
        pcols = st.columns(6)
        for i, r in enumerate(pairs.itertuples()):
            with pcols[i % 6].container(border=True):
                a, b = st.columns(2)
                if r.pos >= 0:
                    a.image(thumbnail(run, int(r.pos), 64), width=64)
                if r.other_ref >= 0 and not isinstance(thumbs, str):
                    b.image(thumbs.get(int(r.other_ref), 64), width=64)
                st.caption(f"{r.match} · {r.similarity:.3f} · {md(r.other_split)}")
                if r.pos >= 0 and st.button("Open", key=f"leak_{i}"):
                    open_sample(str(r.sample_id))

summary = class_summary(run)
left, right = st.columns([3, 2])
with left:
    st.subheader("Class sizes")
    st.caption("Given-label counts on a log scale, coloured by the shot group of that count (many >= 100, medium "
               "20-100, few <= 20). The grid's shot groups use the audit's estimated true class sizes instead "
               "(hover a bar for both).")
    hist = alt.Chart(summary).mark_bar().encode(
        x=alt.X("name:N", sort=None, title="class"),
        y=alt.Y("count:Q", scale=alt.Scale(type="log", domainMin=1), title="samples (log)"), y2=alt.datum(1),
        color=alt.Color("shot_group:N", scale=alt.Scale(domain=["many", "medium", "few"]), title="shot group"),
        tooltip=[c for c in summary.columns],
    )
    st.altair_chart(hist, width="stretch")
with right:
    st.subheader("Estimated noise per class")
    if "estimated_noise" in summary.columns:
        st.caption("Share of each class's samples the audit flags as mislabelled"
                   + (" (true share in grey)." if "true_noise" in summary.columns else "."))
        base = alt.Chart(summary).encode(y=alt.Y("name:N", sort=None, title=None))
        chart = base.mark_bar().encode(x=alt.X("estimated_noise:Q", axis=alt.Axis(format="%"), title="flagged share"),
                                       tooltip=["name", "count", "n_flagged", "estimated_noise"])
        if "true_noise" in summary.columns:
            chart = chart + base.mark_tick(color="grey", thickness=3).encode(x="true_noise:Q")
        st.altair_chart(chart, width="stretch")
    else:
        st.info("No audit yet: run `curator audit` to estimate noise per class.")

st.subheader("Tail classes at risk")
risk = tails_at_risk(summary)
if len(risk):
    st.warning(f"{len(risk)} tail class(es) fall below 20 estimated clean samples: "
               + ", ".join(f"**{md(r['name'])}** ({int(r['count'])} labelled, ~{r.get('estimated_true_count', r['count']):.0f} clean)"
                           for _, r in risk.iterrows()))
else:
    st.success("No tail class falls below 20 estimated clean samples.")
with st.expander("Per-class findings"):
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={"estimated_noise": st.column_config.ProgressColumn("estimated noise", min_value=0, max_value=1, format="percent")})

st.subheader("Signal distributions")
numeric = [c for c in sortable_columns(run.table) if c not in ("label", "true_label", "rank", "image_ref")]
if numeric:
    default = numeric.index("label_issue_score") if "label_issue_score" in numeric else 0
    column = st.selectbox("Signal", numeric, index=default, key="ov_signal")
    e = describe(column)
    st.caption(f"{e.explanation} ({e.direction_words}; source: {e.source}). "
               + ("Split by the known truth." if run.has_truth else "Split by the audit's flag."))
    h = signal_histogram(run, column)
    chart = alt.Chart(h).mark_bar(opacity=0.6).encode(
        x=alt.X("bin_start:Q", bin="binned", title=column), x2="bin_end:Q",
        y=alt.Y("count:Q", stack=None, title="samples"), color=alt.Color("group:N", title=None))
    st.altair_chart(chart, width="stretch")
else:
    st.info("No signals yet: run `curator signals` or `curator audit`.")
