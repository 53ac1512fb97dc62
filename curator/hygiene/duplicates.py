"""Duplicates among the training samples: exact copies by content hash, near copies by the kNN graph.

- **Exact**: samples whose decoded pixels hash the same (`curator.data.properties`, ``content_hash``)
  are one image, whatever the file name or format.
- **Near**: pairs of the run's kNN graph (`curator.evidence.KnnGraph`, cosine similarity on the standardised
  embeddings) at or above a similarity threshold. The graph's similarities are relative to the dataset
  (every dimension is z-scored), so no fixed cosine means "near-identical" for every dataset; the
  threshold is **calibrated** on the dataset's own distances to the nearest neighbour
  (`calibrate_near_duplicates`): a pair is a near duplicate when its distance, 1 − cosine, lies more than
  ``z`` robust spreads below the median nearest-neighbour distance on a log scale
  (`curator.hygiene.thresholds.robust_bound`, spread from the upper side). Measured on CIFAR-10's 50,000
  training images (the shared SimSiam embeddings, docs/hygiene.md) z = 4 gives cosine ≈ 0.974, where pairs are
  still copies of one photograph (crops, colour shifts, re-encodings) and below which different photographs of
  one scene start to appear.

Groups are the connected components of the union of both kinds of pairs (`duplicate_groups`); a group
whose members carry more than one label is a **conflict**, a label error in plain sight.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curator.evidence import KnnGraph
from curator.hygiene.thresholds import robust_bound

#: a distance this small is an identical embedding (an exact copy seen through the embeddings)
IDENTICAL = 1e-6
#: a near duplicate is at least this many times closer than the dataset's median nearest neighbour: in a dataset
#: without copies (random high-dimensional points) the nearest-neighbour distances hardly vary, and a purely
#: relative threshold would then call chance neighbours duplicates
MIN_CLOSER = 4.0


def exact_pairs(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) pairs linking every sample to the first sample with the same non-empty hash."""
    h = pd.Series(np.asarray(hashes, dtype=object)).fillna("").astype(str).to_numpy()
    codes, _ = pd.factorize(h)                                          # (N,) one code per distinct hash
    _, first = np.unique(codes, return_index=True)                      # first row of every code
    cols = first[codes]
    keep = (cols != np.arange(len(h))) & (h != "")
    return np.flatnonzero(keep).astype(np.int64), cols[keep].astype(np.int64)


def calibrate_near_duplicates(graph: KnnGraph, z: float) -> tuple[float, dict]:
    """The cosine similarity at or above which two samples are near duplicates, and how it was found.

    Distances d = 1 − (cosine to the nearest neighbour) of every sample; identical embeddings (d ≈ 0) are
    left out of the calibration (they are duplicates whatever the threshold). The threshold distance is
    exp(median(log d) − max(z · spread, log `MIN_CLOSER`)), the spread measured on the upper side of log d (the
    ordinary samples; the lower side holds the duplicates themselves, `robust_bound(mirror=True)`).
    """
    d = 1.0 - np.asarray(graph.similarities[:, 0], dtype=np.float64)
    d = d[d > IDENTICAL]
    if len(d) < 10:
        return 1.0 - IDENTICAL, {"method": "identical only (too few samples to calibrate)", "n": int(len(d))}
    bound = robust_bound(np.log(d), tail="lower", z=z, mirror=True, min_gap=math.log(MIN_CLOSER))
    threshold = 1.0 - math.exp(bound.low)
    return float(threshold), {"method": "calibrated", "z": z, "median_nearest_similarity": float(1.0 - math.exp(bound.centre)),
                              "log_distance_median": bound.centre, "log_distance_spread": bound.spread_low,
                              "n_samples": int(len(d))}


