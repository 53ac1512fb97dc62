"""The duplicate check: identical or near-identical copies among the training samples (`curator.hygiene.duplicates`).

Near copies come from the kNN graph and are confirmed by the pixels (the 16 x 16 thumbnails of the image pass,
`curator.data.properties`); close embeddings without decoded pixels are only unconfirmed candidates
(``duplicate_type`` "candidate", ``duplicate_candidate_of``): listed, never flagged, never dropped.

Its groups (``dup_group``) are what a de-duplicated export thins to one member each (``duplicate_of``, chosen by
`curator.hygiene.fuse`); a group whose members carry different labels also makes label issues there.
"""
from __future__ import annotations

import numpy as np

from curator.columns import Column
from curator.data.properties import thumbnails_array
from curator.hygiene.duplicates import find_duplicates
from curator.hygiene.plugin import CheckInputs, Found, HygieneCheck

_DUP = "duplicate check: content hash + kNN graph (curator.hygiene.duplicates)"
_HS = ("hygiene", "signals")


class DuplicateCheck(HygieneCheck):
    kind = "duplicate"
    version = 2                          # 2: near duplicates confirmed by the pixels; candidates
    words = "duplicate (identical or near-identical copy)"
    title = "Duplicates"
    summary_key = "duplicates"
    flag_explanation = "The sample is in a group of identical or near-identical training samples (dup_group)."
    values = (
        Column("dup_group", _HS, "categorical", "group index or -1",
               "Group of identical (same pixels) or near-identical (calibrated cosine similarity, confirmed by the "
               "pixels) training samples; -1 when none.", _DUP),
        Column("dup_conflict", _HS, "higher_is_issue", "bool",
               "This sample has an identical or near-identical copy that carries a different label: an error in "
               "plain sight.", _DUP),
        Column("duplicate_type", _HS, "categorical", "exact / near / candidate / empty",
               "exact: another training image has exactly these pixels; near: only near-identical copies (confirmed "
               "by the pixels); candidate: only unconfirmed candidates (close embeddings, no pixels); empty: none.",
               _DUP),
        Column("duplicate_similarity", _HS, "higher_is_worse", "[-1, 1]",
               "Cosine similarity to the nearest other training sample (1 = identical copy).", _DUP),
        Column("duplicate_pixel_similarity", _HS, "higher_is_worse", "[-1, 1] or NaN",
               "Pixel evidence for a near duplicate: correlation of the 16 x 16 thumbnails with the closest partner in "
               "the embeddings (best over mirror and small shifts; 1 = identical pixels; NaN when not compared). A "
               "near pair counts as a duplicate only at 0.9 or more.", _DUP),
        Column("duplicate_candidate_of", _HS, "info", "sample id or empty",
               "An unconfirmed near-duplicate candidate: close in the embeddings, but no pixels to confirm it (images "
               "not decoded under --embeddings). Listed only: never flagged, never dropped.", _DUP),
    )
    group_column = "dup_group"
    keeper = Column("duplicate_of", ("audit",), "info", "sample id or empty",
                    "For a duplicate that a de-duplicated export drops: the member of its group that is kept.",
                    "audit fused with the hygiene checks (curator.hygiene.fuse)")

    def run(self, inputs: CheckInputs) -> Found:
        p, measured = inputs.properties, inputs.measured.any()
        hashes = p["content_hash"].to_numpy(dtype=object) if measured else None
        thumbs, has_thumb = thumbnails_array(p["thumbnail"]) if measured and "thumbnail" in p.columns else (None, None)
        cols, summary = find_duplicates(inputs.graph, hashes, inputs.labels, z=inputs.cfg.duplicate_z,
                                        fixed_similarity=inputs.cfg.near_duplicate_similarity,
                                        thumbnails=thumbs, has_thumbnail=has_thumb, ids=inputs.ids)
        cols[self.flag_column] = cols["dup_group"] >= 0
        return Found(cols, summary)

    def empty(self, n: int) -> dict[str, np.ndarray]:
        return {"dup_group": np.full(n, -1, np.int64), "dup_conflict": np.zeros(n, bool),
                "duplicate_type": np.full(n, "", dtype=object), "duplicate_similarity": np.full(n, np.nan, np.float32),
                "duplicate_pixel_similarity": np.full(n, np.nan, np.float32),
                "duplicate_candidate_of": np.full(n, "", dtype=object), self.flag_column: np.zeros(n, bool)}

    def describe(self, summary: dict) -> str:
        if summary.get("skipped"):
            return super().describe(summary)
        sim = summary.get("near_duplicate_similarity")
        k = summary.get("n_conflicting_groups", 0)
        return (f"{summary.get('n_in_groups', 0)} training samples in {summary.get('n_groups', 0)} groups "
                f"({summary.get('n_exact', 0)} with an identical copy, {summary.get('n_redundant', 0)} redundant copies, "
                f"{k} group{'' if k == 1 else 's'} whose members carry different labels)"
                + (f"; near duplicates: cosine ≥ {sim:.4f} ({(summary.get('calibration') or {}).get('method', '')})"
                   if sim else "")
                + (f"; {summary['n_candidates']} unconfirmed candidates (close embeddings, no decoded pixels: listed, "
                   f"not flagged)" if summary.get("n_candidates") else "") + ".")
