"""Confident-learning columns from the run's out-of-fold probabilities (docs/signals.md), comparable with cleanlab.

Peers (cleanlab) score label quality from out-of-fold probabilities of a simple classifier; curator
computes the same rule from its own out-of-fold probe (`curator.evidence`, RUN/oof_probs.npy), so the
columns need no extra model: the confident-joint off-diagonal rule of Northcutt, Jiang & Chuang,
*Confident Learning* (JAIR 2021, eq. 1–2): per-class thresholds t_j = mean of p_j over samples labelled
j; sample x with given label ỹ is counted at (ỹ, j*) where j* = argmax_{j : p_j(x) ≥ t_j} p_j(x); it is
an issue when j* ≠ ỹ.
"""
from __future__ import annotations

import numpy as np

from curator.signals.plugin import Signal


def per_class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """t_j = mean p_j(x) over samples labelled j, (C,); +inf for classes nobody carries."""
    n_classes = probs.shape[1]
    t = np.full(n_classes, np.inf)
    for j in range(n_classes):
        m = labels == j
        if m.any():
            t[j] = probs[m, j].mean()
    return t


def confident_assignment(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """j*(x) = argmax_{j: p_j(x) ≥ t_j} p_j(x) for each sample, or −1 when no class passes its threshold."""
    t = per_class_thresholds(probs, labels)
    above = probs >= (t[None, :] - 1e-6)                                # (N, C)
    masked = np.where(above, probs, -np.inf)
    j_star = masked.argmax(axis=1)
    j_star[~above.any(axis=1)] = -1
    return j_star


def confident_learning(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Confident-learning columns from out-of-fold probabilities (N, C) and given labels (N,).

    - ``cl_label_quality`` (N,) float32 in [0, 1]: p_ỹ(x), the self-confidence (higher = clean);
    - ``cl_suggested_label`` (N,) int64: j*(x) where some class passes its threshold, else argmax p;
    - ``cl_is_issue`` (N,) bool: j*(x) exists and differs from the given label (off-diagonal).
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs {probs.shape} and labels {labels.shape} disagree")
    bad = np.flatnonzero((labels < 0) | (labels >= probs.shape[1]))
    if len(bad):
        raise ValueError(f"sample at row {int(bad[0])} has label {int(labels[bad[0]])} outside 0..{probs.shape[1] - 1}")
    j_star = confident_assignment(probs, labels)
    suggested = np.where(j_star >= 0, j_star, probs.argmax(axis=1))
    return {
        "cl_label_quality": probs[np.arange(len(labels)), labels].astype(np.float32),
        "cl_suggested_label": suggested.astype(np.int64),
        "cl_is_issue": (j_star >= 0) & (j_star != labels),
    }



SIGNAL = Signal("confident_learning", ("evidence",), ("cl_label_quality", "cl_suggested_label", "cl_is_issue"),
                lambda i: confident_learning(i.oof_probs, i.labels))
