"""Pieces shared by the SSL methods: MLP heads and the method interface.

A method is an ``nn.Module`` holding the backbone; ``forward(views)`` takes ``n_views`` augmented
batches (each (B, 3, H, W)) and returns a dict with at least ``loss`` (a scalar, float32).
``after_step(progress)`` runs after each optimizer step (BYOL's target update); ``progress`` is
the share of training done, in [0, 1].

``encode(views, *stages)`` runs the views through a chain of modules (backbone, projector, ...).
With ``fuse_views`` set (SSLConfig.fuse_views) the views are concatenated along the batch and go
through each stage in ONE call, then are split back: fewer, larger kernels. This is exactly the
unfused computation except for BatchNorm in training mode, whose batch statistics are then taken
over all views together (2B samples) instead of per view (B samples) — tested equal in eval mode.
"""
from __future__ import annotations

import torch
from torch import nn


def mlp(dims: list[int], *, last_bn: bool = False, last_bn_affine: bool = True, bias: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU blocks through `dims`; the last layer is Linear (+ BN if `last_bn`)."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=bias or (last and not last_bn)))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=last_bn_affine))
    return nn.Sequential(*layers)


class SSLMethod(nn.Module):
    n_views: int = 2

    def __init__(self, backbone: nn.Module, feat_dim: int):
        super().__init__()
        self.backbone = backbone
        self.feat_dim = feat_dim
        self.fuse_views = False

    def encode(self, views: list[torch.Tensor], *stages: nn.Module) -> list[torch.Tensor]:
        """[(B_i, ...)] views -> [stages[-1](...stages[0](view))] per view; one call per stage when fused."""
        if self.fuse_views and len(views) > 1:
            y = torch.cat(views)                                          # (sum B_i, ...)
            for stage in stages:
                y = stage(y)
            return list(y.split([v.shape[0] for v in views]))
        out = []
        for y in views:
            for stage in stages:
                y = stage(y)
            out.append(y)
        return out

    def after_step(self, progress: float) -> None:  # noqa: B027 - optional hook
        """Called after every optimizer step."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, d): what `curator embed` stores."""
        return self.backbone(x)
