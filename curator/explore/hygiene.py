"""What the explorer shows about the hygiene checks: counts per issue kind, a sample's duplicates and leaked copies.

Everything the pages show comes from here (tested without Streamlit): the counts come from
`curator.hygiene.counts`, the pairs from RUN/leakage.parquet, the groups from the ``dup_group`` signal.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from curator.explore.run import ExplorerRun
from curator.hygiene.counts import check_sections, kind_counts, label_issue_split, quality_counts


def has_hygiene(run: ExplorerRun) -> bool:
    """The run was audited with the hygiene checks (audit.parquet carries ``issue_kinds``)."""
    return "issue_kinds" in run.table.columns


def kinds_overview(run: ExplorerRun) -> dict:
    """{"kinds": kind table, "quality": per-check table, "label_split": dict, "summary": RUN/hygiene.json,
    "sections": one per hygiene check (`curator.hygiene.counts.check_sections`)}."""
    summary = run.hygiene_summary()
    return {"kinds": kind_counts(run.table), "quality": quality_counts(run.table),
            "label_split": label_issue_split(run.table), "summary": summary, "sections": check_sections(summary)}


def duplicate_members(run: ExplorerRun, pos: int) -> np.ndarray:
    """Rows of the other training samples in the duplicate group of sample `pos` (empty when it has none)."""
    if "dup_group" not in run.table.columns:
        return np.zeros(0, np.int64)
    group = run.table["dup_group"].to_numpy()
    g = group[pos]
    if not np.isfinite(g) or g < 0:
        return np.zeros(0, np.int64)
    rows = np.flatnonzero(group == g)
    return rows[rows != pos]


def duplicate_candidate(run: ExplorerRun, pos: int) -> str:
    """The id of sample `pos`'s unconfirmed near-duplicate candidate (close in the embeddings, no pixels to confirm it:
    never flagged, never dropped; `curator.hygiene.duplicates`), or "" when it has none."""
    if "duplicate_candidate_of" not in run.table.columns:
        return ""
    v = run.table["duplicate_candidate_of"].iat[pos]
    return str(v) if isinstance(v, str) else ""


def leak_partners(run: ExplorerRun, pos: int) -> pd.DataFrame:
    """The test / val copies of training sample `pos`: other_id, other_split, match, similarity, image_ref (−1 when the
    copy is not in the manifest)."""
    pairs = run.leakage()
    cols = ["other_id", "other_split", "match", "similarity", "image_ref"]
    if pairs is None or not len(pairs):
        return pd.DataFrame(columns=cols)
    sid = str(run.table["sample_id"].iat[pos])
    mine = pairs[pairs["sample_id"].astype(str) == sid].sort_values("similarity", ascending=False)
    refs = run.other_image_refs()
    return mine.assign(image_ref=[refs.get(str(o), -1) for o in mine["other_id"]])[cols].reset_index(drop=True)


def leak_pairs_for_display(run: ExplorerRun, limit: int = 24) -> pd.DataFrame:
    """The most similar leak pairs with the rows / image refs needed to show both images: sample_id, pos (training
    row), other_id, other_split, match, similarity, other_ref."""
    pairs = run.leakage()
    if pairs is None or not len(pairs):
        return pd.DataFrame(columns=["sample_id", "pos", "other_id", "other_split", "match", "similarity", "other_ref"])
    top = pairs.sort_values("similarity", ascending=False, kind="stable").head(limit)
    refs = run.other_image_refs()
    pos = run.id_index.get_indexer(top["sample_id"].astype(str))
    return top.assign(pos=pos, other_ref=[refs.get(str(o), -1) for o in top["other_id"]])[
        ["sample_id", "pos", "other_id", "other_split", "match", "similarity", "other_ref"]].reset_index(drop=True)


def kinds_text(run: ExplorerRun, pos: int) -> str:
    """The sample's issue kinds for a tile, e.g. "label · quality (dark, blurry)"; "" when it has none."""
    t = run.table
    if "issue_kinds" not in t.columns:
        return ""
    kinds = [k for k in str(t["issue_kinds"].iat[pos] or "").split(",") if k]
    quality = str(t["quality_issues"].iat[pos] or "") if "quality_issues" in t.columns else ""
    return " · ".join(f"quality ({quality.replace(',', ', ')})" if k == "quality" and quality else k for k in kinds)
