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


EMBED_N = 12  # digits embedded by the weights tests


def reference_embeddings(model: torch.nn.Module, size: int, mean, std, n: int = EMBED_N) -> np.ndarray:
    """`model`'s output on the first `n` digits, resized as curator resizes them and normalised with mean/std:
    what `curator embed` must reproduce for those weights."""
    from curator.data.images import resize_uint8

    px, _ = digits(n)
    x = torch.from_numpy(np.stack([resize_uint8(p, size) for p in px])).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    model.eval()
    with torch.no_grad():
        return model(x).numpy()


def embed_digits(out, *extra: str, n: int = EMBED_N) -> int:
    """`curator embed` on the first `n` clean digits into run directory `out`; the exit code."""
    from curator.cli import main

    return main(["embed", "--dataset", "digits", "--limit", str(n), "--noise", "none", "--imbalance", "none",
                 "--out", str(out), *extra])


def assert_close_embeddings(emb: np.ndarray, ref: np.ndarray) -> None:
    assert emb.shape == ref.shape
    assert np.allclose(emb.astype(np.float32), ref, rtol=2e-2, atol=2e-2 * np.abs(ref).max())
