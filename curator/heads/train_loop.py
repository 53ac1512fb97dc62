"""The shared mini-batch trainer of every head on cached embeddings.

Whole-tensor mini-batching: the (standardised) embeddings live on the device as one tensor and a
batch is an index tensor into it, so there is no DataLoader and no per-sample Python work. With
several cached views (V, N, d) each sample of a batch draws one view at random; records always use
view 0 (the un-augmented embedding).

After every epoch the trainer evaluates ALL training samples (eval mode, chunks) and records the
head's per-sample quantities: ``loss`` (the head's base per-sample loss), ``margin`` (given-label
logit minus the best other, on the decision logits), ``pred`` (argmax) and whatever the head adds
(e.g. SuperLoss ``sigma``). These become RUN/history/<head>.npz, name -> (E, N).

A head is an `Objective`: how to build batches, the batch loss, and what to record.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from curator.heads.losses import label_margin

LOG = logging.getLogger(__name__)
RECORD_CHUNK = 16384


class Objective:
    """Base objective: random batches of labelled samples, cross-entropy. Subclasses override."""

    #: record keys that do not depend on the given label (kept for unlabeled rows, y = -1)
    label_free_keys: tuple[str, ...] = ("pred",)

    def setup(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int) -> None:
        """Called once before training (compute priors, weights... from y (N,), -1 = unlabeled)."""
        self.n_classes = n_classes
        self.epochs = epochs

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, rng: np.random.Generator, train_idx: np.ndarray, batch_size: int) -> Iterator[Any]:
        """Yield batches (index arrays into the N samples) for one epoch: a random permutation."""
        perm = rng.permutation(train_idx)
        for s in range(0, len(perm), batch_size):
            yield perm[s:s + batch_size]

    def batch_loss(self, model: nn.Module, take, y: torch.Tensor, batch) -> torch.Tensor:
        """Scalar loss of one batch; `take(idx)` returns the (B, d) inputs of index array idx."""
        idx = torch.as_tensor(batch, device=y.device)
        logits = model(take(batch))
        return self.per_sample_loss(logits, y[idx]).mean()

    def per_sample_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets, reduction="none")

    def decision_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits whose softmax are the head's probabilities (and whose argmax is its prediction)."""
        return logits

    def record(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample records of one chunk: logits (B, C) model outputs, y (B,) labels clamped >= 0."""
        dec = self.decision_logits(logits)
        return {"loss": self.per_sample_loss(logits, y), "margin": label_margin(dec, y), "pred": dec.argmax(1)}

    def parameters(self, model: nn.Module):
        return model.parameters()


def _eval_all(model: nn.Module, X: torch.Tensor, fn) -> list:
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, X.shape[0], RECORD_CHUNK):
            out.append(fn(s, model(X[s:s + RECORD_CHUNK])))
    model.train()
    return out


def fit(model: nn.Module, X: torch.Tensor, y: np.ndarray, n_classes: int, objective: Objective, *,
        epochs: int, batch_size: int, lr: float, weight_decay: float = 0.0, seed: int = 0,
        views: torch.Tensor | None = None, name: str = "head") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train `model` on X (N, d) (already on its device) with labels y (N,), -1 = unlabeled.

    Returns (probs (N, C) float32 of the trained model, history name -> (E, N) array).
    `views` (V, N, d), when given, replaces X for training batches (one random view per sample).
    """
    device = X.device
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    y_np = np.array(y, dtype=np.int64)  # a writable copy
    y_t = torch.as_tensor(y_np, device=device)
    y_rec = y_t.clamp_min(0)
    unlabeled = torch.as_tensor(y_np < 0, device=device)
    train_idx = np.flatnonzero(y_np >= 0)
    if len(train_idx) == 0:
        raise ValueError(f"{name}: no labelled training samples")
    objective.setup(model, X, y_t, n_classes, epochs)
    opt = torch.optim.Adam(objective.parameters(model), lr=lr, weight_decay=weight_decay)
    n_views = 0 if views is None else views.shape[0]

    def take(idx) -> torch.Tensor:
        idx_t = torch.as_tensor(idx, device=device)
        if n_views:
            v = torch.as_tensor(rng.integers(0, n_views, len(idx)), device=device)
            return views[v, idx_t]
        return X[idx_t]

    history: dict[str, list[np.ndarray]] = {}
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        objective.start_epoch(epoch)
        total, steps = 0.0, 0
        for batch in objective.batches(rng, train_idx, batch_size):
            loss = objective.batch_loss(model, take, y_t, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        chunks = _eval_all(model, X, lambda s, logits: objective.record(logits, y_rec[s:s + logits.shape[0]]))
        for key in chunks[0]:
            val = torch.cat([c[key] for c in chunks])
            if key not in objective.label_free_keys and val.is_floating_point():
                val = val.masked_fill(unlabeled, float("nan"))
            arr = val.cpu().numpy()
            arr = arr.astype(np.int16 if not np.issubdtype(arr.dtype, np.floating) else np.float32)
            history.setdefault(key, []).append(arr)
        LOG.debug("%s epoch %d/%d: mean batch loss %.4f", name, epoch + 1, epochs, total / max(steps, 1))
    probs = torch.cat(_eval_all(model, X, lambda s, logits: torch.softmax(objective.decision_logits(logits), 1)))
    LOG.info("%s: %d epochs on %d samples in %.1f s", name, epochs, len(train_idx), time.perf_counter() - t0)
    return probs.float().cpu().numpy(), {k: np.stack(v) for k, v in history.items()}


# --- summaries of the records into signal columns --------------------------------------------------
def last_mean(history: dict[str, np.ndarray], key: str, last_epochs: int) -> np.ndarray:
    """Mean of a (E, N) record over its last `last_epochs` epochs, (N,) float32 (NaN stays NaN)."""
    h = history[key]
    return np.mean(h[-min(last_epochs, h.shape[0]):].astype(np.float64), axis=0).astype(np.float32)


def common_signals(head: str, probs: np.ndarray, y: np.ndarray, history: dict[str, np.ndarray],
                   last_epochs: int) -> dict[str, np.ndarray]:
    """The four common columns of one head from its final probs (N, C) and records."""
    y = np.asarray(y)
    prob_label = np.where(y >= 0, probs[np.arange(len(y)), np.clip(y, 0, None)], np.nan).astype(np.float32)
    return {
        f"{head}_prob_label": prob_label,
        f"{head}_pred": probs.argmax(1).astype(np.int64),
        f"{head}_margin": last_mean(history, "margin", last_epochs),
        f"{head}_loss": last_mean(history, "loss", last_epochs),
    }
