"""Confident-learning style signals from cross-validated probabilities (SPEC §5, issue 4 item 6).

Peers (cleanlab) score label quality from out-of-fold probabilities of a simple classifier;
curator computes the same from the same embeddings so the two can be compared on identical
inputs:

- `cross_val_probs`: K-fold (stratified) out-of-fold class probabilities of a multinomial
  logistic regression on standardised embeddings. Two engines give the same model
  (mean cross-entropy + ||W||² / (2·C_reg·n)): scikit-learn's LogisticRegression (lbfgs) and
  curator's float32 softmax regression (numpy gradient, scipy L-BFGS-B), the fast path on
  50k × 512 (see docs/signals.md for measured times).
- `confident_learning`: the confident-joint off-diagonal rule of Northcutt, Jiang & Chuang,
  *Confident Learning* (JAIR 2021, eq. 1–2): per-class thresholds t_j = mean of p_j over samples
  labelled j; sample x with given label ỹ is counted at (ỹ, j*) where
  j* = argmax_{j : p_j(x) ≥ t_j} p_j(x); it is an issue when j* ≠ ỹ.
"""
from __future__ import annotations

import logging
import time

import numpy as np

LOG = logging.getLogger(__name__)

CV_METHODS = ("auto", "lbfgs", "sklearn")
BLAS_THREADS = 1   # threads for the cross-validation fits (see cross_val_probs)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    sd[sd == 0] = 1.0
    return [(a - mu) / sd for a in (train, *others)]


def fit_softmax_regression(x: np.ndarray, y: np.ndarray, n_classes: int, *, c_reg: float = 1.0,
                           max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by L-BFGS (scipy) with a float32 numpy gradient.

    Minimises mean_i CE(W x_i + b, y_i) + ||W||² / (2·c_reg·n), the objective of
    sklearn's LogisticRegression(C=c_reg) divided by n. x: (n, d); y: (n,) in 0..C−1.
    Returns W (C, d) float32, b (C,) float32.
    """
    from scipy.optimize import minimize

    x = np.ascontiguousarray(x, dtype=np.float32)                       # (n, d)
    y = np.asarray(y, dtype=np.int64)
    n, d = x.shape
    onehot = np.zeros((n, n_classes), np.float32)                       # (n, C)
    onehot[np.arange(n), y] = 1.0
    penalty = 1.0 / (c_reg * n)

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        wb = theta.astype(np.float32).reshape(n_classes, d + 1)
        w, b = wb[:, :d], wb[:, d]
        logits = x @ w.T + b                                            # (n, C)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        z = p.sum(axis=1, keepdims=True)
        p /= z
        ce = float(np.mean(np.log(z[:, 0]) - logits[np.arange(n), y]))
        r = (p - onehot) / n                                            # (n, C) dCE/dlogits
        gw = r.T @ x + penalty * w                                      # (C, d)
        gb = r.sum(axis=0)                                              # (C,)
        loss = ce + 0.5 * penalty * float((w.astype(np.float64) ** 2).sum())
        return loss, np.concatenate([gw, gb[:, None]], axis=1).ravel().astype(np.float64)

    res = minimize(loss_grad, np.zeros(n_classes * (d + 1)), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-6})
    wb = res.x.astype(np.float32).reshape(n_classes, d + 1)
    return wb[:, :d], wb[:, d]


def _predict_softmax(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    logits = np.asarray(x, dtype=np.float32) @ w.T + b                  # (n, C)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _fit_predict_sklearn(xtr, ytr, xte, n_classes, *, c_reg, max_iter, seed) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c_reg, max_iter=max_iter, random_state=seed)
    clf.fit(xtr, ytr)
    out = np.zeros((len(xte), n_classes), np.float32)
    out[:, clf.classes_] = clf.predict_proba(xte)                      # classes absent from the fold get 0
    return out


def cross_val_probs(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, *, folds: int = 5,
                    method: str = "auto", c_reg: float = 1.0, max_iter: int = 100, seed: int = 0) -> np.ndarray:
    """Out-of-fold class probabilities (N, C) float32 of a logistic regression on standardised embeddings.

    Folds are stratified by the given label (StratifiedKFold, shuffled with `seed`); a class with
    fewer members than folds is spread over as many folds as it has members. `method`: "lbfgs"
    (curator's float32 softmax regression, the default for "auto") or "sklearn".
    """
    from sklearn.model_selection import StratifiedKFold

    if method not in CV_METHODS:
        raise ValueError(f"unknown cross-validation method {method!r}; use one of {CV_METHODS}")
    x = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} embedding rows but {len(y)} labels")
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if len(bad):
        raise ValueError(f"sample at row {int(bad[0])} has label {int(y[bad[0]])} outside 0..{n_classes - 1}")
    folds = int(min(folds, max(2, np.bincount(y).max())))
    if method == "auto":  # the float32 L-BFGS is the fast path (measured: docs/signals.md)
        method = "lbfgs"
    probs = np.zeros((len(x), n_classes), np.float32)
    t0 = time.perf_counter()
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    from threadpoolctl import threadpool_limits

    # Single-threaded BLAS: on a busy machine OpenBLAS's spinning threads made a 1,797 x 64 fit
    # ~100x slower and a 40,000 x 512 fit 3-5x slower than one thread (measured: docs/signals.md).
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        for f, (tr, te) in enumerate(splits):
            xtr, xte = _standardise(x[tr], x[te])
            if method == "sklearn":
                probs[te] = _fit_predict_sklearn(xtr, y[tr], xte, n_classes, c_reg=c_reg, max_iter=max_iter, seed=seed)
            else:
                w, b = fit_softmax_regression(xtr, y[tr], n_classes, c_reg=c_reg, max_iter=max_iter)
                probs[te] = _predict_softmax(xte, w, b)
            LOG.debug("cross-validation fold %d/%d done", f + 1, folds)
    LOG.info("%d-fold cross-validated logistic regression (%s) on %s in %.1f s", folds,
             method, x.shape, time.perf_counter() - t0)
    return probs


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


def confident_joint(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(C, C) counts C[ỹ, j*] of the confident joint (rows: given label, columns: confident class)."""
    n_classes = probs.shape[1]
    j_star = confident_assignment(probs, labels)
    ok = j_star >= 0
    cj = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cj, (labels[ok], j_star[ok]), 1)
    return cj


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

