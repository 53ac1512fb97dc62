"""The shared mini-batch trainer of the heads on cached embeddings (every head but GDW and FSR,
whose bi-level meta steps need loops of their own).

Whole-tensor mini-batching: the (standardised) embeddings live on the device as one tensor and a
batch is an index tensor into it, so there is no DataLoader and no per-sample Python work. With
several cached views (V, N, d) each sample of a batch draws one view at random; records always use
view 0 (the un-augmented embedding).

After every epoch the trainer evaluates ALL training samples (eval mode, chunks) and records the
head's per-sample quantities: ``loss`` (the head's base per-sample loss), ``margin`` (given-label
logit minus the best other, on the decision logits), ``pred`` (argmax) and whatever the head adds
(e.g. SuperLoss ``sigma``). These become RUN/history/<head>.npz, name -> (E, N). The last epoch's pass
also gives the head's final probabilities (the model does not change after it).

A head is an `Objective`: how to build batches, the batch loss, what to record, and (optionally)
its own classifier layer, signal columns and extras.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from curator.heads.mlp import ProjectionHead, eval_chunks
from curator.heads.records import label_margin

LOG = logging.getLogger(__name__)
LABEL_FREE_RECORDS = ("pred",)  # records that do not depend on the given label (kept for unlabeled rows)
PROBS = "_probs"                 # the final probabilities, taken in the last epoch's record pass


def shuffled_batches(rng: np.random.Generator, idx: np.ndarray | int, batch_size: int) -> list[np.ndarray]:
    """One shuffled epoch of `idx` (an index array, or n for 0..n-1) in batches of `batch_size`.

    A last batch of a single sample joins the one before it: BatchNorm cannot train on one sample.
    """
    order = rng.permutation(idx)
    out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(out) > 1 and len(out[-1]) < 2:
        last = out.pop()
        out[-1] = np.concatenate([out[-1], last])
    return out


def batch_count(n: int, batch_size: int) -> int:
    """How many batches `shuffled_batches` makes of n samples."""
    k = -(-n // batch_size)
    return k - 1 if k > 1 and n - (k - 1) * batch_size < 2 else k


class Objective:
    """Base objective: random batches of labelled samples, cross-entropy. Subclasses override."""

    def setup(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int) -> None:
        """Called once before training (compute priors, weights... from y (N,), -1 = unlabeled)."""
        self.n_classes = n_classes
        self.epochs = epochs

    def start_epoch(self, epoch: int) -> None:
        """Called at the start of every epoch (0-based), e.g. to switch on deferred re-weighting."""

    def batches(self, rng: np.random.Generator, train_idx: np.ndarray, batch_size: int) -> Iterator[Any]:
        """Batches (index arrays into the N samples) for one epoch: a random permutation of `train_idx`."""
        return iter(shuffled_batches(rng, train_idx, batch_size))

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

    # --- what a head built on this objective adds (see curator.heads.standard.minibatch) -------------
    def classifier(self, d: int, n_classes: int) -> nn.Module | None:
        """A last layer replacing the projection head's linear classifier (d -> C), or None to keep it."""
        return None

    def signals(self, head: str, history: dict[str, np.ndarray], last_epochs: int) -> dict[str, np.ndarray]:
        """Signal columns beyond the common four, from the records (E, N)."""
        return {}

    def extras(self) -> dict[str, np.ndarray]:
        return {}

    def predictor(self, model: nn.Module) -> nn.Module:
        """The trained model as a map from inputs to the decision logits."""
        return model


def fit(model: ProjectionHead, X: torch.Tensor, y: np.ndarray, n_classes: int, objective: Objective, *,
        epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
        views: torch.Tensor | None = None, name: str = "head") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train `model` with Adam on X (N, d) (already on its device) with labels y (N,), -1 = unlabeled.

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
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
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
        last = epoch == epochs - 1

        def rec(s, _, logits):  # the last epoch's pass also gives the final probabilities (no pass of its own)
            out = objective.record(logits, y_rec[s:s + logits.shape[0]])
            if last:
                out[PROBS] = torch.softmax(objective.decision_logits(logits), 1)
            return out

        chunks = eval_chunks(model, X, rec)
        if last:
            probs = torch.cat([c.pop(PROBS) for c in chunks])
        for key in chunks[0]:
            val = torch.cat([c[key] for c in chunks])
            if key not in LABEL_FREE_RECORDS and val.is_floating_point():
                val = val.masked_fill(unlabeled, float("nan"))
            arr = val.cpu().numpy()
            arr = arr.astype(np.int16 if not np.issubdtype(arr.dtype, np.floating) else np.float32)
            history.setdefault(key, []).append(arr)
        LOG.debug("%s epoch %d/%d: mean batch loss %.4f", name, epoch + 1, epochs, total / max(steps, 1))
    LOG.info("%s: %d epochs on %d samples in %.1f s", name, epochs, len(train_idx), time.perf_counter() - t0)
    return probs.float().cpu().numpy(), {k: np.stack(v) for k, v in history.items()}
