"""GDW head: Generalized Data Weighting via class-level gradient manipulation (paper 003, Chen et al. 2021).

Every training sample gets a vector of class-level weights ω ∈ R^C that multiplies the gradient of its loss
w.r.t. its logits (eq. 2): f_ω(∇_θ L) = (ω ⊗ ∂L/∂l) ∂l/∂θ, with ∂L/∂l = p − y for softmax cross-entropy.
A zero-mean constraint (eq. 4) sets the target weight ω_t = Σ_{j≠t} ω_j p_j / (1 − p_t), so that
Σ_j ω_j (p_j − y_j) = 0 (eq. 5) and the manipulated gradient keeps the form ω_t (p' − y) (eq. 6): ω_t is the
instance weight, the other ω_j re-shape the probabilities.

Training is MW-Net's three-step bi-level loop with GDW's two-stage weights (§3.4, Algorithm 1), per batch:
 1. an MW-Net weighting network (1 → 100 → 1, sigmoid) maps each sample's loss to ω_i, cloned C times;
    a *virtual* SGD step θ̂(φ) uses the manipulated gradient (eq. 9);
 2. the meta loss of θ̂ on a meta batch updates φ (eq. 10, Adam), and its gradient g w.r.t. the cloned
    weights gives the second-stage weights ω' = ω − clip(η_ω g / ‖g‖₁, −c, c) (eq. 11), then eq. 4;
 3. the *real* step updates θ with ω' (eq. 12).

Meta set: the trusted samples in ``meta_mask`` when given; otherwise the FSR class-balanced dictionary chosen
from the training set by the momentum meta-margin (paper 004 eq. 4–5, `curator.heads.meta`), after
``warmup_epochs`` of plain cross-entropy — curator needs no clean data.

Signals (per sample): ``gdw_weight`` = ω_t after the constraint, mean over the last epochs (low on noisy
samples, paper fig. 3); ``gdw_suggested_label`` = the non-target class whose weight GDW lowered most (paper
§4.1, fig. 4–5: the "not <true class>" flow of a mislabeled sample is harmful, so the true-class weight drops
in > 80% of updates); plus ``gdw_prob_label``, ``gdw_pred``, ``gdw_margin``, ``gdw_loss``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from curator.config import ConfigError, from_dict
from curator.device import select_device
from curator.heads.base import HeadResult
from curator.heads.meta import (
    Standardize, batches, check_inputs, fetch_balanced_batch, given_label_margin, initial_dictionary, mean_last,
    meta_margin, reward_gradient, select_dictionary,
)
from curator.heads.mlp import ProjectionHead

LOG = logging.getLogger(__name__)


@dataclass
class GDWConfig:
    """Settings of the GDW head; paper 003 App. C defaults, adapted to an MLP head on cached embeddings."""

    epochs: int = 12
    batch_size: int = 128            # n (paper: 100)
    meta_batch_size: int = 128       # m (paper: 100), drawn class-balanced from the meta set
    lr: float = 0.03                 # η_θ, SGD with momentum, cosine decay (paper App. C: 0.1 for a ResNet from
                                     # scratch; 0.1 on an MLP over 32-d embeddings inverted ω_t, see docs)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    hidden: int = 512                # ProjectionHead (paper 000: 2 FC layers)
    n_layers: int = 2
    standardize: bool = True         # z-score embeddings with training statistics
    wnet_hidden: int = 100           # MW-Net weighting network 1 -> 100 -> 1 (sigmoid)
    wnet_lr: float = 1e-3            # Adam, weight decay 1e-4 (App. C)
    wnet_weight_decay: float = 1e-4
    omega_lr: float = 0.1            # mean step per weight entry: η_ω = omega_lr · n · C (paper η_ω = 100 at n = 100, C = 10)
    clip: float = 0.2                # c in eq. 11
    normalize_weights: bool = False  # first-stage weights divided by their batch mean (MW-Net / L2RW), see docs
    warmup_epochs: int = 2           # without meta_mask: plain CE epochs before the dictionary is trusted
    dict_per_class: int = 100        # FSR dictionary slots per class (|R| / C)
    max_class_fraction: float = 0.25  # a class puts at most this share of its samples in the dictionary (keeps
                                     # noisy tail samples out; 0.5 let MW-Net learn "high loss = useful" on digits γ=10)
    margin_momentum: float = 0.9     # λ of the momentum meta-margin P̂ (paper 004)
    margin_lr: float = 1.0           # step size of the last-layer step on the dictionary loss in P(x)
    normalize_reward: bool = True    # unit-length per-sample reward gradients (see meta.reward_gradient)
    gate_dictionary: bool = True     # dictionary prefers samples the head currently predicts as their label
    last_epochs: int = 3             # signals average the per-epoch records of this many last epochs

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.meta_batch_size < 1:
            raise ConfigError(f"gdw: epochs >= 1, batch_size >= 2, meta_batch_size >= 1 required "
                              f"(got {self.epochs}, {self.batch_size}, {self.meta_batch_size})")
        if not 0 < self.clip:
            raise ConfigError(f"gdw.clip must be > 0 (got {self.clip})")
        if not 0 <= self.margin_momentum < 1:
            raise ConfigError(f"gdw.margin_momentum must be in [0, 1) (got {self.margin_momentum})")


def _config(cfg: GDWConfig | dict | None) -> GDWConfig:
    if cfg is None:
        return GDWConfig()
    if isinstance(cfg, GDWConfig):
        return cfg
    return from_dict(GDWConfig, cfg, where="heads.gdw")


# ---------------------------------------------------------------------------------------------
# the maths of paper 003, as pure functions

def logit_gradient(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """D1 = ∂CE/∂l = p − y (paper 003 eq. 1, App. A); (n, C), (n,) -> (n, C)."""
    return torch.softmax(logits, 1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)


def manipulated_surrogate(logits: torch.Tensor, y: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Per-sample scalar whose gradient w.r.t. the logits is ω ⊗ (p − y) (eq. 2), and w.r.t. ω is (p − y) ⊗ l.

    Back-propagating it through the network applies GDW's manipulated gradient (ω ⊗ D1) ∂l/∂θ; D1 is held
    constant, so the result is linear in ω (what the virtual step of eq. 9 needs). (n, C), (n,), (n, C) -> (n,).
    """
    return (omega * logit_gradient(logits, y).detach() * logits).sum(1)


