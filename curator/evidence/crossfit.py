"""Cross-fitting: every sample is predicted by a model that was fitted without it.

One fold assignment (`fold_assignment`, stratified by the given label and seeded) and one routine
(`crossfit`) serve everything out-of-fold in curator: the audit's linear probe
(`curator.evidence.probe`) and any head fitted out-of-fold (confident learning, Northcutt et al. 2021,
uses the same scheme for its out-of-sample probabilities).
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

LOG = logging.getLogger(__name__)

#: fit on rows `train`, predict rows `test`, for fold `k`: (len(test), C) probabilities
FitPredict = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index (N,) int16 for every sample: folds as equal as possible and stratified by label.

    Samples are ordered by label (random order inside a label, from `seed`) and dealt round-robin, so every
    class is spread evenly over the folds — a class of 7 samples with 5 folds has 1–2 per fold, and each
    training split keeps most of a rare class. `folds` is clipped to [2, N].
    """
    labels = np.asarray(labels)
    n = len(labels)
    k = int(max(2, min(folds, n)))
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), labels))      # by label, random inside a label
    out = np.empty(n, np.int16)
    out[order] = np.arange(n) % k
    return out


def crossfit(fit_predict: FitPredict, folds: np.ndarray, n_classes: int) -> np.ndarray:
    """Out-of-fold predictions (N, C) float32: for each fold k, `fit_predict(train, test, k)` on the other folds."""
    folds = np.asarray(folds)
    out = np.zeros((len(folds), n_classes), np.float32)
    for k in np.unique(folds):
        test = np.flatnonzero(folds == k)
        train = np.flatnonzero(folds != k)
        out[test] = fit_predict(train, test, int(k))
        LOG.debug("cross-fitting: fold %d done (%d held out)", int(k), len(test))
    return out
