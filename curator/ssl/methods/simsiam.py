"""SimSiam (Chen & He, CVPR 2021): a Siamese network with a predictor and a stop-gradient.

L = ½ D(p1, sg(z2)) + ½ D(p2, sg(z1)), D(p, z) = −cos(p, z)  (SimSiam eq. 1–2).
Projector with 2 FC layers as in paper 000 §3.2 (instead of SimSiam's 3), ending in BN;
predictor bottleneck 2048 → 512 → 2048.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from curator.ssl.methods.base import SSLMethod, mlp


class SimSiam(SSLMethod):
    def __init__(self, backbone, feat_dim: int, proj_dim: int = 2048, pred_hidden: int = 512, head_dim: int | None = None):
        super().__init__(backbone, feat_dim)
        if head_dim is not None:  # small models (digits): scale the heads down, keep the 4:1 bottleneck
            proj_dim, pred_hidden = head_dim, max(head_dim // 4, 8)
        self.projector = mlp([feat_dim, proj_dim, proj_dim], last_bn=True)
        self.predictor = mlp([proj_dim, pred_hidden, proj_dim], bias=True)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = self.encode(views, self.backbone, self.projector)   # (B, 2048) each
        p1, p2 = self.encode([z1, z2], self.predictor)
        loss = -0.5 * (F.cosine_similarity(p1.float(), z2.detach().float(), dim=-1).mean()
                       + F.cosine_similarity(p2.float(), z1.detach().float(), dim=-1).mean())
        return {"loss": loss, "z": z1.detach()}
