"""Per-sample records of a head and how they become signal columns (shared by every head).

Every head records, after each epoch, for every training sample: ``loss`` (its own base per-sample
loss), ``margin`` (`label_margin`) and whatever it adds (σ*, ω_t, meta-margin, ...): name -> (E, N).
Signal columns average a record over the last epochs (`last_mean`): a training-dynamics summary of
how hard the given label was to fit, not a prediction.
"""
from __future__ import annotations

import numpy as np
import torch


def label_margin(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Given-label logit minus the best other logit, per sample: (B, C), (B,) -> (B,); > 0 means the label wins."""
    given = logits.gather(1, targets[:, None])[:, 0]
    others = logits.scatter(1, targets[:, None], float("-inf"))
    return given - others.max(dim=1).values


def last_mean(record: np.ndarray, last_epochs: int) -> np.ndarray:
    """Mean of an (E, N) record over its last `last_epochs` epochs (at least one), (N,) float32.

    Accumulated in float64; a NaN (an unlabeled row) stays NaN.
    """
    k = max(1, min(last_epochs, record.shape[0]))
    return np.mean(record[-k:].astype(np.float64), axis=0).astype(np.float32)


def common_signals(head: str, probs: np.ndarray, y: np.ndarray, history: dict[str, np.ndarray],
                   last_epochs: int) -> dict[str, np.ndarray]:
    """The four columns every head writes, from its final probs (N, C), labels y (N,) (-1 = unlabeled)
    and its ``margin`` and ``loss`` records (E, N): ``<head>_prob_label``, ``_pred``, ``_margin``, ``_loss``."""
    y = np.asarray(y)
    prob_label = np.where(y >= 0, probs[np.arange(len(y)), np.clip(y, 0, None)], np.nan).astype(np.float32)
    return {
        f"{head}_prob_label": prob_label,
        f"{head}_pred": probs.argmax(1).astype(np.int64),
        f"{head}_margin": last_mean(history["margin"], last_epochs),
        f"{head}_loss": last_mean(history["loss"], last_epochs),
    }