def second_stage_update(omega: torch.Tensor, g: torch.Tensor, lr: float, clip: float = 0.2) -> torch.Tensor:
    """ω' = ω − clip(η_ω g / ‖g‖₁, −c, c) (paper 003 eq. 11); ‖g‖₁ over the whole mini-batch. (n, C) -> (n, C)."""
    return omega - torch.clamp(lr * g / g.abs().sum().clamp_min(1e-30), -clip, clip)


def zero_mean_constraint(omega: torch.Tensor, probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Replace ω_t by Σ_{j≠t} ω_j p_j / (1 − p_t) (paper 003 eq. 4), so Σ_j ω_j (p_j − y_j) = 0 (eq. 5).

    omega (n, C), probs (n, C), y (n,) -> (n, C) (a new tensor).
    """
    mask = 1.0 - F.one_hot(y, probs.shape[1]).to(probs.dtype)           # (n, C): 1 off the target
    rest = (probs * mask).sum(1, keepdim=True)                           # 1 − p_t, summed stably
    num = (omega * probs * mask).sum(1, keepdim=True)                    # Σ_{j≠t} ω_j p_j
    fallback = (omega * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
    omega_t = torch.where(rest > 1e-30, num / rest.clamp_min(1e-30), fallback)  # a p-weighted mean of ω_{j≠t}
    return omega.scatter(1, y[:, None], omega_t)


class WeightingNet(nn.Module):
    """MW-Net's weighting function (paper 003 §3.4 after [23]): per-sample loss (n, 1) -> weight in (0, 1) (n, 1)."""

    def __init__(self, hidden: int = 100):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1), nn.Sigmoid())

    def forward(self, loss: torch.Tensor) -> torch.Tensor:
        return self.net(loss)


# ---------------------------------------------------------------------------------------------
# one bi-level step

