"""The leak check: training images with an identical or near-identical copy in the test / validation split
(`curator.hygiene.leakage`); the pairs go to RUN/leakage.parquet."""
from __future__ import annotations

import numpy as np

from curator.columns import Column
from curator.hygiene.duplicates import PIXEL_SIMILARITY
from curator.hygiene.leakage import (combine, confirm_near_leaks, empty_pairs, exact_leaks, leak_columns,
                                     near_leaks)
from curator.hygiene.plugin import CheckInputs, Found, HygieneCheck


class LeakCheck(HygieneCheck):
    kind = "leak"
    version = 2                          # 2: near leaks confirmed by the pixels; candidates listed
    words = "leak (a copy is in the test / validation split)"
    title = "Leakage between splits"
    summary_key = "leakage"
    flag_explanation = ("An identical or near-identical copy of this training image is in the test or validation "
                        "split (leakage: it inflates the test score); the pairs are in RUN/leakage.parquet.")
    values = (Column("leak_similarity", ("hygiene", "signals"), "higher_is_worse", "[-1, 1] or NaN",
                     "Similarity of the closest test / validation image that duplicates this training image "
                     "(1 = identical pixels); NaN when none does.", "leakage check (curator.hygiene.leakage)"),)

    def run(self, inputs: CheckInputs) -> Found:
        ids, others, props = inputs.ids, inputs.others, inputs.all_properties
        pairs_exact = empty_pairs()
        info: dict = {}
        if props is not None and len(others):
            o = others[["sample_id", "split"]].astype(str).merge(props[["sample_id", "content_hash"]].astype(str),
                                                                  on="sample_id", how="inner")
            pairs_exact = exact_leaks(inputs.properties[["sample_id", "content_hash"]].astype({"content_hash": object}), o)
            info["exact"] = f"{len(pairs_exact)} pairs (content hash, splits {sorted(set(others['split']))})"
        else:
            info["exact"] = ("skipped: no val/test samples" if not len(others)
                             else f"skipped: {inputs.skipped_properties or 'images were not decoded'}")
        pairs_near = empty_pairs()
        dup = inputs.found.get("duplicate", {})
        threshold = dup.get("near_duplicate_similarity")
        if inputs.test is not None and inputs.graph is not None and inputs.train_features is not None \
                and threshold is not None:
            # with pixels, every test image's nearest training images are compared, whatever their similarity
            search = -1.0 if props is not None and "thumbnail" in props.columns else threshold
            pairs_near = confirm_near_leaks(
                near_leaks(inputs.train_features, ids, inputs.test.embeddings, inputs.train_embeddings,
                           inputs.test.sample_ids, search, inputs.cfg.leak_neighbours, device=inputs.device),
                props, similarity=threshold, threshold=dup.get("pixel_similarity") or PIXEL_SIMILARITY)
            n_cand = int((pairs_near["match"] == "candidate").sum()) if len(pairs_near) else 0
            info["near"] = (f"{len(pairs_near) - n_cand} pairs confirmed by the pixels (test embeddings: the "
                            f"{inputs.cfg.leak_neighbours} nearest training images, or cosine ≥ {threshold:.4f} without "
                            f"pixels), {n_cand} unconfirmed candidates (no decoded pixels: listed, not flagged)")
        else:
            if not (len(others) and (others["split"] == "test").any()):
                why = "no test split"
            elif inputs.graph is None or inputs.train_features is None:
                why = "no kNN graph"
            elif threshold is None:
                why = "no near-duplicate threshold (the duplicate check is off)"
            else:
                why = ("no test embeddings (RUN/embeddings_test.npy; with --embeddings give "
                       "--set hygiene.test_embeddings=FILE)")
            info["near"] = f"skipped: {why}"
        pairs = combine(pairs_exact, pairs_near)
        cols = leak_columns(ids, pairs)
        leaks = pairs[pairs["match"] != "candidate"] if len(pairs) else pairs
        info.update({"n_pairs": int(len(leaks)), "n_candidate_pairs": int(len(pairs) - len(leaks)),
                     "n_train_leaked": int(cols[self.flag_column].sum()),
                     "n_other_leaked": int(leaks["other_id"].nunique()) if len(leaks) else 0,
                     "by_split": {str(k): int(v) for k, v in leaks.groupby("other_split")["other_id"].nunique().items()}
                     if len(leaks) else {}})
        return Found(cols, info, pairs=pairs)

    def empty(self, n: int) -> dict[str, np.ndarray]:
        return {"leak_similarity": np.full(n, np.nan, np.float32), self.flag_column: np.zeros(n, bool)}

    def describe(self, summary: dict) -> str:
        if summary.get("skipped"):
            return super().describe(summary)
        return (f"{summary.get('n_train_leaked', 0)} training samples have a copy among {summary.get('n_other_leaked', 0)} "
                f"test / validation samples ({summary.get('n_pairs', 0)} pairs). Exact: {summary.get('exact', '')}. "
                f"Near: {summary.get('near', '')}.")
