"""Every SSL method's loss falls over a few dozen steps and its features do not collapse."""
import numpy as np
import pytest
import torch

from curator.ssl.augment import augment, plain_view
from curator.ssl.methods import METHODS, recipe
from curator.ssl.train import pretrain, lr_at

from ssl_tiny import tiny_cfg, tiny_data


@pytest.mark.parametrize("method", sorted(METHODS))
def test_loss_falls_and_no_collapse(method, tmp_path):
    torch.set_num_threads(2)
    data = tiny_data(128)
    cfg = tiny_cfg(method=method, epochs=16, warmup_epochs=1)   # 2 steps/epoch -> 32 steps
    res = pretrain(data, cfg, tmp_path, torch.device("cpu"), seed=0)
    losses = np.array([h["loss"] for h in res.history])
    assert np.isfinite(losses).all()
    assert losses[-3:].mean() < losses[:3].mean(), f"{method} loss did not fall: {losses.round(3)}"
    with torch.no_grad():
        res.method.eval()
        x = data.batches.data[:128]
        feats = torch.nn.functional.normalize(res.method.backbone(plain_view(x, res.recipe, 8)), dim=1)
    d = feats.shape[1]
    # uniformly spread unit vectors have per-dimension std ~ 1/sqrt(d); a collapsed encoder ~ 0
    assert feats.std(0).mean().item() > 0.1 / np.sqrt(d), f"{method} features collapsed"


def test_augment_is_seeded_and_shaped():
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    rec = recipe("byol", 32)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = augment(x, rec, 32, g1), augment(x, rec, 32, g2)
    assert a.shape == (6, 3, 32, 32) and torch.equal(a, b)
    c = augment(x, rec, 32, g1)   # generator advanced: a different view
    assert not torch.equal(a, c)
    big = augment(torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8), recipe("simsiam", 96), 64, g1)
    assert big.shape == (2, 3, 64, 64) and torch.isfinite(big).all()


def test_hue_roundtrip_keeps_colours():
    from curator.ssl.augment import _hsv_to_rgb, _rgb_to_hsv

    x = torch.rand(4, 3, 5, 5)
    assert torch.allclose(_hsv_to_rgb(_rgb_to_hsv(x)), x, atol=1e-5)


def test_lr_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01