def gdw_step(model: nn.Module, wnet: WeightingNet, opt: torch.optim.Optimizer, wopt: torch.optim.Optimizer,
             x: torch.Tensor, y: torch.Tensor, x_meta: torch.Tensor, y_meta: torch.Tensor, *,
             lr: float, omega_lr: float, clip: float,
             normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1–3 of Algorithm 1 on one batch. Returns (ω (n, C) first stage, ω' (n, C) after eq. 11 + eq. 4,
    ω' (n, C) after eq. 11 only). Updates `model` (θ) and `wnet` (φ) in place.
    """
    n, n_classes = x.shape[0], None
    params = dict(model.named_parameters())
    logits = model(x)                                                   # (n, C) at θ_{τ−1}
    n_classes = logits.shape[1]
    probs = torch.softmax(logits, 1).detach()
    loss_i = F.cross_entropy(logits, y, reduction="none")               # (n,)
    # Step 1: first-stage weights ω_i = MW-Net(L_i), cloned C times; virtual step with the manipulated gradient
    w = wnet(loss_i.detach()[:, None])                                   # (n, 1)
    if normalize:  # batch mean 1, differentiated through the mean (MW-Net / L2RW batch normalisation)
        w = w / w.mean().clamp_min(1e-8)
    omega = w.repeat(1, n_classes)                                       # (n, C), a function of φ
    virtual = manipulated_surrogate(logits, y, omega).sum() / n
    grads = torch.autograd.grad(virtual, list(params.values()), create_graph=True)
    fast = {k: p - lr * g for (k, p), g in zip(params.items(), grads)}
    buffers = {k: b.clone() for k, b in model.named_buffers()}          # keep BN running stats out of the virtual pass
    # Step 2: meta loss of θ̂(φ) on the meta batch -> φ update and the class-level gradients g = ∂L_meta/∂ω
    meta_logits = functional_call(model, {**fast, **buffers}, (x_meta,))
    meta_loss = F.cross_entropy(meta_logits, y_meta)
    g_omega, *g_phi = torch.autograd.grad(meta_loss, [omega, *wnet.parameters()], retain_graph=True)
    wopt.zero_grad(set_to_none=True)
    for p, g in zip(wnet.parameters(), g_phi):
        p.grad = g
    wopt.step()
    omega1 = w.detach().repeat(1, n_classes)
    raw = second_stage_update(omega1, g_omega, omega_lr * n * n_classes, clip).clamp_min(0.0)
    omega2 = zero_mean_constraint(raw, probs, y)
    # Step 3: real step of θ_{τ−1} with ω' (eq. 12)
    opt.zero_grad(set_to_none=True)
    (manipulated_surrogate(logits, y, omega2).sum() / n).backward()
    opt.step()
    return omega1, omega2, raw


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 8192):
    """Eval-mode pass over all samples: features (N, h), logits (N, C)."""
    model.eval()
    feats, logits = [], []
    for i in range(0, x.shape[0], chunk):
        f = model[1].features(model[0](x[i:i + chunk]))
        feats.append(f)
        logits.append(model[1].classifier(f))
    model.train()
    return torch.cat(feats), torch.cat(logits)


def train_gdw(X, y, n_classes: int, *, cfg: GDWConfig | dict | None = None, meta_mask=None, seed: int = 0,
              device=None) -> HeadResult:
    """Train the GDW head on embeddings X (N, d) with given labels y (N,); see the module docstring.

    meta_mask (N,) bool marks trusted samples used as GDW's meta set; without it the meta set is the FSR
    class-balanced dictionary re-selected every epoch by the momentum meta-margin.
    """
    t0 = time.perf_counter()
    cfg = _config(cfg)
    X, y, meta_mask = check_inputs(X, y, n_classes, meta_mask, head="gdw")
    use_dictionary = meta_mask is None
    warmup = cfg.warmup_epochs if use_dictionary else 0
    if use_dictionary and cfg.epochs <= warmup:
        raise ConfigError(f"gdw: epochs ({cfg.epochs}) must exceed warmup_epochs ({warmup}) when no meta_mask is given")
    dev = select_device(str(device) if device is not None else None)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n, c = X.shape[0], n_classes
    xt = torch.from_numpy(X).to(dev)
    yt = torch.from_numpy(y).to(dev)
    scaler = Standardize.fit(xt) if cfg.standardize else Standardize(torch.zeros(X.shape[1], device=dev), torch.ones(X.shape[1], device=dev))
    head = ProjectionHead(X.shape[1], c, hidden=cfg.hidden, n_layers=cfg.n_layers)
    model = nn.Sequential(scaler, head).to(dev)
    wnet = WeightingNet(cfg.wnet_hidden).to(dev)
    opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    wopt = torch.optim.Adam(wnet.parameters(), lr=cfg.wnet_lr, weight_decay=cfg.wnet_weight_decay)
    steps_per_epoch = len(batches(n, cfg.batch_size, np.random.default_rng(0)))
    total = cfg.epochs * steps_per_epoch

    if use_dictionary:
        pool = initial_dictionary(y, c, cfg.dict_per_class, max_class_fraction=cfg.max_class_fraction, rng=rng)
    else:
        pool = np.flatnonzero(meta_mask)
    margin_hat = np.zeros(n, np.float64)
    hist = {k: np.zeros((cfg.epochs, n), np.float32) for k in ("omega_t", "loss", "margin")}
    if use_dictionary:
        hist["meta_margin"] = np.zeros((cfg.epochs, n), np.float32)
    keep = min(cfg.last_epochs, cfg.epochs - warmup)
    change_sum = np.zeros((n, c), np.float64)
    omega_last = np.ones((n, c), np.float32)
    step = 0
    for epoch in range(cfg.epochs):
        omega_t = np.full(n, np.nan, np.float32)
        for idx in batches(n, cfg.batch_size, rng):
            lr = 0.5 * cfg.lr * (1 + math.cos(math.pi * step / total))  # cosine decay (App. C)
            for g in opt.param_groups:
                g["lr"] = lr
            xb, yb = xt[idx], yt[idx]
            if epoch < warmup:  # plain CE while the dictionary forms (paper 004 warm-up)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            else:
                midx = fetch_balanced_batch(pool, y, cfg.meta_batch_size, rng)
                om1, om2, _ = gdw_step(model, wnet, opt, wopt, xb, yb, xt[midx], yt[midx],
                                       lr=lr, omega_lr=cfg.omega_lr, clip=cfg.clip,
                                       normalize=cfg.normalize_weights)
                om2_np = om2.cpu().numpy()
                omega_t[idx] = om2_np[np.arange(len(idx)), y[idx]]
                omega_last[idx] = om2_np
                if epoch >= cfg.epochs - keep:
                    change_sum[idx] += om2_np - om1.cpu().numpy()
            step += 1
        feats, logits = _evaluate(model, xt, yt)
        hist["loss"][epoch] = F.cross_entropy(logits, yt, reduction="none").cpu().numpy()
        hist["margin"][epoch] = given_label_margin(logits, yt).cpu().numpy()
        hist["omega_t"][epoch] = omega_t
        if use_dictionary:  # momentum meta-margin P̂ (paper 004 eq. 5) and the re-selected dictionary
            onehot = F.one_hot(yt, c).float()
            gw, gb = reward_gradient(feats[pool], torch.softmax(logits[pool], 1), onehot[pool],
                                     normalize=cfg.normalize_reward)
            p = meta_margin(feats, logits, onehot, gw, gb, cfg.margin_lr).cpu().numpy()
            margin_hat = cfg.margin_momentum * margin_hat + (1 - cfg.margin_momentum) * p
            corrected = margin_hat / (1 - cfg.margin_momentum ** (epoch + 1))  # bias-corrected (starts at 0)
            hist["meta_margin"][epoch] = corrected
            agree = (logits.argmax(1) == yt).cpu().numpy() if cfg.gate_dictionary else None
            pool = select_dictionary(corrected, y, c, cfg.dict_per_class, max_class_fraction=cfg.max_class_fraction,
                                     eligible=agree)
        LOG.debug("gdw epoch %d/%d: mean loss %.4f, mean ω_t %.3f", epoch + 1, cfg.epochs,
                  hist["loss"][epoch].mean(), np.nanmean(omega_t) if epoch >= warmup else 1.0)

    _, logits = _evaluate(model, xt, yt)
    probs = torch.softmax(logits, 1).cpu().numpy().astype(np.float32)
    change = (change_sum / max(keep, 1)).astype(np.float32)
    others = change.copy()
    others[np.arange(n), y] = np.inf
    weight_hist = hist["omega_t"][warmup:][-keep:]
    signals = {
        "gdw_weight": np.nan_to_num(np.nanmean(weight_hist, 0), nan=1.0).astype(np.float32),
        "gdw_suggested_label": others.argmin(1).astype(np.int64),
        "gdw_prob_label": probs[np.arange(n), y],
        "gdw_pred": probs.argmax(1).astype(np.int64),
        "gdw_margin": mean_last(hist["margin"], cfg.last_epochs),
        "gdw_loss": mean_last(hist["loss"], cfg.last_epochs),
    }
    extras = {"omega": omega_last, "omega_change": change}
    if use_dictionary:
        extras["dictionary"] = pool
    seconds = time.perf_counter() - t0
    LOG.info("gdw: %d samples, %d classes, %d epochs (%d warm-up, meta set %s of %d) in %.1f s on %s", n, c,
             cfg.epochs, warmup, "dictionary" if use_dictionary else "trusted", len(pool), seconds, dev)
    return HeadResult("gdw", probs, signals, hist, extras, model=model.eval(), seconds=seconds)


def config_dict(cfg: GDWConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