def near_pairs(graph: KnnGraph, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, similarities) of graph pairs with cosine ≥ `threshold` (or identical embeddings)."""
    sims = np.asarray(graph.similarities)
    hit = (sims >= threshold) | (sims >= 1.0 - IDENTICAL)
    rows, k = np.nonzero(hit)
    return rows.astype(np.int64), np.asarray(graph.indices)[rows, k].astype(np.int64), sims[rows, k].astype(np.float32)


def duplicate_groups(n: int, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Connected components of the pairs (rows[i], cols[i]) among n samples.

    ``dup_group`` (N,) int64: 0, 1, ... for members of groups of two or more (numbered by their first
    member), −1 otherwise; ``dup_conflict`` (N,) bool: the member's group carries more than one label.
    """
    labels = np.asarray(labels, dtype=np.int64)
    pairs = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, comp = connected_components(pairs, directed=True, connection="weak")     # (N,) component ids
    in_group = np.bincount(comp)[comp] >= 2
    group = np.full(n, -1, np.int64)
    conflict = np.zeros(n, bool)
    if in_group.any():
        members = comp[in_group]
        uniq, first_pos, inverse = np.unique(members, return_index=True, return_inverse=True)
        rank = np.empty(len(uniq), np.int64)
        rank[np.argsort(first_pos, kind="stable")] = np.arange(len(uniq))
        group[in_group] = rank[inverse]
        g, lab = group[in_group], labels[in_group]
        n_groups = int(g.max()) + 1
        lo = np.full(n_groups, np.iinfo(np.int64).max)
        hi = np.full(n_groups, np.iinfo(np.int64).min)
        np.minimum.at(lo, g, lab)
        np.maximum.at(hi, g, lab)
        conflict[in_group] = lo[g] != hi[g]
    return {"dup_group": group, "dup_conflict": conflict}


def find_duplicates(graph: KnnGraph | None, hashes: np.ndarray | None, labels: np.ndarray, *, z: float,
                    fixed_similarity: float = 0.0) -> tuple[dict[str, np.ndarray], dict]:
    """Every duplicate column of the training samples and a summary.

    Columns: ``dup_group``, ``dup_conflict`` (see `duplicate_groups`), ``duplicate_type`` ("exact" when
    the sample has an identical copy by hash, "near" when only near copies, "" otherwise) and
    ``duplicate_similarity`` (cosine to the nearest other sample; 1 for an exact copy; NaN without a graph).
    `fixed_similarity` > 0 replaces the calibrated threshold.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    r_e, c_e = exact_pairs(hashes) if hashes is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    summary: dict = {"exact_by_hash": hashes is not None}
    nearest = np.full(n, np.nan, np.float32)
    r_n = c_n = np.zeros(0, np.int64)
    if graph is not None:
        if fixed_similarity > 0:
            threshold, calib = fixed_similarity, {"method": "fixed (hygiene.near_duplicate_similarity)"}
        else:
            threshold, calib = calibrate_near_duplicates(graph, z)
        r_n, c_n, _ = near_pairs(graph, threshold)
        nearest = np.asarray(graph.similarities[:, 0], np.float32).copy()
        summary.update({"near_duplicate_similarity": threshold, "calibration": calib})
    else:
        summary["near"] = "skipped: no kNN graph"
    exact = np.zeros(n, bool)
    exact[r_e] = exact[c_e] = True
    nearest[exact] = 1.0
    cols = duplicate_groups(n, np.concatenate([r_e, r_n]), np.concatenate([c_e, c_n]), labels)
    in_group = cols["dup_group"] >= 0
    dtype = np.where(exact, "exact", np.where(in_group, "near", ""))
    cols.update({"duplicate_type": dtype.astype(object), "duplicate_similarity": nearest})
    g = cols["dup_group"][in_group]
    summary.update({"n_groups": int(len(np.unique(g))), "n_in_groups": int(in_group.sum()),
                    "n_exact": int(exact.sum()), "n_redundant": int(in_group.sum() - len(np.unique(g))),
                    "n_conflicting_groups": int(len(np.unique(cols["dup_group"][cols["dup_conflict"]])))})
    return cols, summary
