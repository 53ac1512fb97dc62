"""Heads that differ only in their loss: ``ce``, ``la``, ``lasl``, ``cb``, ``focal``, ``ldam``.

All train a `curator.heads.mlp.ProjectionHead` (2 FC layers by default, paper 000 §3.2) on
standardised embeddings with the shared trainer (`curator.heads.train_loop.fit`): `minibatch(make)`
turns an `Objective` factory into a head's trainer (the registry holds one line per head).

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
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curator.data.stats import class_counts
from curator.heads import losses
from curator.heads.base import HeadData, HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.mlp import ProjectionHead
from curator.heads.records import common_signals, last_mean
from curator.heads.train_loop import Objective, fit


def label_counts(y: torch.Tensor, n_classes: int) -> np.ndarray:
    """(C,) counts of the labels y (N,) on any device; -1 (unlabeled) ignored."""
    return class_counts(y.cpu().numpy(), n_classes)


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
    """Paper 000 eq. 1-2: cross-entropy of f(x) + log π_y; π = labelled class frequencies."""

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.log_prior = losses.log_class_prior(label_counts(y, n_classes)).to(X.device)

    def per_sample_loss(self, logits, targets):
        return losses.la_cross_entropy(logits, targets, self.log_prior)

    def extras(self):
        return {"log_prior": self.log_prior.cpu().numpy()}


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

    def signals(self, head, history, last_epochs):
        return {f"{head}_sigma": last_mean(history["sigma"], last_epochs)}


class ClassBalanced(Objective):
    def __init__(self, beta: float):
        self.beta = beta

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        self.weight = losses.class_balanced_weights(label_counts(y, n_classes), self.beta).to(X.device)

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


class Scaled(nn.Module):
    """`inner`'s outputs times a constant (LDAM's decision logits s · cos)."""

    def __init__(self, inner: nn.Module, scale: float):
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return self.scale * self.inner(x)


class LDAMDRW(Objective):
    """LDAM (Cao et al. 2019, eq. 13) on a cosine classifier, class-balanced weights after `drw_start`."""

    def __init__(self, max_margin: float, scale: float, drw_start: float, beta: float):
        self.max_margin, self.scale, self.drw_start, self.beta = max_margin, scale, drw_start, beta

    def setup(self, model, X, y, n_classes, epochs):
        super().setup(model, X, y, n_classes, epochs)
        counts = label_counts(y, n_classes)
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

    def classifier(self, d, n_classes):
        return NormedLinear(d, n_classes)

    def predictor(self, model):  # the model outputs cosines; the probabilities use scale · cosine
        model.classifier = Scaled(model.classifier, self.scale)
        return model


def build_projection_head(d_in: int, n_classes: int, cfg: HeadsConfig) -> ProjectionHead:
    return ProjectionHead(d_in, n_classes, hidden=cfg.hidden, n_layers=cfg.n_layers, dropout=cfg.dropout)


def minibatch(make_objective: Callable[[HeadsConfig], Objective]) -> Callable[[str, HeadData, HeadsConfig], HeadResult]:
    """The trainer of a head that is the projection head + the shared loop with one objective.

    The trainer takes (head name, standardised inputs, settings) and returns the head's result: its
    probabilities, the four common columns plus the objective's own, its records, extras and model.
    """
    def train(name: str, data: HeadData, cfg: HeadsConfig) -> HeadResult:
        torch.manual_seed(data.seed)
        objective = make_objective(cfg)
        model = build_projection_head(data.X.shape[1], data.n_classes, cfg)
        classifier = objective.classifier(model.out_dim, data.n_classes)
        if classifier is not None:
            model.classifier = classifier
        model = model.to(data.X.device)
        probs, history = fit(model, data.X, data.y, data.n_classes, objective, epochs=cfg.epochs,
                             batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay, seed=data.seed,
                             views=data.views, name=name)
        signals = common_signals(name, probs, data.y, history, cfg.last_epochs)
        signals.update(objective.signals(name, history, cfg.last_epochs))
        return HeadResult(name, probs, signals, history, objective.extras(), objective.predictor(model).eval())

    return train
