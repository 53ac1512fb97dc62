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

Meta set: the trusted samples (``meta_mask`` of `train_head`) when given; otherwise the FSR class-balanced
dictionary chosen from the training set by the momentum meta-margin (paper 004 eq. 4–5,
`curator.heads.meta.MomentumDictionary`), after ``warmup_epochs`` of plain cross-entropy — curator needs no
clean data. Settings: `curator.heads.config.GDWConfig` (``[heads] gdw = {...}``).

Signals (per sample): ``gdw_weight`` = ω_t after the constraint, mean over the last epochs (low on noisy
samples, paper fig. 3); ``gdw_suggested_label`` = the non-target class whose weight GDW lowered most (paper
§4.1, fig. 4–5: the "not <true class>" flow of a mislabeled sample is harmful, so the true-class weight drops
in > 80% of updates); plus ``gdw_prob_label``, ``gdw_pred``, ``gdw_margin``, ``gdw_loss``.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from curator.config import ConfigError
from curator.heads.base import HeadData, HeadResult
from curator.heads.config import GDWConfig, HeadsConfig
from curator.heads.meta import MomentumDictionary, class_groups, fetch_balanced_batch, set_cosine_lr
from curator.heads.mlp import ProjectionHead, all_logits
from curator.heads.records import common_signals, label_margin, last_mean
from curator.heads.train_loop import batch_count, shuffled_batches

LOG = logging.getLogger(__name__)


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
             normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1–3 of Algorithm 1 on one batch. Returns (ω (n, C) first stage, ω' (n, C) after eq. 11 + eq. 4).
    Updates `model` (θ) and `wnet` (φ) in place.
    """
    n = x.shape[0]
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
    return omega1, omega2


def train_gdw(name: str, data: HeadData, cfg: HeadsConfig) -> HeadResult:
    """Train the GDW head (settings ``cfg.gdw``) on standardised, labelled inputs; see the module docstring.

    data.meta_mask (N,) bool marks trusted samples used as GDW's meta set; without it the meta set is the FSR
    class-balanced dictionary re-selected every epoch by the momentum meta-margin.
    """
    g: GDWConfig = cfg.gdw
    use_dictionary = data.meta_mask is None
    warmup = g.warmup_epochs if use_dictionary else 0
    if use_dictionary and g.epochs <= warmup:
        raise ConfigError(f"{name}: epochs ({g.epochs}) must exceed warmup_epochs ({warmup}) "
                          "when no meta_mask is given")
    torch.manual_seed(data.seed)
    rng = np.random.default_rng(data.seed)
    xt, y, c = data.X, data.y, data.n_classes
    n, dev = len(y), xt.device
    yt = torch.from_numpy(y).to(dev)
    model = ProjectionHead(xt.shape[1], c, hidden=g.hidden, n_layers=g.n_layers).to(dev)
    wnet = WeightingNet(g.wnet_hidden).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=g.lr, momentum=g.momentum, weight_decay=g.weight_decay)
    wopt = torch.optim.Adam(wnet.parameters(), lr=g.wnet_lr, weight_decay=g.wnet_weight_decay)
    total = g.epochs * batch_count(n, g.batch_size)

    dictionary = None
    if use_dictionary:
        dictionary = MomentumDictionary(y, c, per_class=g.dict_per_class, max_class_fraction=g.max_class_fraction,
                                        momentum=g.margin_momentum, step=g.margin_lr,
                                        normalize_reward=g.normalize_reward, gate=g.gate_dictionary, rng=rng)
        onehot = F.one_hot(yt, c).float()
    trusted = np.flatnonzero(data.meta_mask) if data.meta_mask is not None else None
    trusted_groups = class_groups(trusted, y) if trusted is not None else None
    hist = {k: np.zeros((g.epochs, n), np.float32) for k in ("omega_t", "loss", "margin")}
    if use_dictionary:
        hist["meta_margin"] = np.zeros((g.epochs, n), np.float32)
    keep = min(g.last_epochs, g.epochs - warmup)
    change_sum = np.zeros((n, c), np.float64)
    omega_last = np.ones((n, c), np.float32)
    step = 0
    for epoch in range(g.epochs):
        omega_t = np.full(n, np.nan, np.float32)
        for idx in shuffled_batches(rng, n, g.batch_size):
            lr = set_cosine_lr(opt, g.lr, step, total)  # cosine decay (App. C)
            xb, yb = xt[idx], yt[idx]
            if epoch < warmup:  # plain CE while the dictionary forms (paper 004 warm-up)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
            else:
                pool, groups = (dictionary.pool, dictionary.groups) if use_dictionary else (trusted, trusted_groups)
                midx = fetch_balanced_batch(pool, y, g.meta_batch_size, rng, groups)
                om1, om2 = gdw_step(model, wnet, opt, wopt, xb, yb, xt[midx], yt[midx],
                                    lr=lr, omega_lr=g.omega_lr, clip=g.clip, normalize=g.normalize_weights)
                om2_np = om2.cpu().numpy()
                omega_t[idx] = om2_np[np.arange(len(idx)), y[idx]]
                omega_last[idx] = om2_np
                if epoch >= g.epochs - keep:
                    change_sum[idx] += om2_np - om1.cpu().numpy()
            step += 1
        if use_dictionary:  # momentum meta-margin P̂ (paper 004 eq. 5) and the re-selected dictionary
            hist["meta_margin"][epoch], logits = dictionary.update(model, xt, onehot)
        else:
            logits = all_logits(model, xt)
        hist["loss"][epoch] = F.cross_entropy(logits, yt, reduction="none").cpu().numpy()
        hist["margin"][epoch] = label_margin(logits, yt).cpu().numpy()
        hist["omega_t"][epoch] = omega_t
        LOG.debug("%s epoch %d/%d: mean loss %.4f, mean ω_t %.3f", name, epoch + 1, g.epochs,
                  hist["loss"][epoch].mean(), np.nanmean(omega_t) if epoch >= warmup else 1.0)

    # the final model's logits: the last epoch's pass above (the model does not change after it)
    probs = torch.softmax(logits, 1).cpu().numpy().astype(np.float32)
    change = (change_sum / max(keep, 1)).astype(np.float32)
    others = change.copy()
    others[np.arange(n), y] = np.inf
    signals = {
        f"{name}_weight": last_mean(hist["omega_t"][warmup:], keep),
        f"{name}_suggested_label": others.argmin(1).astype(np.int64),
        **common_signals(name, probs, y, hist, g.last_epochs),
    }
    extras = {"omega": omega_last, "omega_change": change}
    if use_dictionary:
        extras["dictionary"] = dictionary.pool
    pool_size = len(dictionary.pool) if use_dictionary else len(trusted)
    LOG.info("%s: %d samples, %d classes, %d epochs (%d warm-up, meta set %s of %d) on %s", name, n, c,
             g.epochs, warmup, "dictionary" if use_dictionary else "trusted", pool_size, dev)
    return HeadResult(name, probs, signals, hist, extras, model=model.eval())
