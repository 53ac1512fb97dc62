"""BYOL (Grill et al., NeurIPS 2020): online network predicts a slowly moving target network.

L = ‖q̄(v) − z̄'(v')‖² = 2 − 2·cos(q, z')  symmetrised over the two views (BYOL eq. 2);
target ξ ← τ ξ + (1 − τ) θ with τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (BYOL §3.2).
Projector / predictor 4096 → 256 as in BYOL §3.3 (paper 000 keeps this architecture).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from curator.ssl.methods.base import SSLMethod, mlp


class BYOL(SSLMethod):
    def __init__(self, backbone, feat_dim: int, hidden: int = 4096, out_dim: int = 256, tau_base: float = 0.99,
                 head_dim: int | None = None):
        super().__init__(backbone, feat_dim)
        if head_dim is not None:
            hidden, out_dim = head_dim, max(head_dim // 4, 8)
        self.projector = mlp([feat_dim, hidden, out_dim], bias=True)
        self.predictor = mlp([out_dim, hidden, out_dim], bias=True)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in list(self.target_backbone.parameters()) + list(self.target_projector.parameters()):
            p.requires_grad_(False)
        self.tau_base = tau_base
        self.tau = tau_base

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        q1, q2 = self.encode(views, self.backbone, self.projector, self.predictor)   # (B, 256)
        with torch.no_grad():
            t1, t2 = self.encode(views, self.target_backbone, self.target_projector)
        loss = (2 - 2 * F.cosine_similarity(q1.float(), t2.float(), dim=-1).mean()) \
            + (2 - 2 * F.cosine_similarity(q2.float(), t1.float(), dim=-1).mean())
        return {"loss": loss, "z": q1.detach()}

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        self.tau = 1 - (1 - self.tau_base) * (math.cos(math.pi * min(progress, 1.0)) + 1) / 2
        online = list(self.backbone.parameters()) + list(self.projector.parameters())
        target = list(self.target_backbone.parameters()) + list(self.target_projector.parameters())
        torch._foreach_lerp_(target, online, 1 - self.tau)   # ξ ← τ ξ + (1 − τ) θ
        for tb, ob in zip(self.target_backbone.buffers(), self.backbone.buffers()):
            tb.copy_(ob)
