"""What happens to the embeddings once, before any head trains: validation and standardisation.

- `validate`: embeddings (N, d) or (V, N, d) finite, labels (N,) in [-1, C) (-1 = unlabeled), at
  least two labelled samples, an optional (N,) trusted mask that selects a labelled sample.
- `standardization`: the z-score statistics of the training embeddings (view 0): per-dimension mean
  and population standard deviation, accumulated in float64 over row blocks; a (near-)constant dimension
  keeps scale 1. `standardized` applies them block by block.
- `StandardizedHead`: the trained head behind that z-score, so ``model(raw_embeddings)`` gives logits.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

MIN_STD = 1e-6  # dimensions whose standard deviation is at most this are left unscaled
CHUNK = 65_536  # rows per block: no (N, d) temporary beyond the one standardised copy (1M x 512: 2 GB, not 8)


def validate(name: str, X, y, n_classes: int, meta_mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check the inputs of head `name`; return (views (V, N, d) float16/32, y (N,) int64, meta_mask (N,) bool or None).

    Raises ValueError naming the first offending sample or row.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or y.ndim != 1 or X.shape[1] != y.shape[0]:
        raise ValueError(f"{name}: embeddings must be (N, d) or (V, N, d) and labels (N,); got {X.shape} and {y.shape}")
    if n_classes < 2:
        raise ValueError(f"{name}: need at least 2 classes, got {n_classes}")
    bad = np.flatnonzero((y < -1) | (y >= n_classes))
    if bad.size:
        raise ValueError(f"{name}: sample {int(bad[0])} has label {int(y[bad[0]])} outside [-1, {n_classes}) "
                         f"({bad.size} such samples)")
    finite = np.concatenate([np.isfinite(X[:, s:s + CHUNK]).all(axis=(0, 2)) for s in range(0, X.shape[1], CHUNK)])
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name}: embedding row {row} contains NaN or inf ({int((~finite).sum())} such rows)")
    if (y >= 0).sum() < 2:
        raise ValueError(f"{name}: need at least 2 labelled samples")
    if meta_mask is not None:
        meta_mask = np.asarray(meta_mask, dtype=bool)
        if meta_mask.shape != y.shape:
            raise ValueError(f"{name}: meta_mask must be (N,) = {y.shape}, got {meta_mask.shape}")
        if not (meta_mask & (y >= 0)).any():
            raise ValueError(f"{name}: meta_mask selects no labelled sample")
    # float16 / float32 views stay as they are (standardization and standardized convert block by block: a
    # float32 copy of 1M x 512 float16 embeddings would cost 2 GB); labels: an own copy
    views = X if X.dtype in (np.float16, np.float32) else X.astype(np.float32)
    return views, np.array(y, dtype=np.int64), meta_mask


def standardization(X0: np.ndarray, enabled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), std (d,)) float32 z-score statistics of X0 (N, d); zeros and ones when not `enabled`.

    Two passes over row blocks, accumulated in float64 (mean, then the mean squared deviation from it)."""
    n, d = X0.shape
    if not enabled:
        return np.zeros(d, np.float32), np.ones(d, np.float32)
    total = np.zeros(d, np.float64)
    for s in range(0, n, CHUNK):
        total += X0[s:s + CHUNK].sum(0, dtype=np.float64)
    mean = total / max(n, 1)
    sq = np.zeros(d, np.float64)
    for s in range(0, n, CHUNK):
        sq += np.square(X0[s:s + CHUNK] - mean).sum(0)
    std = np.sqrt(sq / max(n, 1)).astype(np.float32)
    return mean.astype(np.float32), np.where(std > MIN_STD, std, 1.0).astype(np.float32)


def standardized(views: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(views - mean) / std as a new float32 array (V, N, d), computed in row blocks (one copy is the peak)."""
    out = np.empty(views.shape, np.float32)
    for s in range(0, views.shape[1], CHUNK):
        np.subtract(views[:, s:s + CHUNK], mean, out=out[:, s:s + CHUNK])
        out[:, s:s + CHUNK] /= std
    return out


class StandardizedHead(nn.Module):
    """z-scores raw embeddings with the training statistics, then applies the trained head. (M, d) -> (M, C)"""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, head: nn.Module):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((x.to(self.mean.dtype) - self.mean) / self.std)
