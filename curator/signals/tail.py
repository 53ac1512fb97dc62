"""Tail coverage per class (SPEC §5 "Tail coverage", issue 4 item 7; shot groups from paper 002).

Paper 002 (Zhang et al., *To balance or not to balance*) reports accuracy by shot group: many-shot
classes have ≥ 100 training images, medium-shot 20–100, few-shot ≤ 20. `shot_group` applies that
split; `class_coverage` gives the per-class account the audit's tail report is built from.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from curator.data.stats import FEW_MAX, MANY_MIN  # one definition of the shot groups (paper 002)
DEFAULT_USABLE_FLOOR = 20


def shot_group(counts) -> np.ndarray:
    """Shot group of each class count: "many" (≥ 100), "few" (≤ 20), otherwise "medium" (object array)."""
    c = np.asarray(counts, dtype=np.float64)
    out = np.full(c.shape, "medium", dtype=object)
    out[c >= MANY_MIN] = "many"
    out[c <= FEW_MAX] = "few"
    return out


def class_spread(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean cosine distance of each class's samples to their class centroid, (C,) (NaN for empty classes).

    The centroid is the mean of the L2-normalised embeddings; distance is 1 − cos(x, centroid).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)      # (N, d)
    spread = np.full(n_classes, np.nan)
    for j in range(n_classes):
        m = labels == j
        if m.any():
            centroid = x[m].mean(axis=0)
            centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
            spread[j] = float(np.mean(1.0 - x[m] @ centroid))
    return spread


def class_coverage(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, *,
                   clean_mask: np.ndarray | None = None, estimated_counts: np.ndarray | None = None,
                   probs: np.ndarray | None = None, true_labels: np.ndarray | None = None,
                   class_names: list[str] | None = None, usable_floor: int = DEFAULT_USABLE_FLOOR) -> pd.DataFrame:
    """One row per class: what the labels say, what the audit believes, and which classes are at risk.

    embeddings (N, d); labels (N,) given labels; clean_mask (N,) bool, samples the audit believes
    correctly labelled (default: all); estimated_counts (C,) estimated true class sizes (e.g. from
    suggested labels); probs (N, C) a robust head's probabilities; true_labels (N,) with −1 unknown.

    Columns: class, class_name, count (labelled), shot_group (by labelled count, or by
    estimated_counts when given), clean_share, estimated_clean_count, estimated_count, spread,
    accuracy (per-class accuracy of argmax(probs) on samples whose true label is known and equals
    the class; NaN without probs/truth), shot_group_true (by true count, when truth is known),
    at_risk (estimated clean count < usable_floor).
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    clean = np.ones(n, bool) if clean_mask is None else np.asarray(clean_mask, dtype=bool)
    if len(clean) != n:
        raise ValueError(f"clean_mask has {len(clean)} entries for {n} samples")
    valid = (labels >= 0) & (labels < n_classes)
    counts = np.bincount(labels[valid], minlength=n_classes)
    clean_counts = np.bincount(labels[valid & clean], minlength=n_classes)
    clean_share = np.divide(clean_counts, counts, out=np.full(n_classes, np.nan), where=counts > 0)
    est = None if estimated_counts is None else np.asarray(estimated_counts, dtype=np.float64)
    df = pd.DataFrame({
        "class": np.arange(n_classes),
        "class_name": class_names if class_names is not None else [str(c) for c in range(n_classes)],
        "count": counts,
        "shot_group": shot_group(est if est is not None else counts),
        "clean_share": clean_share,
        "estimated_clean_count": clean_counts,
        "estimated_count": est if est is not None else counts.astype(np.float64),
        "spread": class_spread(embeddings, labels, n_classes),
    })
    acc = np.full(n_classes, np.nan)
    if true_labels is not None:
        truth = np.asarray(true_labels, dtype=np.int64)
        known = (truth >= 0) & (truth < n_classes)
        true_counts = np.bincount(truth[known], minlength=n_classes)
        df["true_count"] = true_counts
        df["shot_group_true"] = shot_group(true_counts)
        if probs is not None:
            pred = np.asarray(probs).argmax(axis=1)
            for j in range(n_classes):
                m = known & (truth == j)
                if m.any():
                    acc[j] = float((pred[m] == j).mean())
    df["accuracy"] = acc
    df["at_risk"] = df["estimated_clean_count"].to_numpy() < usable_floor
    return df
