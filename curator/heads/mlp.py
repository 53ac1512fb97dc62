"""The projection head trained on frozen embeddings (paper 000 §3.2: 2 FC layers, fine-tuned).

`ProjectionHead` = trunk (``features``) + last linear layer (``classifier``). FSR's meta step and
GDW's logit-gradient manipulation act on the classifier / logits only, so the split is explicit.
`eval_chunks` is the one evaluation pass over all training samples that every head's records use.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

EVAL_CHUNK = 16384  # rows per forward pass when evaluating all samples


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


@torch.no_grad()
def eval_chunks(model: ProjectionHead, X: torch.Tensor, fn: Callable[[int, torch.Tensor, torch.Tensor], Any]) -> list:
    """Evaluate `model` (eval mode, no grad) on all rows of X (N, d) in chunks; returns
    [fn(start, features (B, h), logits (B, C)) for each chunk]. The model is back in train mode after."""
    model.eval()
    out = []
    for s in range(0, X.shape[0], EVAL_CHUNK):
        feats = model.features(X[s:s + EVAL_CHUNK])
        out.append(fn(s, feats, model.classifier(feats)))
    model.train()
    return out


def all_logits(model: ProjectionHead, X: torch.Tensor) -> torch.Tensor:
    """Logits (N, C) of every row of X (N, d), in eval mode, filled in place chunk by chunk: the (N, h) trunk
    features are never held whole (at 1M rows they would be 2 GB)."""
    out: list[torch.Tensor] = []

    def keep(s: int, _feats: torch.Tensor, logits: torch.Tensor) -> None:
        if not out:
            out.append(logits.new_empty((X.shape[0], logits.shape[1])))
        out[0][s:s + len(logits)] = logits

    eval_chunks(model, X, keep)
    return out[0]
