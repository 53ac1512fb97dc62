"""SimCLR (Chen et al., ICML 2020): contrastive NT-Xent loss over 2B views (SimCLR eq. 1).

ℓ(i, j) = −log exp(sim(z_i, z_j)/T) / Σ_{k≠i} exp(sim(z_i, z_k)/T), averaged over all 2B anchors;
T = 0.5 (SimCLR's CIFAR setting), projector d → 2048 → 128. Under DDP the negatives are the
local batch's (no cross-rank gather), a documented simplification.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from curator.ssl.methods.base import SSLMethod, mlp


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, d), (B, d) -> scalar NT-Xent loss."""
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)          # (2B, d)
    sim = z @ z.T / temperature                                     # (2B, 2B)
    sim.fill_diagonal_(float("-inf"))
    target = (torch.arange(2 * b, device=z.device) + b) % (2 * b)  # i <-> i + B; built on the device (no sync)
    return F.cross_entropy(sim, target)


class SimCLR(SSLMethod):
    def __init__(self, backbone, feat_dim: int, hidden: int = 2048, out_dim: int = 128, temperature: float = 0.5,
                 head_dim: int | None = None):
        super().__init__(backbone, feat_dim)
        if head_dim is not None:
            hidden, out_dim = head_dim, max(head_dim // 4, 8)
        self.projector = mlp([feat_dim, hidden, out_dim], bias=True)
        self.temperature = temperature

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = self.encode(views, self.backbone, self.projector)
        return {"loss": nt_xent(z1, z2, self.temperature), "z": z1.detach()}
