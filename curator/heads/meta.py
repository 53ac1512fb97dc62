"""Shared pieces of the meta-learning heads GDW (paper 003) and FSR (paper 004).

Both heads train a `curator.heads.mlp.ProjectionHead` on cached embeddings and need a *meta set*:
a trusted subset when the user has one, otherwise FSR's class-balanced **dictionary** of training
samples chosen by the momentum meta-margin (paper 004 §4.1, eq. 4–5). This module holds:

- input standardisation (`Standardize`), mini-batch index generation, soft cross-entropy;
- the class-balanced dictionary (`initial_dictionary`, `select_dictionary`, `fetch_balanced_batch`);
- the last-layer ("feature sharing", paper 004 §4.2 eq. 6) closed forms for a linear classifier
  l = F Wᵀ + b with softmax cross-entropy: the reward-batch gradient (`reward_gradient`),
  the meta-margin P(x) = L(x; Θ_t) − L(x; Θ_t*) after one SGD step on the reward loss
  (`meta_margin`), and the per-sample gradient alignment ⟨∇L_R, ∇L_i⟩ (`gradient_alignment`);
- per-sample summaries (`given_label_margin`, `mean_last`).

Shapes: N samples, d input dims, h trunk features, C classes, m reward-batch size.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Standardize(nn.Module):
    """z-score with training-set statistics, kept as buffers so the returned model predicts on new data."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)  # (d,)
        self.register_buffer("std", std)    # (d,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d) -> (N, d)
        return (x - self.mean) / self.std

    @classmethod
    def fit(cls, x: torch.Tensor) -> "Standardize":
        return cls(x.mean(0), x.std(0).clamp_min(1e-6))


def check_inputs(X, y, n_classes: int, meta_mask=None, *, head: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate once in the public function (STYLE): X (N, d) finite, y (N,) in [0, C)."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{head}: X must be (N, d) and y (N,), got X {X.shape} and y {y.shape}")
    if X.shape[0] < 2:
        raise ValueError(f"{head}: need at least 2 samples, got {X.shape[0]}")
    if n_classes < 2:
        raise ValueError(f"{head}: n_classes must be >= 2, got {n_classes}")
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if bad.size:
        raise ValueError(f"{head}: label {int(y[bad[0]])} of sample {int(bad[0])} is outside [0, {n_classes})"
                         f" ({bad.size} such samples)")
    X = np.array(X, dtype=np.float32)  # own, writable copy
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(1))[0])
        raise ValueError(f"{head}: embedding row {row} contains NaN or inf")
    if meta_mask is not None:
        meta_mask = np.asarray(meta_mask, dtype=bool)
        if meta_mask.shape != y.shape:
            raise ValueError(f"{head}: meta_mask must be (N,) = {y.shape}, got {meta_mask.shape}")
        if not meta_mask.any():
            raise ValueError(f"{head}: meta_mask selects no sample")
    return X, np.array(y, dtype=np.int64), meta_mask


