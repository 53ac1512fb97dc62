"""Review status of every sample and the app's export button (docs/explorer.md).

Decisions live in RUN/decisions.parquet through `curator.review` (an append-only log, locked and atomic; the newest decision per sample is in force);
this module maps them onto table rows without touching the 1M-row id column: the decisions are
few, so their ids are looked up in the run's id index (O(decisions)).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from curator.review import load_decisions, record_batch

LOG = logging.getLogger(__name__)

REVIEW_STATUSES = ("unreviewed", "keep", "relabel", "drop")


def review_status(run, decisions: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(status (N,) int8 codes into REVIEW_STATUSES, new_label (N,) int64, -1 unless relabelled)."""
    if decisions is None:
        decisions = load_decisions(run.path)
    status = np.zeros(run.n_samples, np.int8)
    new_label = np.full(run.n_samples, -1, np.int64)
    if len(decisions):
        pos = run.id_index.get_indexer(decisions["sample_id"].astype(str))
        ok = pos >= 0
        if not ok.all():
            LOG.warning("decisions.parquet names %d samples that are not in this run", int((~ok).sum()))
        codes = decisions["action"].map({a: i for i, a in enumerate(REVIEW_STATUSES)}).fillna(0).astype(np.int8).to_numpy()
        status[pos[ok]] = codes[ok]
        new_label[pos[ok]] = decisions["new_label"].to_numpy(np.int64)[ok]
    return status, new_label


def decide(run, sample_ids, action: str, new_label: int | None = None, *, reviewer: str | None = None) -> pd.DataFrame:
    """Save one decision for every id in `sample_ids` (single or bulk); returns all decisions.

    ``action`` is "keep", "relabel" (needs `new_label`), "drop" or "clear" (forget earlier ones).
    """
    ids = [str(s) for s in sample_ids]
    return decide_each(run, ids, [action] * len(ids), [new_label] * len(ids), reviewer=reviewer)


def decide_each(run, sample_ids, actions, new_labels, *, reviewer: str | None = None) -> pd.DataFrame:
    """Save, as one batch (one undo takes it back), a decision per id with its own action and new label (None unless
    "relabel"), e.g. a duplicate group's "keep one, drop the others"; returns all decisions."""
    ids = [str(s) for s in sample_ids]
    unknown = [s for s, p in zip(ids, run.id_index.get_indexer(ids)) if p < 0]
    if unknown:
        raise ValueError(f"sample {unknown[0]!r} is not in run {str(run.path)!r}")
    return record_batch(run.path, ids, actions, new_labels, n_classes=run.n_classes, reviewer=reviewer)


def describe_decision(status_code: int, new_label: int, class_name) -> str:
    """Plain words for a review status, e.g. "relabelled → digit 3"."""
    s = REVIEW_STATUSES[int(status_code)]
    if s == "relabel":
        return f"relabelled → {class_name(new_label)}"
    return {"unreviewed": "not reviewed", "keep": "kept (label confirmed)", "drop": "dropped"}[s]


def export_manifest(run_path: str | Path, policy: str, out: str | Path, *, drop: tuple[str, ...] = ()) -> dict:
    """Export the reviewed run with `curator.audit.export` (decisions override the automatic flags); `drop` names
    hygiene kinds to drop as well (duplicate, leak, quality, outlier).

    Returns what the export function returned (a summary) as a dict, with ``out`` added.
    """
    from curator.audit.export import export_run

    result = export_run(Path(run_path), policy=policy, out=Path(out), drop=tuple(drop))
    summary = dict(result) if isinstance(result, dict) else {"result": str(result)}
    summary.setdefault("out", str(out))
    return summary
