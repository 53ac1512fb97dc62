"""The class-balanced, sample-weighted linear probe whose out-of-fold probabilities are the audit's evidence.

Every training sample gets class probabilities from a probe that never saw it (`curator.evidence.crossfit`),
as in confident learning (Northcutt et al. 2021; cleanlab's ``estimate_cv_predicted_probabilities``), with
two changes that make it tail-aware:

- **class-balanced loss**: inside every training split each class carries the same total loss mass, so the
  probe estimates p(x | c) up to a constant (a uniform-prior posterior) instead of inheriting the labelled
  class histogram; the audit estimates the true prior separately (`curator.audit.aggregate`);
- **sample weights**: the audit re-fits the probe with each sample weighted by its current probability of a
  correct label, so likely-wrong labels stop teaching it (`Evidence.refit`).

The probe is multinomial logistic regression, ``Linear(d, C)``, trained with a fixed number of Adam steps in
torch on the standardised features (`standardise`), on the GPU when there is one (`curator.device.select_device`).
Each step sees a batch of at most ``batch_size`` rows drawn without replacement (the whole training split when it
is smaller), so a fold costs the same at 50,000 rows as at a million; only predicting the held-out fold grows
with N. Measured on CIFAR-10N (docs/signals.md, "The probe's batch"): 150 steps on batches of 8,192 detect as well as
150 full-batch steps on 40,000 rows, and batches of 4,096 (the default since issue 23: half the cost) as well as 8,192.

How strongly the probe is regularised depends on the data: the weight decay that suits 50,000 rows of 512
dimensions overfits 2,000 rows of 1,280 (out-of-fold accuracy against the truth 0.63 instead of 0.70 on a CIFAR-10
folder). `select_weight_decay` picks it from a few candidates by the class-balanced likelihood of the given labels
on one held-out fold — held-out likelihood, the usual way to choose a regulariser (docs/signals.md, "The probe's
weight decay").
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from curator.device import compute_threads, select_device, torch_threads
from curator.evidence.crossfit import crossfit

def standardise(X: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """The one normalisation of the embeddings (N, d) -> (N, d) float32: L2-normalise rows, then z-score columns.

    A new float32 array (the input, float16 or memory-mapped, is only read), computed in row chunks so that no
    other (N, d) temporary exists: one copy of the features is the peak memory.
    """
    X = np.array(X, dtype=np.float32, order="C")
    n = len(X)
    total = np.zeros(X.shape[1], np.float64)
    for s in range(0, n, chunk):
        block = X[s:s + chunk]
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        total += block.sum(0, dtype=np.float64)
    mean = (total / max(n, 1)).astype(np.float32)
    sq = np.zeros(X.shape[1], np.float64)
    for s in range(0, n, chunk):
        block = X[s:s + chunk]
        block -= mean
        sq += np.square(block, dtype=np.float64).sum(0)
    std = np.sqrt(sq / max(n, 1)).astype(np.float32) + np.float32(1e-6)
    for s in range(0, n, chunk):
        X[s:s + chunk] /= std
    return X


@dataclass(frozen=True)
class ProbeSettings:
    steps: int = 150            # Adam steps per fold
    batch_size: int = 4096      # rows per step (the whole training split when it is smaller)
    lr: float = 0.01
    weight_decay: float = 1e-3
    refit_steps: int = 75       # a re-fit that starts from the same fold's previous re-fit (`oof_probs` ``init``)


def _fit_predict(X: torch.Tensor, train: torch.Tensor, test: torch.Tensor, Q_tr: torch.Tensor, n_classes: int,
                 settings: ProbeSettings, seed: int, chunk: int = 65_536,
                 init: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[np.ndarray, tuple[torch.Tensor, torch.Tensor]]:
    """Fit on the rows `train` of X (N, d) with per-class target mass Q_tr (n_tr, C); softmax probabilities
    (n_te, C) of the rows `test`, and the fitted (weight (C, d), bias (C,)). Rows are gathered per batch, never as a
    copy of a whole split (at 1M × 512 a training split would be 1.6 GB more). With `init` (a weight and bias) the
    fit starts there and takes ``settings.refit_steps`` steps instead of ``settings.steps``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)            # batch order, on the CPU whatever the device
    model = torch.nn.Linear(X.shape[1], n_classes).to(X.device)
    steps = settings.steps
    if init is not None:
        with torch.no_grad():
            model.weight.copy_(init[0])
            model.bias.copy_(init[1])
        steps = settings.refit_steps
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    n = len(train)
    b = min(settings.batch_size, n)
    Q = Q_tr * (n / (b * Q_tr.sum()))                    # a batch's expected loss is the full split's
    order, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if b == n:
            pick = torch.arange(n)
        else:
            if pos + b > n:
                order, pos = torch.randperm(n, generator=gen), 0
            pick = order[pos:pos + b]
            pos += b
        pick = pick.to(X.device)
        xb, qb = X[train[pick]], Q[pick]
        opt.zero_grad(set_to_none=True)
        loss = -(torch.log_softmax(model(xb), dim=1) * qb).sum()
        loss.backward()
        opt.step()
    out = np.empty((len(test), n_classes), np.float32)
    with torch.no_grad():
        for s in range(0, len(test), chunk):
            out[s:s + chunk] = torch.softmax(model(X[test[s:s + chunk]]), dim=1).float().cpu().numpy()
    return out, (model.weight.detach().clone(), model.bias.detach().clone())


