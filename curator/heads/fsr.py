"""FSR head: Fast Sample Re-weighting without reward data (paper 004, Zhang & Pfister, CVPR 2021).

No clean data is needed: a class-balanced **dictionary** R of training samples stands in for the reward set
(§4.1). Per batch (Algorithm 1), after ``warmup_epochs`` of uniform weights:

- *meta step through the last layer only* (feature sharing, §4.2 eq. 6): from ω_o = 1/b, one virtual SGD step
  of the classifier on the batch, then the reward loss of a class-balanced dictionary batch; its gradient
  w.r.t. the sample weights is −α ⟨∇L_R(Θ*), ∇L_i(Θ_t)⟩ (closed form for a linear layer,
  `curator.heads.meta.gradient_alignment`). ω* = ω_o − η ∂L_R/∂ω (eq. 3) with η expressed relative to the
  batch's mean |alignment| (η = ``weight_lr`` moves an average sample by ±ω_o), then max(0, ·) — or, for the
  long tail, shifted ω* − min ω* + 1/b (§5.2) — and normalised to sum 1;
- the real step minimises Σ ω*_i L_mix(x_i) + p · L(ŷ_i, f(x_i)): MixUp on the weighted term only, and the
  momentum re-label ŷ_t = β ŷ_{t−1} + (1 − β) f(x; Θ_t) (eq. 7, §4.3);
- the **meta-margin** P(x) = L(x; Θ_t) − L(x; Θ_t*) (eq. 5), Θ_t* = the classifier after one SGD step of
  size ``meta_lr`` on the dictionary loss; averaged with momentum P̂_t = λ P̂_{t−1} + (1 − λ) P_t (bias-corrected
  for the zero start); the dictionary is re-chosen every epoch as the top-P̂ samples of each class (eq. 4).
  P computed once per epoch for all samples on the whole dictionary (each sample is visited once an epoch).

Direction: **P̂ > 0 = clean** (the sample's loss falls when the model learns the dictionary); P̂ < 0 = its loss
rises, i.e. it disagrees with the trusted data (likely mislabeled).

Signals: ``fsr_meta_margin`` (P̂), ``fsr_weight`` (b·ω*, 1 = average, mean over the last epochs),
``fsr_in_dictionary``, ``fsr_pseudo_label`` (argmax ŷ), ``fsr_prob_label``, ``fsr_pred``, ``fsr_margin``,
``fsr_loss``. Long-tail use (paper §5.2): ``shift_weights=True``, ``mixup_alpha=0``, ``relabel_weight=0``,
``label_smoothing=0.1`` and a later ``warmup_epochs`` (deferred re-weighting).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curator.config import ConfigError, from_dict
from curator.device import select_device
from curator.heads.base import HeadResult
from curator.heads.meta import (
    Standardize, batches, check_inputs, fetch_balanced_batch, given_label_margin, gradient_alignment,
    initial_dictionary, mean_last, meta_margin, reward_gradient, select_dictionary, soft_cross_entropy,
)
from curator.heads.mlp import ProjectionHead

LOG = logging.getLogger(__name__)


@dataclass
class FSRConfig:
    """Settings of the FSR head; paper 004 table 4 ("CIFAR (noise)") adapted to an MLP head on embeddings."""

    epochs: int = 12
    batch_size: int = 128            # b (paper: 100)
    reward_batch_size: int = 200     # q, class-balanced from the dictionary
    lr: float = 0.1                  # η, SGD with momentum, cosine decay
    momentum: float = 0.9
    weight_decay: float = 5e-4
    hidden: int = 512
    n_layers: int = 2
    standardize: bool = True
    dict_per_class: int = 200        # |R| / C (paper: |R| = 2k for 10 classes)
    max_class_fraction: float = 0.25  # a class puts at most this share of its samples in the dictionary
    margin_momentum: float = 0.5     # λ per epoch visit (paper 0.9; digits γ=10: AUROC 0.83/0.79 at 0.9 vs 0.88/0.91 at 0.5, seeds 0/1)
    meta_lr: float = 0.1             # α of the last-layer meta step (paper: 1 for a ResNet FC; on 512-d BN-ReLU
                                     # head features α = 1 overshoots: fsr_weight AUROC 0.54 vs 0.90 at 0.1 on digits)
    weight_lr: float = 1.0           # η of eq. 3 relative to the mean |alignment| (see module docstring)
    normalize_reward: bool = True    # unit-length per-sample reward gradients (meta.reward_gradient)
    gate_dictionary: bool = True     # dictionary prefers samples the head currently predicts as their label
    relabel_beta: float = 0.1        # β of eq. 7
    relabel_weight: float = 2.0      # p, multiplier of the re-label loss (0 = off)
    mixup_alpha: float = 1.0         # Beta(α, α) MixUp on the weighted loss (0 = off)
    label_smoothing: float = 0.0     # long tail: 0.1 (paper §5.2)
    shift_weights: bool = False      # long tail: ω* − min ω* + 1/b instead of max(0, ω*)
    warmup_epochs: int = 2           # E: uniform weights before (deferred re-weighting = a larger E)
    last_epochs: int = 3

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.reward_batch_size < 1:
            raise ConfigError(f"fsr: epochs >= 1, batch_size >= 2, reward_batch_size >= 1 required "
                              f"(got {self.epochs}, {self.batch_size}, {self.reward_batch_size})")
        if not 0 <= self.margin_momentum < 1 or not 0 <= self.relabel_beta < 1:
            raise ConfigError("fsr: margin_momentum and relabel_beta must be in [0, 1)")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"fsr: warmup_epochs ({self.warmup_epochs}) must be < epochs ({self.epochs})")


def _config(cfg: FSRConfig | dict | None) -> FSRConfig:
    if cfg is None:
        return FSRConfig()
    if isinstance(cfg, FSRConfig):
        return cfg
    return from_dict(FSRConfig, cfg, where="heads.fsr")


def fsr_sample_weights(feats: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                       weight: torch.Tensor, bias: torch.Tensor, feats_r: torch.Tensor, target_r: torch.Tensor, *,
                       meta_lr: float, weight_lr: float, shift: bool = False, normalize_reward: bool = True) -> torch.Tensor:
    """ω* for one batch (paper 004 Algorithm 1, eq. 3 with the last-layer meta-gradient of eq. 6).

    feats (b, h), logits (b, C), target (b, C) of the training batch at Θ_t; weight (C, h), bias (C,) the
    classifier; feats_r (q, h), target_r (q, C) the reward batch. Returns (b,) weights summing to 1.
    """
    b = feats.shape[0]
    probs = torch.softmax(logits, 1)
    gw_train = (probs - target).T @ feats / b                      # (C, h): ∇_W of Σ ω_o L_i, ω_o = 1/b
    gb_train = (probs - target).sum(0) / b
    w_star, b_star = weight - meta_lr * gw_train, bias - meta_lr * gb_train   # Θ^meta_{t+1}
    probs_r = torch.softmax(feats_r @ w_star.T + b_star, 1)
    gr_w, gr_b = reward_gradient(feats_r, probs_r, target_r, normalize=normalize_reward)
    align = gradient_alignment(feats, probs, target, gr_w, gr_b)  # (b,) ∝ −∂L_R/∂ω_i
    scale = align.abs().mean().clamp_min(1e-12)
    raw = (1.0 + weight_lr * align / scale) / b                    # ω_o − η ∂L_R/∂ω, in units of ω_o
    raw = raw - raw.min() + 1.0 / b if shift else raw.clamp_min(0.0)
    total = raw.sum()
    return raw / total if total > 0 else torch.full_like(raw, 1.0 / b)


@torch.no_grad()
def _evaluate(model: nn.Sequential, x: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    feats = torch.cat([model[1].features(model[0](x[i:i + chunk])) for i in range(0, x.shape[0], chunk)])
    model.train()
    return feats, model[1].classifier(feats)


def _targets(y: torch.Tensor, c: int, smoothing: float) -> torch.Tensor:
    onehot = F.one_hot(y, c).float()
    return onehot * (1 - smoothing) + smoothing / c if smoothing else onehot


def train_fsr(X, y, n_classes: int, *, cfg: FSRConfig | dict | None = None, meta_mask=None, seed: int = 0,
              device=None) -> HeadResult:
    """Train the FSR head on embeddings X (N, d) with given labels y (N,); see the module docstring.

    meta_mask (N,) bool, when given, restricts the dictionary to those trusted samples (FSR itself needs none).
    """
    t0 = time.perf_counter()
    cfg = _config(cfg)
    X, y, meta_mask = check_inputs(X, y, n_classes, meta_mask, head="fsr")
    dev = select_device(str(device) if device is not None else None)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n, c = X.shape[0], n_classes
    xt, yt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    scaler = Standardize.fit(xt) if cfg.standardize else Standardize(torch.zeros(X.shape[1], device=dev), torch.ones(X.shape[1], device=dev))
    head = ProjectionHead(X.shape[1], c, hidden=cfg.hidden, n_layers=cfg.n_layers)
    model = nn.Sequential(scaler, head).to(dev)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    onehot = F.one_hot(yt, c).float()                               # (N, C)
    target = _targets(yt, c, cfg.label_smoothing)                   # (N, C) targets of the weighted loss
    pseudo = onehot.clone()                                          # ŷ, eq. 7
    # dictionary candidates: trusted samples if given, else everyone
    cand = np.flatnonzero(meta_mask) if meta_mask is not None else np.arange(n)
    pool = cand[initial_dictionary(y[cand], c, cfg.dict_per_class, max_class_fraction=cfg.max_class_fraction, rng=rng)]
    margin_hat = np.zeros(n, np.float64)
    hist = {k: np.zeros((cfg.epochs, n), np.float32) for k in ("meta_margin", "weight", "loss", "margin")}
    total = cfg.epochs * len(batches(n, cfg.batch_size, np.random.default_rng(0)))
    step = 0
    for epoch in range(cfg.epochs):
        weights = np.ones(n, np.float32)
        for idx in batches(n, cfg.batch_size, rng):
            for g in opt.param_groups:
                g["lr"] = 0.5 * cfg.lr * (1 + math.cos(math.pi * step / total))
            b = len(idx)
            xb, tb = xt[idx], target[idx]
            if epoch >= cfg.warmup_epochs:
                with torch.no_grad():
                    feats = head.features(scaler(xb))
                    ridx = fetch_balanced_batch(pool, y, cfg.reward_batch_size, rng)
                    feats_r = head.features(scaler(xt[ridx]))
                    w = fsr_sample_weights(feats, head.classifier(feats), tb, head.classifier.weight, head.classifier.bias,
                                           feats_r, target[ridx], meta_lr=cfg.meta_lr, weight_lr=cfg.weight_lr,
                                           shift=cfg.shift_weights, normalize_reward=cfg.normalize_reward)
                weights[idx] = (w * b).cpu().numpy()
            else:
                w = torch.full((b,), 1.0 / b, device=dev)
            # real step: MixUp on the weighted term (weights follow their labels) + momentum re-label term
            if cfg.mixup_alpha > 0:
                lam = float(rng.beta(cfg.mixup_alpha, cfg.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(b)).to(dev)
                logits_mix = model(lam * xb + (1 - lam) * xb[perm])
                loss = (lam * w * soft_cross_entropy(logits_mix, tb)
                        + (1 - lam) * w[perm] * soft_cross_entropy(logits_mix, tb[perm])).sum()
                logits = model(xb) if cfg.relabel_weight > 0 else None
            else:
                logits = model(xb)
                loss = (w * soft_cross_entropy(logits, tb)).sum()
            if logits is not None:
                if epoch >= cfg.warmup_epochs:
                    loss = loss + cfg.relabel_weight * soft_cross_entropy(logits, pseudo[idx]).mean()
                pseudo[idx] = cfg.relabel_beta * pseudo[idx] + (1 - cfg.relabel_beta) * torch.softmax(logits.detach(), 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        feats, logits = _evaluate(model, xt)
        hist["loss"][epoch] = F.cross_entropy(logits, yt, reduction="none").cpu().numpy()
        hist["margin"][epoch] = given_label_margin(logits, yt).cpu().numpy()
        hist["weight"][epoch] = weights
        gw, gb = reward_gradient(feats[pool], torch.softmax(logits[pool], 1), onehot[pool], normalize=cfg.normalize_reward)
        p = meta_margin(feats, logits, onehot, gw, gb, cfg.meta_lr).cpu().numpy()
        margin_hat = cfg.margin_momentum * margin_hat + (1 - cfg.margin_momentum) * p
        hist["meta_margin"][epoch] = margin_hat / (1 - cfg.margin_momentum ** (epoch + 1))
        score = hist["meta_margin"][epoch]
        agree = (logits.argmax(1) == yt).cpu().numpy() if cfg.gate_dictionary else None
        pool = cand[select_dictionary(score[cand], y[cand], c, cfg.dict_per_class, max_class_fraction=cfg.max_class_fraction,
                                      eligible=None if agree is None else agree[cand])]
        LOG.debug("fsr epoch %d/%d: mean loss %.4f, zero-weight share %.3f", epoch + 1, cfg.epochs,
                  hist["loss"][epoch].mean(), float((weights == 0).mean()))

    _, logits = _evaluate(model, xt)
    probs = torch.softmax(logits, 1).cpu().numpy().astype(np.float32)
    in_dict = np.zeros(n, bool)
    in_dict[pool] = True
    keep = min(cfg.last_epochs, cfg.epochs - cfg.warmup_epochs)
    signals = {
        "fsr_meta_margin": hist["meta_margin"][-1].copy(),
        "fsr_weight": mean_last(hist["weight"], keep),
        "fsr_in_dictionary": in_dict,
        "fsr_pseudo_label": pseudo.argmax(1).cpu().numpy().astype(np.int64),
        "fsr_prob_label": probs[np.arange(n), y],
        "fsr_pred": probs.argmax(1).astype(np.int64),
        "fsr_margin": mean_last(hist["margin"], cfg.last_epochs),
        "fsr_loss": mean_last(hist["loss"], cfg.last_epochs),
    }
    seconds = time.perf_counter() - t0
    LOG.info("fsr: %d samples, %d classes, %d epochs (%d warm-up), dictionary %d in %.1f s on %s", n, c, cfg.epochs,
             cfg.warmup_epochs, len(pool), seconds, dev)
    return HeadResult("fsr", probs, signals, hist, {"dictionary": pool.astype(np.int64)}, model=model.eval(), seconds=seconds)
