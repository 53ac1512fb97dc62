"""Cross-fitted robust heads: out-of-fold probabilities from the heads of `curator.heads`.

A robust head trained on all samples has seen every sample's own label, so its probability of that
label mostly repeats it (docs/audit.md: blending in-sample head probabilities lowered AUROC and F1).
Cross-fitting fixes that the same way the audit's linear probe does (`curator.audit.crossval`, as in
confident learning, Northcutt et al. 2021): split the samples into K folds, train the head
(`curator.heads.registry.train_head`, e.g. ``lasl`` = logit adjustment + SuperLoss, paper 000 eq. 1–4;
``cbs`` = class-balanced sampling, paper 002) on K − 1 folds and predict the held-out fold.

The heads used here output class-balanced posteriors: ``lasl`` is trained on f(x) + log π and reports
softmax f(x), ``cbs``'s primary classifier sees class-balanced batches, so their probabilities are
uniform-prior posteriors, like the probe's, and can be blended with it directly.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import torch

from curator.audit.crossval import fold_assignment
from curator.device import torch_threads

LOG = logging.getLogger(__name__)
BALANCED_HEADS = ("lasl", "la", "cbs", "ldam")  # heads whose probabilities are uniform-prior posteriors


def crossfit_head_probs(name: str, X: np.ndarray, labels: np.ndarray, n_classes: int, *, folds: int = 5,
                        epochs: int = 10, seed: int = 0, threads: int = 2, heads_cfg=None) -> np.ndarray:
    """Out-of-fold probabilities of head `name`, (N, C) float32.

    X: (N, d) raw embeddings (the head standardises with its own training-fold statistics);
    labels: (N,) ints in [0, C). Every row's probabilities come from a head trained without that row.
    """
    from curator.heads.config import HeadsConfig
    from curator.heads.registry import train_head

    if name not in BALANCED_HEADS:
        raise ValueError(f"cross-fitted head must be one of {', '.join(BALANCED_HEADS)}; got {name!r}")
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if len(X) != n:
        raise ValueError(f"embeddings have {len(X)} rows but there are {n} labels")
    cfg = heads_cfg or HeadsConfig(heads=[name], epochs=epochs)
    folds, fold_of = fold_assignment(n, folds, seed + 1)
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    out = np.zeros((n, n_classes), np.float32)
    t0 = time.perf_counter()
    with torch_threads(threads):
        for k in range(folds):
            tr, te = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
            res = train_head(name, Xf[tr], y[tr], n_classes, cfg, seed=seed + k, device="cpu")
            with torch.no_grad():
                out[te] = torch.softmax(res.model(torch.from_numpy(Xf[te])), 1).float().numpy()
            LOG.info("cross-fitted %s: fold %d/%d done (%.1f s)", name, k + 1, folds, time.perf_counter() - t0)
    return out


def _fit_mlp(X_tr: torch.Tensor, y_tr: torch.Tensor, w_tr: torch.Tensor, X_te: torch.Tensor, n_classes: int, *,
             epochs: int, batch_size: int, hidden: int, lr: float, weight_decay: float, sl_lambda: float,
             seed: int) -> np.ndarray:
    """One fold: 2-FC head (paper 000 §3.2) trained with LA + SuperLoss (eq. 1–4), sample-weighted; (n_te, C)."""
    from curator.heads import losses
    from curator.heads.mlp import ProjectionHead

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ProjectionHead(X_tr.shape[1], n_classes, hidden=hidden, n_layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    log_prior = losses.log_class_prior(np.bincount(y_tr.numpy(), minlength=n_classes))
    tau = float(np.log(n_classes))
    n = len(y_tr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            b = order[s: s + batch_size]
            if len(b) < 2:
                continue
            base = losses.la_cross_entropy(model(X_tr[b]), y_tr[b], log_prior)  # (B,) eq. 2
            per = losses.superloss(base, tau, sl_lambda) if sl_lambda > 0 else base  # (B,) eq. 3
            wb = w_tr[b]
            loss = (per * wb).sum() / wb.sum().clamp_min(1e-12)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(X_te), 1).numpy()  # plain logits f(x): a uniform-prior posterior


def crossfit_mlp_probs(X: np.ndarray, labels: np.ndarray, n_classes: int, *, weights: np.ndarray | None = None,
                       folds: int = 5, epochs: int = 10, batch_size: int = 1024, hidden: int = 256,
                       lr: float = 1e-3, weight_decay: float = 1e-4, sl_lambda: float = 4.0, seed: int = 0,
                       threads: int = 2) -> np.ndarray:
    """Out-of-fold probabilities (N, C) float32 of a 2-FC MLP head trained with logit adjustment + SuperLoss.

    X: (N, d) standardised embeddings (`curator.audit.crossval.standardise`); labels (N,); weights (N,) >= 0
    (the audit's current P(label correct)) or None. Logit adjustment (paper 000 eq. 1–2) makes softmax f(x)
    a class-balanced posterior; SuperLoss (eq. 3–4, τ = log C) down-weights high-loss, likely-noisy samples.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if len(X) != n:
        raise ValueError(f"embeddings have {len(X)} rows but there are {n} labels")
    w = np.ones(n) if weights is None else np.clip(np.asarray(weights, np.float64), 1e-6, None)
    folds, fold_of = fold_assignment(n, folds, seed + 1)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt, wt = torch.from_numpy(y), torch.from_numpy(w.astype(np.float32))
    out = np.zeros((n, n_classes), np.float32)
    t0 = time.perf_counter()
    with torch_threads(threads):
        for k in range(folds):
            tr, te = torch.from_numpy(np.flatnonzero(fold_of != k)), np.flatnonzero(fold_of == k)
            out[te] = _fit_mlp(Xt[tr], yt[tr], wt[tr], Xt[te], n_classes, epochs=epochs, batch_size=batch_size,
                               hidden=hidden, lr=lr, weight_decay=weight_decay, sl_lambda=sl_lambda, seed=seed + k)
            LOG.debug("cross-fitted MLP: fold %d/%d done (%.1f s)", k + 1, folds, time.perf_counter() - t0)
    LOG.info("cross-fitted MLP head: %d folds x %d epochs on %d x %d in %.1f s", folds, epochs, n, X.shape[1],
             time.perf_counter() - t0)
    return out