def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One shuffled epoch of index batches; a last batch of one sample is merged (BatchNorm needs 2)."""
    order = rng.permutation(n)
    out = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(out) > 1 and len(out[-1]) < 2:
        out[-2] = np.concatenate([out[-2], out.pop()])
    return out


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample −Σ_j target_j log softmax(logits)_j; (N, C), (N, C) -> (N,)."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1)


# ---------------------------------------------------------------------------------------------
# class-balanced dictionary (paper 004 §4.1, Algorithm 1)

def class_quota(labels: np.ndarray, n_classes: int, per_class: int, max_class_fraction: float) -> np.ndarray:
    """Dictionary slots per class: min(per_class, ceil(fraction · n_c)), at least 1 for non-empty classes.

    The cap keeps a tail class from putting *all* its samples (noisy ones included) into the dictionary.
    """
    counts = np.bincount(labels, minlength=n_classes)
    cap = np.ceil(max_class_fraction * counts).astype(np.int64)
    quota = np.minimum(per_class, np.maximum(cap, 1))
    return np.where(counts > 0, quota, 0)


def initial_dictionary(labels: np.ndarray, n_classes: int, per_class: int, *, max_class_fraction: float = 0.5,
                       rng: np.random.Generator) -> np.ndarray:
    """R_0 = BalancedSampleBatch(D, |R|) (Algorithm 1): a random class-balanced sample, sorted indices."""
    quota = class_quota(labels, n_classes, per_class, max_class_fraction)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=quota[c], replace=False) for c in range(n_classes) if quota[c]]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def select_dictionary(scores: np.ndarray, labels: np.ndarray, n_classes: int, per_class: int, *,
                      max_class_fraction: float = 0.5, eligible: np.ndarray | None = None) -> np.ndarray:
    """R* = argmax_R Σ_{x∈R} P̂(x) under a per-class quota (paper 004 eq. 4): the top-scored samples of each
    class by `scores` (higher = better, e.g. the momentum meta-margin). Returns sorted indices.

    ``eligible`` (N,) bool, optional: rank eligible samples first (curator's guard: samples whose current
    prediction equals their label), filling a class's quota from the rest only when too few are eligible.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if eligible is not None:  # eligible samples always outrank ineligible ones
        scores = np.where(eligible, scores, scores - (np.ptp(scores) + 1.0) * 2)
    quota = class_quota(labels, n_classes, per_class, max_class_fraction)
    chosen = []
    for c in range(n_classes):
        if not quota[c]:
            continue
        idx = np.flatnonzero(labels == c)
        top = np.argsort(-scores[idx], kind="stable")[: quota[c]]
        chosen.append(idx[top])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def fetch_balanced_batch(dictionary: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """FetchBalancedBatch(R, q): ≈ size / (#classes in R) samples of every class present in R."""
    classes = np.unique(labels[dictionary])
    per = max(1, size // len(classes))
    out = []
    for c in classes:
        members = dictionary[labels[dictionary] == c]
        out.append(rng.choice(members, size=min(per, len(members)), replace=False))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# last-layer closed forms (paper 004 §4.2: Θ^meta = the FC layer only)

def reward_gradient(feats_r: torch.Tensor, probs_r: torch.Tensor, target_r: torch.Tensor, *,
                    normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """∇_{W,b} of the mean reward loss (1/m) Σ CE for l = F Wᵀ + b.

    feats_r (m, h), probs_r (m, C) = softmax(l_r), target_r (m, C) one-hot/soft -> G_W (C, h), G_b (C,).
    With ``normalize`` each reward sample's logit gradient p − y is scaled to unit length first, so every
    dictionary member contributes a direction of equal size and a few mislabeled members (whose gradients
    are the largest) cannot dominate the reward signal (curator's robustification, off in the paper).
    """
    d1 = probs_r - target_r  # (m, C) = ∂L/∂l per reward sample
    if normalize:
        d1 = d1 / d1.norm(dim=1, keepdim=True).clamp_min(1e-8)
    d1 = d1 / feats_r.shape[0]
    return d1.T @ feats_r, d1.sum(0)


def meta_margin(feats: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                grad_w: torch.Tensor, grad_b: torch.Tensor, lr: float) -> torch.Tensor:
    """P(x) = L(x; Θ_t) − L(x; Θ_t*) (paper 004 eq. 5), Θ_t* = Θ_t − lr·∇L_R (one SGD step on the reward loss
    through the last layer). Positive: the sample's loss drops when the model learns the trusted reward data,
    i.e. it agrees with it (clean); negative: its loss rises (likely mislabeled).

    feats (N, h), logits (N, C) at Θ_t, target (N, C), grad_w (C, h), grad_b (C,) -> (N,).
    """
    logits_star = logits - lr * (feats @ grad_w.T + grad_b)  # (N, C): logits under Θ_t*
    return soft_cross_entropy(logits, target) - soft_cross_entropy(logits_star, target)


def gradient_alignment(feats: torch.Tensor, probs: torch.Tensor, target: torch.Tensor,
                       grad_w: torch.Tensor, grad_b: torch.Tensor) -> torch.Tensor:
    """⟨∇_Θ L_R, ∇_Θ L_i⟩ over the last layer, for every sample at once (paper 004 eq. 6, last row).

    ∇_W L_i = (p_i − y_i) f_iᵀ and ∇_b L_i = p_i − y_i, so the inner product is (p_i − y_i)·(G_W f_i + G_b).
    feats (N, h), probs (N, C), target (N, C) -> (N,).
    """
    return ((probs - target) * (feats @ grad_w.T + grad_b)).sum(1)


# ---------------------------------------------------------------------------------------------
# per-sample summaries

def given_label_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logit of the given label minus the largest other logit; (N, C), (N,) -> (N,). Higher = clean."""
    given = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return given - others.max(1).values


def mean_last(history: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last k rows of an (E, N) record -> (N,) float32."""
    return history[-max(1, min(k, len(history))):].mean(0).astype(np.float32)
