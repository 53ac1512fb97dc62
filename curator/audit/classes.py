"""Per-class findings (classes.parquet) and the estimated noise transition matrix (docs/audit.md tail coverage).

All estimates come from the audit's posterior p(c | x, ỹ) (curator.audit.aggregate), never from clean data:
- estimated true size of class c: the number of samples whose most probable true class is c
  (``estimated_true_size``); the soft count Σ_i p(c | x_i, ỹ_i) is kept as ``estimated_true_size_soft`` —
  it over-counts small classes, because every one of the N samples leaks a little probability into them;
- estimated clean count: Σ_{i: ỹ_i = c} p(c | x_i, ỹ_i) (samples labelled c that really are c);
- estimated noise rate: 1 − clean / labelled;
- confusions: the soft joint J[c, l] = Σ_{i: ỹ_i = l} p(c | x_i, ỹ_i); for each label l the true class that
  most often hides under it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from curator.data.stats import shot_group


def soft_joint(posterior: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """J (C, C): J[c, l] = expected number of samples of true class c carrying label l."""
    J = np.zeros((n_classes, n_classes), np.float64)
    for l in range(n_classes):
        J[:, l] = posterior[labels == l].sum(0)
    return J


def class_findings(posterior: np.ndarray, labels: np.ndarray, flags: np.ndarray, class_names: list[str], *,
                   tail_min_clean: int = 20, true_label: np.ndarray | None = None) -> pd.DataFrame:
    """One row per class; see the module docstring. posterior (N, C), labels/flags (N,)."""
    C = len(class_names)
    y = np.asarray(labels, np.int64)
    J = soft_joint(posterior, y, C)
    labelled = np.bincount(y, minlength=C)
    est_size = J.sum(1)
    est_clean = np.diag(J)
    off = J.copy()
    np.fill_diagonal(off, 0)
    hidden_from = off.argmax(0)          # for label l: the true class most often under it
    goes_to = off.argmax(1)              # for true class c: the label it is most often given instead
    df = pd.DataFrame({
        "class": np.arange(C), "class_name": class_names, "labelled_count": labelled,
        "estimated_true_size": np.bincount(posterior.argmax(1), minlength=C), "estimated_true_size_soft": est_size,
        "estimated_clean_count": est_clean,
        "estimated_noise_rate": np.where(labelled > 0, 1 - est_clean / np.maximum(labelled, 1), 0.0),
        "n_flagged": np.bincount(y[np.asarray(flags, bool)], minlength=C),
        "shot_group": shot_group(np.bincount(posterior.argmax(1), minlength=C)),
        "shot_group_labelled": shot_group(labelled),
        "at_risk": est_clean < tail_min_clean,
        "top_confusion_true_class": hidden_from,
        "top_confusion_share": np.where(labelled > 0, off[hidden_from, np.arange(C)] / np.maximum(labelled, 1), 0.0),
        "most_often_mislabeled_as": goes_to,
    })
    if true_label is not None and (np.asarray(true_label) >= 0).all():
        t = np.asarray(true_label, np.int64)
        df["true_size"] = np.bincount(t, minlength=C)
        df["true_noise_rate"] = [float(np.mean(t[y == c] != c)) if labelled[c] else 0.0 for c in range(C)]
    return df


def transition_matrix(posterior: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """T (C, C): T[c, l] = estimated P(given label l | true class c), rows sum to 1."""
    J = soft_joint(posterior, labels, n_classes) + 1e-9
    return J / J.sum(1, keepdims=True)
