"""Sanity diagnostics of an audit: can the embeddings tell the classes apart at all?

Label noise and uninformative embeddings look the same to any audit that learns from the noisy labels:
in both cases an image-only classifier disagrees with many given labels. A run whose embeddings barely
separate the classes (e.g. pre-training stopped after a few epochs) therefore flags most of a *clean*
dataset. The audit cannot tell the two apart, but it can say so: when more than half of the labels are
believed wrong, `audit_diagnostics` returns a warning that names both explanations and the numbers behind it,
which the CLI prints, ``diagnostics.json`` keeps and the report shows at the top.
"""
from __future__ import annotations

import numpy as np

FLAGGED_SHARE_WARNING = 0.5  # more labels believed wrong than right


def audit_diagnostics(labels: np.ndarray, class_posterior: np.ndarray, flags: np.ndarray) -> dict:
    """labels (N,) given labels; class_posterior (N, C) p(c | x) ignoring the label; flags (N,) bool.

    Returns ``flagged_share``, ``label_agreement`` (share of samples whose image-only most probable class is the
    given label), ``chance_agreement`` (the largest class share: what always guessing that class agrees) and
    ``warnings`` (a list of sentences, empty when nothing looks wrong).
    """
    y = np.asarray(labels, np.int64)
    n = len(y)
    if n == 0:
        return {"flagged_share": 0.0, "label_agreement": None, "chance_agreement": None, "warnings": []}
    flagged = float(np.mean(np.asarray(flags, bool)))
    agreement = float(np.mean(np.asarray(class_posterior).argmax(1) == y))
    chance = float(np.bincount(y).max() / n)
    warnings = []
    if flagged > FLAGGED_SHARE_WARNING:
        warnings.append(
            f"{100 * flagged:.0f}% of the labels are flagged as wrong. Either most labels really are wrong, or the "
            f"embeddings do not separate the classes: ignoring the labels, the audit's most probable class agrees "
            f"with the given label for only {100 * agreement:.0f}% of samples (always guessing the largest class: "
            f"{100 * chance:.0f}%). Check the embeddings before acting on these flags (the pre-training kNN monitor "
            f"in the log; more pre-training epochs; or --embeddings from a stronger model).")
    return {"flagged_share": flagged, "label_agreement": agreement, "chance_agreement": chance, "warnings": warnings}
