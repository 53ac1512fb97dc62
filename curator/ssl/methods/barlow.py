"""Barlow Twins (Zbontar et al., ICML 2021): redundancy reduction (Barlow Twins eq. 1).

L = Σ_i (1 − C_ii)² + λ Σ_i Σ_{j≠i} C_ij², C the cross-correlation of the batch-standardised
projections of the two views, λ = 0.005; projector hidden and output 2048 (paper 000 §3.2).
Under DDP C is computed on the local batch (a documented simplification).
"""
from __future__ import annotations

import torch

from curator.ssl.methods.base import SSLMethod, mlp


def barlow_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float) -> torch.Tensor:
    """(B, D), (B, D) -> scalar."""
    b = z1.shape[0]
    z1 = z1.float()
    z2 = z2.float()
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + 1e-5)
    z2 = (z2 - z2.mean(0)) / (z2.std(0) + 1e-5)
    c = z1.T @ z2 / b                                               # (D, D)
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lambd * off


class BarlowTwins(SSLMethod):
    def __init__(self, backbone, feat_dim: int, dim: int = 2048, lambd: float = 0.005, head_dim: int | None = None):
        super().__init__(backbone, feat_dim)
        if head_dim is not None:
            dim = head_dim
        self.projector = mlp([feat_dim, dim, dim, dim])
        self.lambd = lambd

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = self.encode(views, self.backbone, self.projector)
        return {"loss": barlow_loss(z1, z2, self.lambd), "z": z1.detach()}
