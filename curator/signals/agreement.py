"""Label agreement among nearest neighbours, outliers and near-duplicates (SPEC §5, issue 4 item 5).

Inputs are the self-excluded kNN graph from `curator.signals.knn`: ``sims`` (N, k) cosine
similarities, best first, and ``idx`` (N, k) neighbour row positions.

- ``knn_agreement``: the weighted share of a sample's k neighbours whose given label equals its own,
  in [0, 1] (higher = clean). Weights: "similarity" w = max(s, 0) (default), "softmax"
  w = exp(s / T) (the kNN-monitor weighting of Wu et al. 2018 used as the SSL proxy in paper 000),
  or "uniform" w = 1.
- ``knn_suggested_label`` / ``knn_suggested_share``: the class with the largest weighted vote and
  its share.
- ``knn_kth_distance``: 1 − cosine similarity to the k-th neighbour (higher = more isolated).
- ``near_duplicates``: connected components of the graph restricted to pairs with cosine ≥ a
  threshold; ``dup_group`` numbers components of two or more samples (−1 = none) and
  ``dup_conflict`` marks groups whose members carry more than one label.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

WEIGHTINGS = ("similarity", "softmax", "uniform")


def neighbour_weights(sims: np.ndarray, *, weighting: str = "similarity", temperature: float = 0.1) -> np.ndarray:
    """(N, k) similarities -> (N, k) non-negative vote weights; a row of all zeros falls back to uniform."""
    s = np.asarray(sims, dtype=np.float64)
    if weighting == "similarity":
        w = np.clip(s, 0.0, None)
    elif weighting == "softmax":
        w = np.exp((s - s.max(axis=1, keepdims=True)) / temperature)  # shift-invariant per row
    elif weighting == "uniform":
        w = np.ones_like(s)
    else:
        raise ValueError(f"unknown weighting {weighting!r}; use one of {WEIGHTINGS}")
    empty = w.sum(axis=1) <= 0
    w[empty] = 1.0
    return w


def class_votes(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, n_classes: int, *,
                weighting: str = "similarity", temperature: float = 0.1) -> np.ndarray:
    """(N, C) weighted share of each class among a sample's neighbours; rows sum to 1.
    Neighbours whose label is outside 0..C−1 (unlabelled, −1) do not vote."""
    labels = np.asarray(labels, dtype=np.int64)
    w = neighbour_weights(sims, weighting=weighting, temperature=temperature)   # (N, k)
    nb = labels[idx]                                                             # (N, k) neighbour labels
    valid = (nb >= 0) & (nb < n_classes)
    rows = np.broadcast_to(np.arange(len(idx))[:, None], idx.shape)
    votes = np.zeros((len(idx), n_classes))
    np.add.at(votes, (rows[valid], nb[valid]), w[valid])
    total = votes.sum(axis=1, keepdims=True)
    return np.divide(votes, total, out=np.zeros_like(votes), where=total > 0)


def knn_agreement(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, n_classes: int, *,
                  weighting: str = "similarity", temperature: float = 0.1) -> dict[str, np.ndarray]:
    """Per-sample neighbourhood signals (see module docstring). Returns (N,) columns
    knn_agreement (float32), knn_suggested_label (int64), knn_suggested_share (float32),
    knn_kth_distance (float32)."""
    sims = np.asarray(sims)
    idx = np.asarray(idx)
    labels = np.asarray(labels, dtype=np.int64)
    if sims.shape != idx.shape or sims.ndim != 2 or len(labels) != len(idx):
        raise ValueError(f"kNN shapes disagree: sims {sims.shape}, idx {idx.shape}, labels {labels.shape}")
    share = class_votes(sims, idx, labels, n_classes, weighting=weighting, temperature=temperature)  # (N, C)
    own = np.zeros(len(labels))
    ok = (labels >= 0) & (labels < n_classes)
    own[ok] = share[np.flatnonzero(ok), labels[ok]]
    return {
        "knn_agreement": own.astype(np.float32),
        "knn_suggested_label": share.argmax(axis=1).astype(np.int64),
        "knn_suggested_share": share.max(axis=1).astype(np.float32),
        "knn_kth_distance": (1.0 - sims[:, -1]).astype(np.float32),
    }


def near_duplicates(sims: np.ndarray, idx: np.ndarray, labels: np.ndarray, threshold: float = 0.98
                    ) -> dict[str, np.ndarray]:
    """Groups of near-identical samples: connected components over kNN pairs with cosine ≥ threshold.

    Returns ``dup_group`` (N,) int64, a group number 0, 1, ... for members of groups of size ≥ 2
    (numbered by their first member) and −1 otherwise, and ``dup_conflict`` (N,) bool, True for
    members of a group whose given labels differ.
    """
    sims = np.asarray(sims)
    idx = np.asarray(idx)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(idx)
    rows, cols = np.nonzero(sims >= threshold)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, idx[rows, cols])), shape=(n, n))
    _, comp = connected_components(graph, directed=True, connection="weak")     # (N,) component ids
    sizes = np.bincount(comp)
    in_group = sizes[comp] >= 2
    group = np.full(n, -1, np.int64)
    if in_group.any():
        # renumber components of size ≥ 2 as 0, 1, ... in order of their first member
        members = comp[in_group]
        uniq, first_pos, inverse = np.unique(members, return_index=True, return_inverse=True)
        rank = np.empty(len(uniq), np.int64)
        rank[np.argsort(first_pos, kind="stable")] = np.arange(len(uniq))
        group[in_group] = rank[inverse]
    conflict = np.zeros(n, bool)
    if in_group.any():
        g = group[in_group]
        lab = labels[in_group]
        n_groups = int(g.max()) + 1
        lo = np.full(n_groups, np.iinfo(np.int64).max)
        hi = np.full(n_groups, np.iinfo(np.int64).min)
        np.minimum.at(lo, g, lab)
        np.maximum.at(hi, g, lab)
        conflict[in_group] = lo[g] != hi[g]
    return {"dup_group": group, "dup_conflict": conflict}

