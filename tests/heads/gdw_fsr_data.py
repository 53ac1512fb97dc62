"""Digits made long-tailed (exp, γ = 10) with 30% planted uniform noise, for the GDW / FSR tests."""
from __future__ import annotations

import numpy as np


def noisy_long_tailed_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return X (N, 64) standardised pixels, given labels y (N,), true labels t (N,)."""
    try:
        from curator.data.options import DatasetOptions
        from curator.data.registry import load_dataset

        ds = load_dataset(DatasetOptions(imbalance="exp", gamma=10, noise="uniform", noise_rate=0.3, seed=seed))
        train = ds.train
        imgs = ds.images.read_batch(train["image_ref"].to_numpy())          # (N, H, W, 3) uint8
        X = imgs[..., 0].reshape(len(train), -1).astype(np.float32)
        y, t = train["label"].to_numpy(np.int64), train["true_label"].to_numpy(np.int64)
    except ImportError:  # corruption tool absent: a small local equivalent
        from sklearn.datasets import load_digits

        X, t = load_digits(return_X_y=True)
        rng = np.random.default_rng(seed)
        n_max = np.bincount(t).max()
        keep = np.sort(np.concatenate([
            rng.choice(np.flatnonzero(t == c), size=int(round(n_max * 10 ** (-c / 9))), replace=False)
            for c in range(10)]))
        X, t = X[keep].astype(np.float32), t[keep]
        y = t.copy()
        flip = rng.random(len(y)) < 0.3
        y[flip] = (t[flip] + rng.integers(1, 10, flip.sum())) % 10
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    return X.astype(np.float32), y, t


def learned_like_features(X: np.ndarray, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Low-dimensional, non-negative "learned-like" features of standardised pixels X (N, 64): a fixed random
    projection to `dim` dims followed by a ReLU, like a small encoder's pooled output. (N, 64) -> (N, dim)."""
    proj = np.random.default_rng(seed).normal(size=(X.shape[1], dim)) / np.sqrt(X.shape[1])
    return np.maximum(X @ proj, 0.0).astype(np.float32)
