"""Embedding on a CPU: every usable core computes, and a long pass says its estimated time, images/s and time left."""
import logging

import numpy as np
import torch
from torch import nn

from curator.ssl.augment import AugmentRecipe
from curator.ssl.data import ResidentBatches
from curator.ssl.embed import Progress, extract_features, usable_cores


class Probe(nn.Module):
    """Mean colour per image, noting the torch threads it ran with."""

    def __init__(self):
        super().__init__()
        self.threads = []

    def forward(self, x):
        self.threads.append(torch.get_num_threads())
        return x.mean(dim=(2, 3))


def test_extract_features_uses_every_core_and_restores_the_count(caplog):
    px = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), np.uint8)
    rec = AugmentRecipe(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    model = Probe()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with caplog.at_level(logging.INFO, logger="curator.ssl.embed"):
            out = extract_features(model, ResidentBatches(px, torch.device("cpu")), np.arange(40), rec, 32,
                                   torch.device("cpu"), batch_size=16, progress="embed test")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert out.shape == (40, 3) and len(model.threads) == 3
    assert set(model.threads) == {usable_cores()}
    assert "embed test: 40 images at 32 px; estimated" in caplog.text and "embed test: 40 images in" in caplog.text


def test_progress_lines_say_rate_and_time_left(caplog):
    bar = Progress("embed train (torchvision:resnet18)", 100, 224, every_s=0.0)
    with caplog.at_level(logging.INFO, logger="curator.ssl.embed"):
        for _ in range(4):
            bar.update(25)
    lines = caplog.messages
    assert "100 images at 224 px; estimated" in lines[0] and "images/s" in lines[0]
    assert any("50/100 images" in ln and "images/s, about" in ln and "left" in ln for ln in lines[1:-1])
    assert "100 images in" in lines[-1]
