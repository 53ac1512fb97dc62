"""What every robust head receives and returns, so the stages can treat heads alike.

`train_head` (curator.heads.registry) validates the embeddings once, standardises them and puts them
on the device, and hands the head's trainer a `HeadData`. The trainer returns a `HeadResult`:

- ``probs``: (N, C) float32, the head's final class probabilities for every training sample. The
  head was trained on these very samples and labels, so they are **in-sample**: they partly echo the
  given label (a memorised wrong label looks likely). Only cross-fitting (a head trained without the
  sample) gives out-of-fold probabilities;
- ``signals``: per-sample summary columns, named ``<head>_<quantity>`` (for example ``lasl_sigma``
  for SuperLoss σ*), each an (N,) array, declared in `curator.columns`;
- ``history``: per-epoch records, name -> (E, N) (loss, margin, σ*, ω_t, meta-margin, ...), written
  to ``RUN/history/<head>.npz`` for the explorer's time series;
- ``extras``: other arrays worth keeping (e.g. GDW's final ω matrix, N x C; the FSR dictionary);
- ``model``: the trained torch module. From `train_head` it maps raw embeddings (M, d) to logits
  (M, C) (the standardisation is inside it), so it predicts on a test set or a held-out fold;
  None after a reload from the run directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass
class HeadResult:
    name: str
    probs: np.ndarray
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    model: Any = None
    seconds: float = 0.0


@dataclass
class HeadData:
    """A head's training inputs, validated, standardised with the training statistics, on the device.

    A trainer's returned model maps these standardised inputs to logits; `train_head` wraps the
    standardisation around it.
    """

    X: "torch.Tensor"                        # (N, d) float32 standardised embeddings (view 0)
    y: np.ndarray                            # (N,) int64 given labels in [0, C), -1 = unlabeled
    n_classes: int
    seed: int
    views: "torch.Tensor | None" = None      # (V, N, d) standardised cached views (view 0 first), or None
    meta_mask: np.ndarray | None = None      # (N,) bool trusted samples (a meta set), or None
    teacher: HeadResult | None = None        # the result of the head this one learns from (semi)

    def rows(self, keep: np.ndarray) -> "HeadData":
        """The same inputs restricted to rows `keep` (N,) bool."""
        idx = np.flatnonzero(keep)
        return replace(self, X=self.X[idx], y=self.y[idx],
                       views=None if self.views is None else self.views[:, idx],
                       meta_mask=None if self.meta_mask is None else self.meta_mask[idx])
