"""Shared pieces of the meta-learning heads GDW (paper 003) and FSR (paper 004).

Both heads train a `curator.heads.mlp.ProjectionHead` on standardised embeddings and need a *meta set*:
a trusted subset when the user has one, otherwise FSR's class-balanced **dictionary** of training
samples chosen by the momentum meta-margin (paper 004 §4.1, eq. 4–5). This module holds:

- soft cross-entropy and the cosine learning-rate schedule both loops use;
- the class-balanced dictionary (`initial_dictionary`, `select_dictionary`, `class_groups`, `fetch_balanced_batch`) and
  its momentum meta-margin tracking (`MomentumDictionary`);
- the last-layer ("feature sharing", paper 004 §4.2 eq. 6) closed forms for a linear classifier
  l = F Wᵀ + b with softmax cross-entropy: the reward-batch gradient (`reward_gradient`),
  the meta-margin P(x) = L(x; Θ_t) − L(x; Θ_t*) after one SGD step on the reward loss
  (`meta_margin`), and the per-sample gradient alignment ⟨∇L_R, ∇L_i⟩ (`gradient_alignment`).

Input validation, standardisation, batching, the given-label margin and the last-epochs mean are the
ones every head shares (`curator.heads.inputs`, `train_loop`, `records`).

Shapes: N samples, d input dims, h trunk features, C classes, m reward-batch size.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from curator.heads.mlp import ProjectionHead, eval_chunks


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample −Σ_j target_j log softmax(logits)_j; (N, C), (N, C) -> (N,)."""
    return -(target * F.log_softmax(logits, dim=1)).sum(1)


def set_cosine_lr(opt: torch.optim.Optimizer, base_lr: float, step: int, total: int) -> float:
    """Set `opt`'s learning rate to ½·base_lr·(1 + cos(π·step/total)) (cosine decay, paper 003 App. C,
    paper 004 §5) and return it."""
    lr = 0.5 * base_lr * (1 + math.cos(math.pi * step / total))
    for group in opt.param_groups:
        group["lr"] = lr
    return lr


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


class MomentumDictionary:
    """FSR's class-balanced dictionary R, re-chosen every epoch by the momentum meta-margin (paper 004 §4.1).

    Starts as a random class-balanced sample (Algorithm 1: R_0 = BalancedSampleBatch). Each `update`
    computes, for every sample, P(x) = L(x; Θ_t) − L(x; Θ_t*) (eq. 5), Θ_t* = the last layer after one
    SGD step of size `step` on the dictionary loss; averages it with momentum, P̂_t = λP̂_{t−1} + (1 − λ)P_t,
    bias-corrected for the zero start; and re-chooses R as the top-P̂ samples of each class under the
    per-class quota (eq. 4). With `gate`, samples the head predicts as their label outrank the others
    (curator's guard, docs/gdw_fsr.md). `candidates` (e.g. the trusted rows) restricts R; default: all.
    """

    def __init__(self, labels: np.ndarray, n_classes: int, *, per_class: int, max_class_fraction: float,
                 momentum: float, step: float, normalize_reward: bool, gate: bool, rng: np.random.Generator,
                 candidates: np.ndarray | None = None):
        self.labels, self.n_classes = labels, n_classes
        self.per_class, self.max_class_fraction = per_class, max_class_fraction
        self.momentum, self.step, self.normalize_reward, self.gate = momentum, step, normalize_reward, gate
        self.candidates = np.arange(len(labels)) if candidates is None else np.asarray(candidates)
        self.pool = self.candidates[initial_dictionary(labels[self.candidates], n_classes, per_class,
                                                       max_class_fraction=max_class_fraction, rng=rng)]
        self.groups = class_groups(self.pool, labels)     # the pool's members per class (fetch_balanced_batch)
        self.margin_hat = np.zeros(len(labels), np.float64)
        self.updates = 0

    def update(self, model: ProjectionHead, X: torch.Tensor, onehot: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """One epoch's P for all samples of X (N, d) under `model` (eval mode), with one-hot labels (N, C);
        re-chooses `pool` and returns (the bias-corrected P̂ (N,) float64, > 0: agrees with the dictionary;
        the logits (N, C)). Features are computed chunk by chunk (`eval_chunks`), never held for all N."""
        pool = self.pool
        reward = eval_chunks(model, X[torch.as_tensor(pool, device=X.device)], lambda _, f, lg: (f, lg))
        feats_r, logits_r = (torch.cat(parts) for parts in zip(*reward))
        gw, gb = reward_gradient(feats_r, torch.softmax(logits_r, 1), onehot[pool], normalize=self.normalize_reward)
        parts = eval_chunks(model, X, lambda s, f, lg: (lg, meta_margin(f, lg, onehot[s:s + len(lg)], gw, gb,
                                                                           self.step)))
        logits = torch.cat([lg for lg, _ in parts])
        p = torch.cat([m for _, m in parts]).cpu().numpy()
        self.margin_hat = self.momentum * self.margin_hat + (1 - self.momentum) * p
        self.updates += 1
        corrected = self.margin_hat / (1 - self.momentum ** self.updates)
        cand = self.candidates
        eligible = (logits.argmax(1).cpu().numpy() == self.labels)[cand] if self.gate else None
        self.pool = cand[select_dictionary(corrected[cand], self.labels[cand], self.n_classes, self.per_class,
                                           max_class_fraction=self.max_class_fraction, eligible=eligible)]
        self.groups = class_groups(self.pool, self.labels)
        return corrected, logits


def class_groups(dictionary: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """The members of R (indices) of every class present in R: class order, R's order within a class."""
    lab = labels[dictionary]
    return [dictionary[lab == c] for c in np.unique(lab)]


def fetch_balanced_batch(dictionary: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator,
                         groups: list[np.ndarray] | None = None) -> np.ndarray:
    """FetchBalancedBatch(R, q): ≈ size / (#classes in R) samples of every class present in R.

    ``groups`` = `class_groups` (R, labels) when the caller already holds it (R changes once an epoch, batches
    are drawn hundreds of times in between)."""
    groups = class_groups(dictionary, labels) if groups is None else groups
    per = max(1, size // len(groups))
    return np.concatenate([rng.choice(members, size=min(per, len(members)), replace=False) for members in groups])


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
