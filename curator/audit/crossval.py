"""Cross-validated, class-balanced, sample-weighted linear probe on cached embeddings.

Every training sample gets class probabilities from a model that never saw it (K-fold), as in
confident learning (Northcutt et al.; cleanlab's ``estimate_cv_predicted_probabilities``), with
two changes that make it tail-aware and self-training:

- **class-balanced loss**: each class contributes equally to the loss, so the probe estimates
  p(x | c) up to a constant (a uniform-prior posterior) instead of inheriting the labelled class
  histogram; the true prior is estimated separately (`curator.audit.aggregate.estimate_prior_em`);
- **sample weights**: in later rounds each sample is weighted by the audit's current probability
  that its label is correct, so likely-wrong labels stop teaching the probe (paper 001's
  self-training idea applied to the given labels instead of unlabelled data).

The probe is multinomial logistic regression trained full-batch with Adam in torch (a few seconds
per fold for 50k × 512 on a CPU), on L2-normalised then standardised embeddings.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from curator.device import torch_threads

LOG = logging.getLogger(__name__)
SMALL_PROBLEM = 20_000_000  # N * d below which the probe runs single-threaded


def standardise(X: np.ndarray) -> np.ndarray:
    """(N, d) -> (N, d) float32: L2-normalise rows, then z-score columns."""
    X = np.asarray(X, dtype=np.float32)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    X = X - X.mean(0, keepdims=True)
    return X / (X.std(0, keepdims=True) + 1e-6)


def fold_assignment(n: int, folds: int, seed: int) -> tuple[int, np.ndarray]:
    """(K, fold index per sample (n,)): K = folds clipped to [2, n], folds as equal as possible, seeded."""
    k = int(max(2, min(folds, n)))
    return k, np.random.default_rng(seed).permutation(np.arange(n) % k)


def _fit_predict(X_tr: torch.Tensor, Q_tr: torch.Tensor, X_te: torch.Tensor, n_classes: int, *,
                 steps: int, lr: float, weight_decay: float, seed: int) -> np.ndarray:
    """Q_tr (n_tr, C): per-sample, per-class target weights (one-hot × weight, or soft labels)."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(X_tr.shape[1], n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    Q = Q_tr / Q_tr.sum()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = -(torch.log_softmax(model(X_tr), dim=1) * Q).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return torch.softmax(model(X_te), dim=1).numpy()  # (n_te, C)


def crossval_probs(X: np.ndarray, labels: np.ndarray, n_classes: int, *, weights: np.ndarray | None = None,
                   soft_targets: np.ndarray | None = None,
                   folds: int = 5, steps: int = 150, lr: float = 0.01, weight_decay: float = 1e-3,
                   balanced: bool = True, seed: int = 0) -> np.ndarray:
    """Out-of-fold class probabilities, (N, C) float32.

    X: (N, d) standardised embeddings; labels: (N,) ints in [0, C); weights: (N,) >= 0 or None.
    soft_targets: (N, C) rows summing to 1 (the audit's current belief about each true class) replace the
    one-hot labels when given (self-training relabel). With ``balanced`` each class's target mass is equal
    inside every training fold.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if X.shape[0] != n:
        raise ValueError(f"embeddings have {X.shape[0]} rows but there are {n} labels")
    w = np.ones(n, np.float64) if weights is None else np.clip(np.asarray(weights, np.float64), 1e-6, None)
    folds, fold_of = fold_assignment(n, folds, seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    Q = np.eye(n_classes)[labels] if soft_targets is None else np.asarray(soft_targets, np.float64)  # (N, C)
    Q = Q * w[:, None]
    out = np.zeros((n, n_classes), np.float32)
    # tiny matmuls: thread start-up and spinning cost more than they save
    with torch_threads(1 if X.shape[0] * X.shape[1] < SMALL_PROBLEM else torch.get_num_threads()):
        _folds(Xt, Q, fold_of, folds, n_classes, balanced, out, steps=steps, lr=lr, weight_decay=weight_decay,
               seed=seed)
    return out


def _folds(Xt, Q, fold_of, folds, n_classes, balanced, out, **kw) -> None:
    for k in range(folds):
        tr, te = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        Qk = Q[tr]
        if balanced:
            Qk = Qk / np.maximum(Qk.sum(0, keepdims=True), 1e-12)  # every class carries the same total mass
        out[te] = _fit_predict(Xt[tr], torch.from_numpy(Qk.astype(np.float32)), Xt[te], n_classes,
                               **{**kw, "seed": kw["seed"] + k})
        LOG.debug("cross-validation fold %d/%d done", k + 1, folds)
