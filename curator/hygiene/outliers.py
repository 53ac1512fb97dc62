"""Outliers: training samples far from every other sample in the run's kNN graph.

``outlier_distance`` is the mean cosine distance (1 − similarity, standardised embeddings) to a sample's
`neighbours` nearest other samples. A small number of neighbours (5 by default, not the graph's k) keeps
a small tail class from looking isolated: its members have a few close neighbours of their own even when
the k-th neighbour (``knn_kth_distance``) already belongs to another class.

The flag is calibrated on the dataset itself (`curator.hygiene.thresholds.robust_bound`): a sample is an
outlier when its distance lies more than ``z`` robust spreads above the median, and at least 1.5 times the median
(`MIN_FARTHER`) — on the distance itself: it is bounded, and a logarithm would stretch the lower side (near
duplicates) and squeeze the side that matters.
"""
from __future__ import annotations

import math

import numpy as np

from curator.evidence import KnnGraph
from curator.hygiene.thresholds import robust_bound

#: an outlier is at least this much farther (relative to the median distance) than the typical sample: where every
#: sample's neighbours are about equally far (a tight, high-dimensional cloud), a purely relative bound would flag
#: the ordinary scatter
MIN_FARTHER = 0.5


def find_outliers(graph: KnnGraph, *, neighbours: int, z: float) -> tuple[dict[str, np.ndarray], dict]:
    """(``outlier_distance`` (N,) float32 and ``is_outlier_issue`` (N,) bool, summary with the threshold)."""
    m = int(min(neighbours, graph.k))
    dist = (1.0 - np.asarray(graph.similarities[:, :m], dtype=np.float64)).mean(axis=1)     # (N,)
    med = float(np.median(dist)) if len(dist) else 0.0
    bound = robust_bound(dist, tail="upper", z=z, min_gap=MIN_FARTHER * med)
    flag = bound.flags(dist)
    finite = bound.high is not None and math.isfinite(bound.high)
    return ({"outlier_distance": dist.astype(np.float32), "is_outlier_issue": flag},
            {"neighbours": m, "z": z, "distance_threshold": float(bound.high) if finite else None,
             "median_distance": float(bound.centre) if math.isfinite(bound.centre) else None,
             "n_flagged": int(flag.sum())})
