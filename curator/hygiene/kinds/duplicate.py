"""The duplicate check: identical or near-identical copies among the training samples (`curator.hygiene.duplicates`).

Its groups (``dup_group``) are what a de-duplicated export thins to one member each (``duplicate_of``, chosen by
`curator.hygiene.fuse`); a group whose members carry different labels also makes label issues there.
"""
from __future__ import annotations

import numpy as np

from curator.columns import Column
from curator.hygiene.duplicates import find_duplicates
from curator.hygiene.plugin import CheckInputs, Found, HygieneCheck

_DUP = "duplicate check: content hash + kNN graph (curator.hygiene.duplicates)"
_HS = ("hygiene", "signals")


class DuplicateCheck(HygieneCheck):
    kind = "duplicate"
    version = 1
    words = "duplicate (identical or near-identical copy)"
    title = "Duplicates"
    summary_key = "duplicates"
    flag_explanation = "The sample is in a group of identical or near-identical training samples (dup_group)."
    values = (
        Column("dup_group", _HS, "categorical", "group index or -1",
               "Group of identical (same pixels) or near-identical (calibrated cosine similarity) training samples; "
               "-1 when none.", _DUP),
        Column("dup_conflict", _HS, "higher_is_issue", "bool",
               "This sample has an identical or near-identical copy that carries a different label: an error in "
               "plain sight.", _DUP),
        Column("duplicate_type", _HS, "categorical", "exact / near / empty",
               "exact: another training image has exactly these pixels; near: only near-identical copies; empty: "
               "none.", _DUP),
        Column("duplicate_similarity", _HS, "higher_is_worse", "[-1, 1]",
               "Cosine similarity to the nearest other training sample (1 = identical copy).", _DUP),
    )
    group_column = "dup_group"
    keeper = Column("duplicate_of", ("audit",), "info", "sample id or empty",
                    "For a duplicate that a de-duplicated export drops: the member of its group that is kept.",
                    "audit fused with the hygiene checks (curator.hygiene.fuse)")

    def run(self, inputs: CheckInputs) -> Found:
        hashes = inputs.properties["content_hash"].to_numpy(dtype=object) if inputs.measured.any() else None
        cols, summary = find_duplicates(inputs.graph, hashes, inputs.labels, z=inputs.cfg.duplicate_z,
                                        fixed_similarity=inputs.cfg.near_duplicate_similarity)
        cols[self.flag_column] = cols["dup_group"] >= 0
        return Found(cols, summary)

    def empty(self, n: int) -> dict[str, np.ndarray]:
        return {"dup_group": np.full(n, -1, np.int64), "dup_conflict": np.zeros(n, bool),
                "duplicate_type": np.full(n, "", dtype=object), "duplicate_similarity": np.full(n, np.nan, np.float32),
                self.flag_column: np.zeros(n, bool)}

    def describe(self, summary: dict) -> str:
        if summary.get("skipped"):
            return super().describe(summary)
        sim = summary.get("near_duplicate_similarity")
        return (f"{summary.get('n_in_groups', 0)} training samples in {summary.get('n_groups', 0)} groups "
                f"({summary.get('n_exact', 0)} with an identical copy, {summary.get('n_redundant', 0)} redundant copies, "
                f"{summary.get('n_conflicting_groups', 0)} groups whose members carry different labels)"
                + (f"; near duplicates: cosine ≥ {sim:.4f} ({(summary.get('calibration') or {}).get('method', '')})"
                   if sim else "") + ".")