def held_out_nll(P: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Class-balanced negative log-likelihood of the given `labels` (n,) under probabilities P (n, C): the mean over
    the classes present of each class's mean −log p(label). Class-balanced because the probe is (a rare class counts
    as much as a large one, as in its loss)."""
    y = np.asarray(labels, np.int64)
    nll = -np.log(np.maximum(np.asarray(P, np.float64)[np.arange(len(y)), y], 1e-12))
    per_class = [nll[y == c].mean() for c in range(n_classes) if np.any(y == c)]
    return float(np.mean(per_class)) if per_class else float("nan")


def select_weight_decay(X: np.ndarray, labels: np.ndarray, n_classes: int, folds: np.ndarray, settings: ProbeSettings,
                        candidates: list[float], *, seed: int = 0,
                        device: str | torch.device | None = None) -> tuple[float, dict[float, float]]:
    """The candidate weight decay whose probe, fitted on every fold but fold 0, gives fold 0's given labels the lowest
    class-balanced negative log-likelihood (`held_out_nll`); ties go to the first (the weakest, when the candidates
    ascend). Returns (weight decay, {candidate: held-out NLL}). One candidate: itself, nothing fitted.

    Fold 0 is fitted exactly as `oof_probs` fits it (the same `_fold_fitter`, seed and settings), so the choice costs
    one fold's fit per candidate (150 Adam steps on at most ``batch_size`` rows each: the same at any N)."""
    candidates = [float(c) for c in candidates]
    if len(candidates) == 1:
        return candidates[0], {}
    labels = np.asarray(labels, dtype=np.int64)
    test, train = np.flatnonzero(np.asarray(folds) == 0), np.flatnonzero(np.asarray(folds) != 0)
    fit, threads = _fold_fitter(X, labels, n_classes, seed=seed, device=device)
    scores: dict[float, float] = {}
    with threads:
        for wd in candidates:
            scores[wd] = held_out_nll(fit(train, test, 0, replace(settings, weight_decay=wd)), labels[test], n_classes)
    best = min(candidates, key=lambda c: (scores[c] if np.isfinite(scores[c]) else np.inf, candidates.index(c)))
    return best, scores


def oof_probs(X: np.ndarray, labels: np.ndarray, n_classes: int, folds: np.ndarray, settings: ProbeSettings, *,
              weights: np.ndarray | None = None, balanced: bool = True, seed: int = 0,
              device: str | torch.device | None = None, init: dict | None = None,
              fitted: dict | None = None) -> np.ndarray:
    """Out-of-fold class probabilities (N, C) float32 of the probe.

    X: (N, d) standardised features; labels (N,) in [0, C); folds (N,) from `fold_assignment`;
    weights (N,) ≥ 0 or None (all 1). With ``balanced`` every class carries the same target mass inside each
    training split. Fold k is fitted with seed ``seed + k``. `fitted`, when given, receives fold k's fitted
    (weight, bias) under key k; `init` (such a dict from an earlier call on the same folds) starts fold k there, with
    ``settings.refit_steps`` steps (the audit's later self-training rounds: the weights change little between rounds).
    """
    fit, threads = _fold_fitter(X, labels, n_classes, weights=weights, balanced=balanced, seed=seed, device=device,
                                init=init, fitted=fitted)
    with threads:
        return crossfit(lambda train, test, k: fit(train, test, k, settings), folds, n_classes)


def _fold_fitter(X: np.ndarray, labels: np.ndarray, n_classes: int, *, weights: np.ndarray | None = None,
                 balanced: bool = True, seed: int = 0, device: str | torch.device | None = None,
                 init: dict | None = None, fitted: dict | None = None):
    """(fit, threads): `fit(train, test, k, settings)` fits fold k of the probe on the rows `train` (seed ``seed + k``,
    class-balanced target mass when ``balanced``, from ``init[k]`` when given, its model kept in ``fitted[k]``) and
    returns the probabilities (len(test), C) of the rows `test`; the features are on the device once for every fold
    and setting. `threads` is the context to run the fits in (`oof_probs` documents the arguments)."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if X.shape[0] != n:
        raise ValueError(f"features have {X.shape[0]} rows but there are {n} labels")
    w = np.ones(n, np.float64) if weights is None else np.clip(np.asarray(weights, np.float64), 1e-6, None)
    Q = np.zeros((n, n_classes), np.float64)
    Q[np.arange(n), labels] = w                                          # (N, C) one-hot × weight
    dev = select_device(str(device) if device is not None else None)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(dev)

    def fit(train: np.ndarray, test: np.ndarray, k: int, settings: ProbeSettings) -> np.ndarray:
        Qk = Q[train]
        if balanced:  # every class carries the same total mass
            Qk = Qk / np.maximum(Qk.sum(0, keepdims=True), 1e-12)
        tr, te = torch.from_numpy(train).to(dev), torch.from_numpy(test).to(dev)
        out, model = _fit_predict(Xt, tr, te, torch.from_numpy(Qk.astype(np.float32)).to(dev), n_classes, settings,
                                  seed + k, init=None if init is None else init[k])
        if fitted is not None:
            fitted[k] = model
        return out

    return fit, torch_threads(compute_threads(dev, X.shape[0] * X.shape[1]))
