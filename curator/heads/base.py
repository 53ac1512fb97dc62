"""What every robust head returns, so the signals stage can treat heads alike.

A head trains on cached embeddings X (N x d float32) with given labels y (N,), C classes, and
returns a `HeadResult`:

- ``probs``: (N, C) float32, the head's final class probabilities for every training sample
  (out-of-sample where the head supports it);
- ``signals``: per-sample summary columns, already named ``<head>_<quantity>`` (for example
  ``lasl_sigma`` for SuperLoss σ*), each an (N,) array, declared in `curator.signals.spec`;
- ``history``: per-epoch records, name -> (E, N) float32 (loss, margin, σ*, ω_t, meta-margin, ...),
  written to ``RUN/history/<head>.npz`` for the explorer's time series;
- ``extras``: other arrays worth keeping (e.g. GDW's final ω matrix, N x C; the FSR dictionary);
- ``model``: the trained torch module (to predict on a test set), or None.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class HeadResult:
    name: str
    probs: np.ndarray
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    model: Any = None
    seconds: float = 0.0
