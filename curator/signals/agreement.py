"""Label agreement among nearest neighbours and the k-th neighbour distance (docs/signals.md).

Input: the run's kNN graph (`curator.evidence.KnnGraph`: every sample's k nearest other samples by
cosine similarity on the standardised embeddings, best first).

- ``knn_agreement``: the weighted share of a sample's k neighbours whose given label equals its own,
  in [0, 1] (higher = clean), with the graph's vote weights (`KnnGraph.weights`: "similarity"
  max(s, 0) by default, "softmax" exp(s / T), or "uniform").
- ``knn_suggested_label`` / ``knn_suggested_share``: the class with the largest weighted vote and its share.
- ``knn_kth_distance``: 1 − cosine similarity to the k-th neighbour (higher = more isolated).

Duplicate groups (``dup_group``, ``dup_conflict``) are found by the hygiene stage, from identical pixels and
from graph pairs above a per-dataset calibrated similarity (`curator.hygiene.duplicates`).
"""
from __future__ import annotations

import numpy as np

from curator.evidence import KnnGraph
from curator.signals.plugin import Signal


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


SIGNAL = Signal("knn_agreement", ("evidence",),
                ("knn_agreement", "knn_suggested_label", "knn_suggested_share", "knn_kth_distance"),
                lambda i: knn_agreement(i.graph, i.labels, i.n_classes, weighting=i.cfg.knn_weighting,
                                        temperature=i.cfg.knn_temperature))
