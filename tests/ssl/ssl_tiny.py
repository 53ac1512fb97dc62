"""Tiny data shared by the SSL tests: sklearn digits as RGB uint8 (no downloads)."""
from __future__ import annotations

import numpy as np
import torch

from curator.ssl.config import SSLConfig
from curator.ssl.data import ResidentBatches
from curator.ssl.train import TrainData


def digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    b = load_digits()
    px = np.clip(np.rint(b.images * 255 / 16), 0, 255).astype(np.uint8)
    px = np.repeat(px[..., None], 3, 3)
    return (px[:n], b.target[:n]) if n else (px, b.target)


def tiny_data(n: int = 128) -> TrainData:
    px, y = digits(n)
    return TrainData(ResidentBatches(px, torch.device("cpu")), len(px), 8, np.ones(len(px), bool), y, 10)


def tiny_cfg(**kw) -> SSLConfig:
    base = dict(backbone="tiny_cnn", width=8, head_dim=64, epochs=3, batch_size=64, warmup_epochs=1, knn_every=0,
                knn_k=10, image_size=8, device="cpu", progress=False)
    base.update(kw)
    return SSLConfig.from_dict(base)
