"""Label agreement among nearest neighbours, outliers and near-duplicates (SPEC §5).

Input: the run's kNN graph (`curator.evidence.KnnGraph`: every sample's k nearest other samples by
cosine similarity on the standardised embeddings, best first).

- ``knn_agreement``: the weighted share of a sample's k neighbours whose given label equals its own,
  in [0, 1] (higher = clean), with the graph's vote weights (`KnnGraph.weights`: "similarity"
  max(s, 0) by default, "softmax" exp(s / T), or "uniform").
- ``knn_suggested_label`` / ``knn_suggested_share``: the class with the largest weighted vote and its share.
- ``knn_kth_distance``: 1 − cosine similarity to the k-th neighbour (higher = more isolated).
- ``near_duplicates``: connected components of the graph restricted to pairs with cosine ≥ a
  threshold; ``dup_group`` numbers components of two or more samples (−1 = none) and
  ``dup_conflict`` marks groups whose members carry more than one label.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curator.evidence import KnnGraph


def class_shares(graph: KnnGraph, labels: np.ndarray, n_classes: int, *, weighting: str = "similarity",
                 temperature: float = 0.1) -> np.ndarray:
    """(N, C) weighted share of each class among a sample's neighbours; rows sum to 1 (0 when no neighbour
    carries a label in 0..C−1: unlabelled neighbours, −1, do not vote)."""
    labels = np.asarray(labels, dtype=np.int64)
    ok = (labels >= 0) & (labels < n_classes)
    mass = np.zeros((len(labels), n_classes))
    mass[np.flatnonzero(ok), labels[ok]] = 1.0
    votes = graph.votes(mass, weighting, temperature)                  # (N, C)
    total = votes.sum(axis=1, keepdims=True)
    return np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)


def knn_agreement(graph: KnnGraph, labels: np.ndarray, n_classes: int, *, weighting: str = "similarity",
                  temperature: float = 0.1) -> dict[str, np.ndarray]:
    """Per-sample neighbourhood columns (see the module docstring), each (N,)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != graph.indices.shape[0]:
        raise ValueError(f"kNN graph has {graph.indices.shape[0]} rows but there are {len(labels)} labels")
    share = class_shares(graph, labels, n_classes, weighting=weighting, temperature=temperature)
    own = np.zeros(len(labels))
    ok = (labels >= 0) & (labels < n_classes)
    own[ok] = share[np.flatnonzero(ok), labels[ok]]
    return {
        "knn_agreement": own.astype(np.float32),
        "knn_suggested_label": share.argmax(axis=1).astype(np.int64),
        "knn_suggested_share": share.max(axis=1).astype(np.float32),
        "knn_kth_distance": (1.0 - graph.similarities[:, -1]).astype(np.float32),
    }


def near_duplicates(graph: KnnGraph, labels: np.ndarray, threshold: float = 0.98) -> dict[str, np.ndarray]:
    """Groups of near-identical samples: connected components over kNN pairs with cosine ≥ threshold.

    Returns ``dup_group`` (N,) int64, a group number 0, 1, ... for members of groups of size ≥ 2
    (numbered by their first member) and −1 otherwise, and ``dup_conflict`` (N,) bool, True for
    members of a group whose given labels differ.
    """
    sims, idx = graph.similarities, graph.indices
    labels = np.asarray(labels, dtype=np.int64)
    n = len(idx)
    rows, cols = np.nonzero(sims >= threshold)
    pairs = coo_matrix((np.ones(len(rows), np.int8), (rows, idx[rows, cols])), shape=(n, n))
    _, comp = connected_components(pairs, directed=True, connection="weak")     # (N,) component ids
    sizes = np.bincount(comp)
    in_group = sizes[comp] >= 2
    group = np.full(n, -1, np.int64)
    conflict = np.zeros(n, bool)
    if in_group.any():
        # renumber components of size ≥ 2 as 0, 1, ... in order of their first member
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
