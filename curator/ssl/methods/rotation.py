"""Rotation prediction (Gidaris et al., ICLR 2018), the SSL pretext used by paper 001 (§4).

Every image of one augmented view is rotated by 0°, 90°, 180° and 270°; a small head predicts
which rotation was applied (4-way cross-entropy).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from curator.ssl.methods.base import SSLMethod, mlp


class Rotation(SSLMethod):
    n_views = 1

    def __init__(self, backbone, feat_dim: int, hidden: int = 512, head_dim: int | None = None):
        super().__init__(backbone, feat_dim)
        if head_dim is not None:
            hidden = head_dim
        self.head = mlp([feat_dim, hidden, 4], bias=True)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = views[0]                                                 # (B, 3, H, W)
        rot = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])  # (4B, 3, H, W)
        target = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
        logits = self.head(self.backbone(rot))
        return {"loss": F.cross_entropy(logits.float(), target), "z": logits.detach()}
