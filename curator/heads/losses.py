"""Loss functions of the robust heads, as pure functions on tensors.

Shapes: ``logits`` (B, C) float, ``targets`` (B,) int64, per-sample losses (B,). Every loss returns
per-sample values (``reduction="none"``); callers average.

- Logit adjustment: paper 000 eq. 1-2 (Menon et al. 2020).
- SuperLoss: paper 000 eq. 3-4 (Castells et al. 2020), σ* in closed form via the Lambert W function.
  The copy of paper 000 prints the clamp as max(·, 2/e); the SuperLoss paper clamps at −2/e, the
  lowest argument for which W is real (½·(−2/e) = −1/e). We use −2/e (docs/heads.md).
- Class-balanced weights by the effective number of samples (Cui et al. 2019), focal loss (Lin et
  al. 2017), LDAM with deferred re-weighting (Cao et al. 2019): the baselines of paper 001 table 2.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

INV_E = math.exp(-1.0)  # 1/e; W0 is real on [-1/e, inf)


# --- logit adjustment (paper 000 eq. 1-2) ---------------------------------------------------------
def log_class_prior(counts: np.ndarray | torch.Tensor) -> torch.Tensor:
    """log π_c from per-class label counts (C,). Empty classes count as one sample (finite log)."""
    c = torch.as_tensor(np.asarray(counts, dtype=np.float64)).clamp_min(1.0)
    return torch.log(c / c.sum()).float()


def logit_adjusted_logits(logits: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Eq. 1: f*(x) = f(x) + log π, added class-wise to every row. (B, C) + (C,) -> (B, C)."""
    return logits + log_prior.to(logits.device, logits.dtype)


def la_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Eq. 2: cross-entropy of the adjusted logits, per sample (B,).

    At test time the plain logits f(x) are used (the adjustment only shapes training), which makes
    the prediction approximately balanced-error optimal.
    """
    return F.cross_entropy(logit_adjusted_logits(logits, log_prior), targets, reduction="none")


# --- Lambert W and SuperLoss (paper 000 eq. 3-4) -------------------------------------------------
def lambert_w0(z: torch.Tensor, *, max_iter: int = 50, tol: float = 1e-12) -> torch.Tensor:
    """Principal branch W0(z) of the Lambert W function (w e^w = z), element-wise, no autograd.

    Valid on [−1/e, ∞); values below −1/e (beyond a 1e-12 rounding tolerance) give NaN. Computed
    in float64 with Halley's iteration from a branch-point series (z near −1/e), log1p(z)
    (moderate z) or the asymptotic log z − log log z (large z); returned in z's dtype.
    """
    with torch.no_grad():
        z64 = torch.as_tensor(z).to(torch.float64)
        bad = z64 < -INV_E - 1e-12
        x = z64.clamp_min(-INV_E)
        # initial guesses
        p = torch.sqrt((2.0 * (math.e * x + 1.0)).clamp_min(0.0))
        w_branch = -1.0 + p - p * p / 3.0 + (11.0 / 72.0) * p ** 3
        w_mid = torch.log1p(x)
        lx = torch.log(x.clamp_min(3.0))
        llx = torch.log(lx)
        w_big = lx - llx + llx / lx
        w = torch.where(x < -0.25, w_branch, torch.where(x < 3.0, w_mid, w_big))
        for _ in range(max_iter):
            ew = torch.exp(w)
            f = w * ew - x
            wp1 = w + 1.0
            denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
            safe = (denom != 0) & (wp1 != 0) & torch.isfinite(denom)
            step = torch.where(safe, f / torch.where(safe, denom, torch.ones_like(denom)), torch.zeros_like(f))
            w = w - step
            if step.numel() == 0 or float(step.abs().max()) < tol:
                break
        w = torch.where(bad, torch.full_like(w, float("nan")), w)
        return w.to(torch.as_tensor(z).dtype if torch.as_tensor(z).is_floating_point() else torch.float32)


def superloss_sigma(loss: torch.Tensor, tau: float | torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. 4: σ* = exp(−W0(½·max(−2/e, (ℓ − τ)/λ))), per sample; a constant w.r.t. parameters.

    σ* is the minimiser of (ℓ − τ)σ + λ(log σ)² over σ ∈ (0, e]. For ℓ − τ ≥ −2λ/e it is the
    unique stationary point there; for easier samples (ℓ − τ < −2λ/e) the objective still falls at
    σ = e, and the clamp returns that boundary value, σ* = e (the highest confidence). σ* = 1
    exactly when ℓ = τ; σ* < 1 means "harder than the average sample" (ℓ > τ).
    """
    with torch.no_grad():
        beta = ((loss.detach().to(torch.float64) - tau) / lam).clamp_min(-2.0 * INV_E)
        return torch.exp(-lambert_w0(0.5 * beta)).to(loss.dtype)


def superloss(loss: torch.Tensor, tau: float | torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. 3: L_SL = (ℓ − τ)σ* + λ(log σ*)², per sample, with σ* from `superloss_sigma` (no grad)."""
    sigma = superloss_sigma(loss, tau, lam)
    return (loss - tau) * sigma + lam * torch.log(sigma) ** 2


# --- class-balanced weights, focal, LDAM (paper 001's baselines) --------------------------------
def class_balanced_weights(counts: np.ndarray, beta: float = 0.9999) -> torch.Tensor:
    """Per-class weights ∝ 1 / E_n with E_n = (1 − β^n) / (1 − β) (Cui et al. 2019, eq. 3),
    normalised to sum to the number of non-empty classes; empty classes get weight 0. (C,)"""
    n = np.asarray(counts, dtype=np.float64)
    eff = (1.0 - np.power(beta, n)) / (1.0 - beta)
    w = np.where(n > 0, 1.0 / np.maximum(eff, 1e-12), 0.0)
    w = w * (n > 0).sum() / max(w.sum(), 1e-12)
    return torch.as_tensor(w, dtype=torch.float32)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Focal loss −(1 − p_y)^γ log p_y (Lin et al. 2017, eq. 4), per sample (B,)."""
    logp = F.log_softmax(logits, dim=1).gather(1, targets[:, None])[:, 0]  # (B,)
    return -((1.0 - logp.exp()).clamp_min(0.0) ** gamma) * logp


def ldam_margins(counts: np.ndarray, max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins Δ_c ∝ n_c^(−1/4), scaled so the largest is `max_margin` (Cao et al. 2019, eq. 12). (C,)"""
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    m = n ** -0.25
    return torch.as_tensor(m * (max_margin / m.max()), dtype=torch.float32)


def ldam_loss(cosine_logits: torch.Tensor, targets: torch.Tensor, margins: torch.Tensor, scale: float = 30.0,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """LDAM: cross-entropy of s·(z − Δ_y e_y) on normalised (cosine) logits z (Cao et al. 2019, eq. 13),
    optionally class-weighted (DRW passes class-balanced weights after the deferral). (B,)"""
    shifted = cosine_logits - F.one_hot(targets, cosine_logits.shape[1]) * margins.to(cosine_logits.device)[targets][:, None]
    return F.cross_entropy(scale * shifted, targets, weight=weight, reduction="none")

