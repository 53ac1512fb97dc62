"""The projection head trained on frozen embeddings (paper 000 §3.2: 2 FC layers, fine-tuned).

`ProjectionHead` = trunk (``features``) + last linear layer (``classifier``). FSR's meta step and
GDW's logit-gradient manipulation act on the classifier / logits only, so the split is explicit.
"""
from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    def __init__(self, d_in: int, n_classes: int, hidden: int = 512, n_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(max(n_layers - 1, 0)):
            layers += [nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = hidden
        self.features = nn.Sequential(*layers)  # (N, d_in) -> (N, d)
        self.classifier = nn.Linear(d, n_classes)  # (N, d) -> (N, C)
        self.out_dim = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d_in) -> (N, C) logits
        return self.classifier(self.features(x))
