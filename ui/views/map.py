"""Embedding map: the cached 2-D UMAP coloured by label, flag, review status or any signal;
drag a rectangle to list the samples inside it."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from curator.data.problems import DataError
from curator.explore.embedding_map import DEFAULT_MAX_POINTS, class_colours, compute_map, samples_in_region
from curator.explore.filters import filter_mask, sortable_columns
from curator.explore.review import REVIEW_STATUSES
from ui.common import get_run, get_status, map_job, md, open_sample, save_decision, thumbnail

MAX_DRAWN = 20_000  # points sent to the browser; the rest of the cached map is thinned out for drawing


@st.cache_resource(show_spinner="Projecting the embeddings (PCA)…", max_entries=2)
def _pca_map(path: str) -> pd.DataFrame | str:
    try:
        return compute_map(path, max_points=DEFAULT_MAX_POINTS, method="pca")
    except DataError as exc:
        return str(exc)


run = get_run()
t = run.table
st.title("Embedding map")
job = map_job(run)
points = job.result if job.done else None
if points is None:
    if job.done and job.error:
        st.info(md(job.error))
        st.stop()
    points = _pca_map(str(run.path))
    if isinstance(points, str):
        st.info(md(points))
        st.stop()
    st.info(f"Showing a PCA map while the {job.method.upper()} map is computed in the background (the first time "
            "also compiles UMAP's code). Press Refresh to switch to it when ready.", icon=":material/hourglass_top:")
    if st.button("Refresh", key="map_refresh"):
        st.rerun()
pos = run.id_index.get_indexer(points["sample_id"])
points = points[pos >= 0].assign(pos=pos[pos >= 0])
status, _, _ = get_status(run)
only_filtered = st.toggle("Only samples matching the filters", value=False, key="map_filtered")
if only_filtered and st.session_state.get("filter") is not None:
    keep = filter_mask(t, st.session_state["filter"], status)[points["pos"].to_numpy()]
    points = points[keep]
if len(points) > MAX_DRAWN:
    points = points.sample(MAX_DRAWN, random_state=0)

options = ["given label", "flag", "review status"] + [c for c in sortable_columns(t) if c not in ("label", "true_label", "rank")]
colour = st.selectbox("Colour by", options, key="map_colour")
p = points["pos"].to_numpy()
data = pd.DataFrame({"x": points["x"].to_numpy(), "y": points["y"].to_numpy(), "sample_id": points["sample_id"].to_numpy(),
                     "given label": [run.class_name(c) for c in t["label"].to_numpy()[p]]})
if "is_label_issue" in t.columns:
    data["flag"] = np.where(t["is_label_issue"].to_numpy(bool)[p], "flagged", "not flagged")
else:
    data["flag"] = "no audit"
data["review status"] = np.asarray(REVIEW_STATUSES)[status[p]]
if colour not in data.columns:
    data[colour] = t[colour].to_numpy()[p].astype(float)
kind = "Q" if colour not in ("given label", "flag", "review status") else "N"
st.caption(f"{len(data):,} points (2-D map of the embeddings, cached in umap.parquet; above {DEFAULT_MAX_POINTS:,} samples "
           "the map holds every flagged sample plus a random sample of the rest). Drag a rectangle to list its samples.")
region = alt.selection_interval(name="region", encodings=["x", "y"])
scale = alt.Undefined
if colour == "given label":  # every class visible on white (the default palette's grey and yellow were not)
    scale = alt.Scale(domain=[run.class_name(c) for c in range(run.n_classes)], range=class_colours(run.n_classes))
chart = alt.Chart(data).mark_circle(size=18, opacity=0.7).encode(
    # zero=False: UMAP coordinates sit far from 0; a zero-based domain squashed the map into a corner
    x=alt.X("x:Q", axis=None, scale=alt.Scale(zero=False)), y=alt.Y("y:Q", axis=None, scale=alt.Scale(zero=False)),
    color=alt.Color(f"{colour}:{kind}", title=colour, scale=scale),
    tooltip=["sample_id", "given label", "flag", "review status"]).add_params(region).properties(height=560)
event = st.altair_chart(chart, width="stretch", on_select="rerun", key="map_chart")

sel = (event or {}).get("selection", {}).get("region") if event else None
if sel and "x" in sel and "y" in sel:
    inside = samples_in_region(points, tuple(sel["x"]), tuple(sel["y"]))
    st.subheader(f"{len(inside):,} samples in the selected region")
    if "label_issue_score" in t.columns:
        inside = inside.assign(score=t["label_issue_score"].to_numpy()[inside["pos"].to_numpy()]).sort_values("score", ascending=False)
    cols = st.columns(8)
    for i, (sid, q) in enumerate(zip(inside["sample_id"].head(16), inside["pos"].head(16))):
        with cols[i % 8]:
            st.image(thumbnail(run, int(q)), width=72)
            st.caption(md(run.class_name(int(t["label"].iat[int(q)]))))
            if st.button("Open", key=f"map_open_{sid}"):
                open_sample(str(sid))
    region_ids = inside["sample_id"].astype(str).tolist()
    with st.container(horizontal=True, vertical_alignment="center"):  # one decision for the whole selection
        st.markdown(f"Decide for all **{len(region_ids):,}** samples in the region:")
        if st.button("Keep all", key="map_keep", disabled=not region_ids):
            save_decision(run, region_ids, "keep")
        if st.button("Drop all", key="map_drop", disabled=not region_ids):
            save_decision(run, region_ids, "drop")
    listing = t.iloc[inside["pos"].to_numpy()[:500]]
    show = [c for c in ("sample_id", "label", "suggested_label", "label_issue_score", "shot_group") if c in listing.columns]
    st.dataframe(listing[show], hide_index=True, width="stretch", height=240)
else:
    st.caption("No region selected.")
