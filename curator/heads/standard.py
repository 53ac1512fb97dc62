"""Heads that differ only in their loss: ``ce``, ``la``, ``lasl``, ``cb``, ``focal``, ``ldam``.

All train a `curator.heads.mlp.ProjectionHead` (2 FC layers by default, paper 000 §3.2) on
standardised embeddings with the shared trainer (`curator.heads.train_loop.fit`).

- ``ce``: cross-entropy baseline.
- ``la``: Logit-Adjusted cross-entropy (paper 000 eq. 1-2), π = labelled class frequencies.
- ``lasl``: LA + SuperLoss (paper 000 eq. 3-4), τ = log C (or a running mean of ℓ), λ = 4; records
  σ* per sample and epoch (``sigma``) and outputs ``lasl_sigma`` (mean over the last epochs).
- ``cb``: class-balanced cross-entropy, weights 1/E_n, β = 0.9999 (Cui et al., paper 001's baseline).
- ``focal``: focal loss, γ = 1 (Lin et al.).
- ``ldam``: LDAM on cosine logits (normalised last layer, scale s = 30) with deferred re-weighting
  (DRW: class-balanced weights after `drw_start` of the epochs) (Cao et al.; paper 001's LDAM-DRW).

Probabilities are the softmax of the plain logits f(x) (for ``la``/``lasl`` the adjustment is a
training device; f(x) is the balanced predictor the paper tests), so tail-class samples are not
penalised for their class's rarity.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curator.heads import losses
from curator.heads.base import HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.mlp import ProjectionHead
from curator.heads.train_loop import Objective, common_signals, fit, last_mean

STANDARD_HEADS = ("ce", "la", "lasl", "cb", "focal", "ldam")


def class_counts(y: torch.Tensor | np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    return np.bincount(y[y >= 0], minlength=n_classes)[:n_classes]


def resolve_tau(tau, n_classes: int) -> float | None:
    """τ = log C for "logC", a number as given, None for "mean" (running mean, set during training)."""
    if tau == "logC":
        return math.log(n_classes)
    if tau == "mean":
        return None
    return float(tau)


class CrossEntropy(Objective):
    pass


class LogitAdjusted(Objective):
    """Paper 000 eq. 1-2."""

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.log_prior = losses.log_class_prior(class_counts(y, n_classes)).to(X.device)

    def per_sample_loss(self, logits, targets):
        return losses.la_cross_entropy(logits, targets, self.log_prior)


class LogitAdjustedSuperLoss(LogitAdjusted):
    """Paper 000 eq. 3 on top of eq. 2; σ* (eq. 4) recorded for every sample each epoch."""

    def __init__(self, lam: float, tau, momentum: float = 0.9):
        self.lam, self.tau_setting, self.momentum = lam, tau, momentum

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.tau = resolve_tau(self.tau_setting, n_classes)

    def batch_loss(self, model, take, y, batch):
        idx = torch.as_tensor(batch, device=y.device)
        base = self.per_sample_loss(model(take(batch)), y[idx])  # (B,) LA loss
        if self.tau_setting == "mean":  # running mean of the loss (SuperLoss paper's alternative)
            m = float(base.detach().mean())
            self.tau = m if self.tau is None else self.momentum * self.tau + (1 - self.momentum) * m
        return losses.superloss(base, self.tau, self.lam).mean()

    def record(self, logits, y):
        rec = super().record(logits, y)
        tau = self.tau if self.tau is not None else math.log(self.n_classes)
        rec["sigma"] = losses.superloss_sigma(rec["loss"], tau, self.lam)
        return rec


class ClassBalanced(Objective):
    def __init__(self, beta: float):
        self.beta = beta

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.weight = losses.class_balanced_weights(class_counts(y, n_classes), self.beta).to(X.device)

    def per_sample_loss(self, logits, targets):
        return F.cross_entropy(logits, targets, weight=self.weight, reduction="none")


class Focal(Objective):
    def __init__(self, gamma: float):
        self.gamma = gamma

    def per_sample_loss(self, logits, targets):
        return losses.focal_loss(logits, targets, self.gamma)


class NormedLinear(nn.Module):
    """Cosine classifier: cos(feature, w_c) for every class (LDAM's normalised last layer). (N, h) -> (N, C)"""

    def __init__(self, d: int, n_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, d) * d ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).T


class LDAMDRW(Objective):
    def __init__(self, max_margin: float, scale: float, drw_start: float, beta: float):
        self.max_margin, self.scale, self.drw_start, self.beta = max_margin, scale, drw_start, beta

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        counts = class_counts(y, n_classes)
        self.margins = losses.ldam_margins(counts, self.max_margin).to(X.device)
        self.cb_weight = losses.class_balanced_weights(counts, self.beta).to(X.device)
        self.weight = None

    def start_epoch(self, epoch):
        super().start_epoch(epoch)
        self.weight = self.cb_weight if epoch >= int(self.drw_start * self.epochs) else None

    def per_sample_loss(self, logits, targets):
        return losses.ldam_loss(logits, targets, self.margins, self.scale, self.weight)

    def decision_logits(self, logits):
        return self.scale * logits


def make_objective(name: str, cfg: HeadsConfig) -> Objective:
    if name == "ce":
        return CrossEntropy()
    if name == "la":
        return LogitAdjusted()
    if name == "lasl":
        return LogitAdjustedSuperLoss(cfg.sl_lambda, cfg.tau, cfg.sl_tau_momentum)
    if name == "cb":
        return ClassBalanced(cfg.cb_beta)
    if name == "focal":
        return Focal(cfg.focal_gamma)
    if name == "ldam":
        return LDAMDRW(cfg.ldam_max_margin, cfg.ldam_scale, cfg.drw_start, cfg.cb_beta)
    raise KeyError(f"unknown standard head {name!r}; known: {STANDARD_HEADS}")


def build_projection_head(d_in: int, n_classes: int, cfg: HeadsConfig) -> ProjectionHead:
    return ProjectionHead(d_in, n_classes, hidden=cfg.hidden, n_layers=cfg.n_layers, dropout=cfg.dropout)


def train_standard(name: str, X: torch.Tensor, y: np.ndarray, n_classes: int, cfg: HeadsConfig, *,
                   seed: int = 0, views: torch.Tensor | None = None) -> HeadResult:
    """Train head `name` on standardised X (N, d) on its device; labels y (N,), -1 = unlabeled."""
    torch.manual_seed(seed)
    model = build_projection_head(X.shape[1], n_classes, cfg)
    if name == "ldam":
        model.classifier = NormedLinear(model.out_dim, n_classes)
    model = model.to(X.device)
    objective = make_objective(name, cfg)
    probs, history = fit(model, X, y, n_classes, objective, epochs=cfg.epochs, batch_size=cfg.batch_size,
                         lr=cfg.lr, weight_decay=cfg.weight_decay, seed=seed, views=views, name=name)
    signals = common_signals(name, probs, y, history, cfg.last_epochs)
    if name == "lasl":
        signals["lasl_sigma"] = last_mean(history, "sigma", cfg.last_epochs)
    extras = {}
    if name in ("la", "lasl"):
        extras["log_prior"] = objective.log_prior.cpu().numpy()
    if name == "ldam":  # the model outputs cosines; the probabilities use scale * cosine
        model.classifier = _Scaled(model.classifier, cfg.ldam_scale)
    return HeadResult(name, probs, signals, history, extras, model.eval())


class _Scaled(nn.Module):
    def __init__(self, inner: nn.Module, scale: float):
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return self.scale * self.inner(x)
