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
  P computed once per epoch for all samples on the whole dictionary (each sample is visited once an epoch);
  `curator.heads.meta.MomentumDictionary`, shared with GDW.

Direction: **P̂ > 0 = clean** (the sample's loss falls when the model learns the dictionary); P̂ < 0 = its loss
rises, i.e. it disagrees with the trusted data (likely mislabeled).

Signals: ``fsr_meta_margin`` (P̂), ``fsr_weight`` (b·ω*, 1 = average, mean over the last epochs),
``fsr_in_dictionary``, ``fsr_pseudo_label`` (argmax ŷ), ``fsr_prob_label``, ``fsr_pred``, ``fsr_margin``,
``fsr_loss``. Long-tail use (paper §5.2): ``shift_weights=True``, ``mixup_alpha=0``, ``relabel_weight=0``,
``label_smoothing=0.1`` and a later ``warmup_epochs`` (deferred re-weighting). Settings:
`curator.heads.config.FSRConfig` (``[heads] fsr = {...}``).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from curator.heads.base import HeadData, HeadResult
from curator.heads.config import FSRConfig, HeadsConfig
from curator.heads.meta import (
    MomentumDictionary, fetch_balanced_batch, gradient_alignment, reward_gradient, set_cosine_lr, soft_cross_entropy,
)
from curator.heads.mlp import ProjectionHead
from curator.heads.records import common_signals, label_margin, last_mean
from curator.heads.train_loop import batch_count, shuffled_batches

LOG = logging.getLogger(__name__)


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


def _targets(y: torch.Tensor, c: int, smoothing: float) -> torch.Tensor:
    onehot = F.one_hot(y, c).float()
    return onehot * (1 - smoothing) + smoothing / c if smoothing else onehot


def train_fsr(name: str, data: HeadData, cfg: HeadsConfig) -> HeadResult:
    """Train the FSR head (settings ``cfg.fsr``) on standardised, labelled inputs; see the module docstring.

    data.meta_mask (N,) bool, when given, restricts the dictionary to those trusted samples (FSR itself needs none).
    """
    f: FSRConfig = cfg.fsr
    torch.manual_seed(data.seed)
    rng = np.random.default_rng(data.seed)
    xt, y, c = data.X, data.y, data.n_classes
    n, dev = len(y), xt.device
    yt = torch.from_numpy(y).to(dev)
    model = ProjectionHead(xt.shape[1], c, hidden=f.hidden, n_layers=f.n_layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=f.lr, momentum=f.momentum, weight_decay=f.weight_decay)
    onehot = F.one_hot(yt, c).float()                               # (N, C)
    target = _targets(yt, c, f.label_smoothing)                     # (N, C) targets of the weighted loss
    pseudo = onehot.clone()                                          # ŷ, eq. 7
    # dictionary candidates: trusted samples if given, else everyone
    dictionary = MomentumDictionary(y, c, per_class=f.dict_per_class, max_class_fraction=f.max_class_fraction,
                                    momentum=f.margin_momentum, step=f.meta_lr, normalize_reward=f.normalize_reward,
                                    gate=f.gate_dictionary, rng=rng,
                                    candidates=None if data.meta_mask is None else np.flatnonzero(data.meta_mask))
    hist = {k: np.zeros((f.epochs, n), np.float32) for k in ("meta_margin", "weight", "loss", "margin")}
    total = f.epochs * batch_count(n, f.batch_size)
    step = 0
    for epoch in range(f.epochs):
        weights = np.ones(n, np.float32)
        for idx in shuffled_batches(rng, n, f.batch_size):
            set_cosine_lr(opt, f.lr, step, total)
            b = len(idx)
            xb, tb = xt[idx], target[idx]
            # f(x_b) at Θ_t, when the real step needs it (the re-label term, or no MixUp): one forward pass serves
            # the sample weights too (the same parameters and batch; BatchNorm's running statistics take one
            # update from this batch instead of two)
            feats = logits = None
            if f.mixup_alpha <= 0 or f.relabel_weight > 0:
                feats = model.features(xb)
                logits = model.classifier(feats)
            if epoch >= f.warmup_epochs:
                with torch.no_grad():
                    if feats is None:
                        feats = model.features(xb)
                        logits_w = model.classifier(feats)
                    else:
                        feats, logits_w = feats.detach(), logits.detach()
                    ridx = fetch_balanced_batch(dictionary.pool, y, f.reward_batch_size, rng, dictionary.groups)
                    feats_r = model.features(xt[ridx])
                    w = fsr_sample_weights(feats, logits_w, tb, model.classifier.weight,
                                           model.classifier.bias, feats_r, target[ridx], meta_lr=f.meta_lr,
                                           weight_lr=f.weight_lr, shift=f.shift_weights,
                                           normalize_reward=f.normalize_reward)
                weights[idx] = (w * b).cpu().numpy()
            else:
                w = torch.full((b,), 1.0 / b, device=dev)
            # real step: MixUp on the weighted term (weights follow their labels) + momentum re-label term
            if f.mixup_alpha > 0:
                lam = float(rng.beta(f.mixup_alpha, f.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(b)).to(dev)
                logits_mix = model(lam * xb + (1 - lam) * xb[perm])
                loss = (lam * w * soft_cross_entropy(logits_mix, tb)
                        + (1 - lam) * w[perm] * soft_cross_entropy(logits_mix, tb[perm])).sum()
            else:
                loss = (w * soft_cross_entropy(logits, tb)).sum()
            if logits is not None:
                if epoch >= f.warmup_epochs:
                    loss = loss + f.relabel_weight * soft_cross_entropy(logits, pseudo[idx]).mean()
                pseudo[idx] = f.relabel_beta * pseudo[idx] + (1 - f.relabel_beta) * torch.softmax(logits.detach(), 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        hist["meta_margin"][epoch], logits = dictionary.update(model, xt, onehot)
        hist["loss"][epoch] = F.cross_entropy(logits, yt, reduction="none").cpu().numpy()
        hist["margin"][epoch] = label_margin(logits, yt).cpu().numpy()
        hist["weight"][epoch] = weights
        LOG.debug("%s epoch %d/%d: mean loss %.4f, zero-weight share %.3f", name, epoch + 1, f.epochs,
                  hist["loss"][epoch].mean(), float((weights == 0).mean()))

    # the final model's logits: the last epoch's pass above (the model does not change after it)
    probs = torch.softmax(logits, 1).cpu().numpy().astype(np.float32)
    in_dict = np.zeros(n, bool)
    in_dict[dictionary.pool] = True
    keep = min(f.last_epochs, f.epochs - f.warmup_epochs)
    signals = {
        f"{name}_meta_margin": hist["meta_margin"][-1].copy(),
        f"{name}_weight": last_mean(hist["weight"], keep),
        f"{name}_in_dictionary": in_dict,
        f"{name}_pseudo_label": pseudo.argmax(1).cpu().numpy().astype(np.int64),
        **common_signals(name, probs, y, hist, f.last_epochs),
    }
    LOG.info("%s: %d samples, %d classes, %d epochs (%d warm-up), dictionary %d on %s", name, n, c, f.epochs,
             f.warmup_epochs, len(dictionary.pool), dev)
    return HeadResult(name, probs, signals, hist, {"dictionary": dictionary.pool.astype(np.int64)}, model=model.eval())
