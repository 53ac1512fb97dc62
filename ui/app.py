"""curator explorer: `streamlit run ui/app.py -- --run RUN` (or `curator explore RUN`).

Routes the pages in ui/views with st.navigation (not a `pages/` folder, which would switch
Streamlit to its legacy multipage mode); the filter sidebar is drawn here so that its
state is shared by every page.
"""
from __future__ import annotations

import streamlit as st

from curator.data.problems import DataError
from ui.common import filter_sidebar, get_run, image_notice, map_job, md, run_dir_from_argv

st.set_page_config(page_title="curator explorer", page_icon=":material/image_search:", layout="wide")

if "run_dir" not in st.session_state:
    st.session_state["run_dir"] = run_dir_from_argv()
if not st.session_state["run_dir"]:
    st.error("No run directory given. Start the explorer with `curator explore RUN`.")
    st.stop()

try:
    run = get_run()
except DataError as exc:  # not a run, a damaged file, a run without samples: one line, no traceback
    st.error(md(str(exc)))
    st.stop()

pages = {
    "overview": st.Page("views/overview.py", title="Overview", icon=":material/insights:", default=True),
    "flagged": st.Page("views/flagged.py", title="Flagged samples", icon=":material/flag:"),
    "sample": st.Page("views/sample.py", title="Sample", icon=":material/image_search:"),
    "map": st.Page("views/map.py", title="Embedding map", icon=":material/scatter_plot:"),
    "duplicates": st.Page("views/duplicates.py", title="Duplicate groups", icon=":material/content_copy:"),
    "spot_check": st.Page("views/spot_check.py", title="Estimate precision", icon=":material/fact_check:"),
    "review": st.Page("views/review.py", title="Review & export", icon=":material/task_alt:"),
}
st.session_state["pages"] = pages
nav = st.navigation(list(pages.values()))
st.sidebar.caption(f"Run: {md(run.path)}")
st.session_state["filter"] = filter_sidebar(run)
if (run.path / "embeddings.npy").exists():
    map_job(run)  # start the embedding map in the background now, before anyone opens the map page
image_notice(run)
try:
    nav.run()
except DataError as exc:  # a page hit a damaged or missing file: say which, not a traceback
    st.error(md(str(exc)))
