"""Test-set accuracy of a trained head: overall, per class, and per shot group (paper 002 §4:
many >= 100, medium 20-100, few <= 20 training samples per class, docs/heads.md).

``result.model`` maps raw embeddings (N, d) to logits (N, C) (`curator.heads.registry` wraps the
standardisation into it), so the test embeddings need no preprocessing.
"""
from __future__ import annotations

import numpy as np
import torch

from curator.data.stats import shot_group
from curator.device import select_device


def predict_probs(model: torch.nn.Module, X: np.ndarray, *, device: str | torch.device | None = None,
                  chunk: int = 16384) -> np.ndarray:
    """Softmax probabilities (N, C) float32 of `model` on raw embeddings X (N, d)."""
    dev = select_device(str(device) if device is not None else None)
    model = model.to(dev).eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(X), chunk):
            xb = torch.as_tensor(np.asarray(X[s:s + chunk], dtype=np.float32), device=dev)
            out.append(torch.softmax(model(xb).float(), 1).cpu())
    return torch.cat(out).numpy()


def accuracy_report(probs: np.ndarray, y_test: np.ndarray, train_counts: np.ndarray) -> dict:
    """Accuracy overall, per class and per shot group (mean of the groups' per-class accuracies,
    as paper 002 reports). probs (M, C), y_test (M,), train_counts (C,) labelled training counts."""
    y_test = np.asarray(y_test)
    pred = probs.argmax(1)
    C = probs.shape[1]
    per_class = np.array([np.mean(pred[y_test == c] == c) if (y_test == c).any() else np.nan for c in range(C)])
    groups = shot_group(train_counts)
    per_shot = {}
    for g in ("many", "medium", "few"):
        sel = (groups == g) & ~np.isnan(per_class)
        per_shot[g] = float(np.mean(per_class[sel])) if sel.any() else None
    return {"accuracy": float(np.mean(pred == y_test)), "per_class": per_class.tolist(), "per_shot": per_shot,
            "n_test": int(len(y_test))}


def evaluate_on_test(model: torch.nn.Module, X_test: np.ndarray, y_test: np.ndarray, train_labels: np.ndarray,
                  n_classes: int, *, device=None) -> dict:
    """Accuracy report of a trained head on a labelled test set (train_labels give the shot groups)."""
    train_labels = np.asarray(train_labels)
    counts = np.bincount(train_labels[train_labels >= 0], minlength=n_classes)
    return accuracy_report(predict_probs(model, X_test, device=device), y_test, counts)
