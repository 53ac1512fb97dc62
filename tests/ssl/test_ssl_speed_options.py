"""The opt-in speed options (fuse_views, fused optimizer, batched augmentation) compute the same thing."""
from __future__ import annotations

import pytest
import torch

from curator.ssl.augment import Augmenter, augment, color_jitter_params, sample_params
from curator.ssl.config import ConfigError, SSLConfig
from curator.ssl.methods import recipe
from curator.ssl.train import build_method, make_optimizer


def _cfg(method: str, **kw) -> SSLConfig:
    return SSLConfig.from_dict({"method": method, "backbone": "tiny_cnn", "width": 8, "head_dim": 32, "batch_size": 512, **kw})


@pytest.mark.parametrize("method", ["simsiam", "byol", "simclr", "barlow"])
def test_fused_views_equal_unfused_in_eval_mode(method):
    torch.manual_seed(0)
    m, _, _ = build_method(_cfg(method), 8)
    m.eval()  # BN uses running statistics: fusing the batch must not change anything
    views = [torch.randn(6, 3, 8, 8), torch.randn(6, 3, 8, 8)]
    out = []
    for fuse in (False, True):
        m.fuse_views = fuse
        m.zero_grad()
        loss = m(views)["loss"]
        loss.backward()
        out.append((loss.detach(), [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    (l0, g0), (l1, g1) = out
    assert torch.allclose(l0, l1, atol=1e-5), (l0, l1)
    # tolerance relative to the largest gradient (Barlow's last bias has an analytically-zero gradient: pure noise)
    scale = max(g.abs().max().item() for g in g0)
    assert len(g0) == len(g1) > 0 and all((a - b).abs().max() <= 1e-4 * scale + 1e-6 for a, b in zip(g0, g1))


def test_fused_views_train_mode_differs_only_through_bn_statistics():
    torch.manual_seed(0)
    m, _, _ = build_method(_cfg("simsiam"), 8)
    v = torch.randn(6, 3, 8, 8)
    m.train()
    m.fuse_views = False
    a = m([v, v + 1])["loss"]
    m.fuse_views = True
    b = m([v, v + 1])["loss"]
    assert not torch.allclose(a, b)        # train-mode BN sees all 12 samples at once: a real difference
    m.fuse_views = False
    c = m([v, v])["loss"]
    m.fuse_views = True
    d = m([v, v])["loss"]                  # identical views: per-view and joint statistics coincide
    assert torch.allclose(c, d, atol=1e-5)


@pytest.mark.parametrize("method", ["simsiam", "byol"])
def test_fused_optimizer_step_matches_default(method):
    steps = []
    for fused in (False, True):
        torch.manual_seed(0)
        m, _, _ = build_method(_cfg(method, fused_optimizer=fused), 8)
        opt = make_optimizer(m, _cfg(method, fused_optimizer=fused))
        torch.manual_seed(1)
        loss = m([torch.randn(8, 3, 8, 8), torch.randn(8, 3, 8, 8)])["loss"]
        loss.backward()
        opt.step()
        steps.append([p.detach().clone() for p in m.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*steps))


def test_augmenter_views_and_sampling():
    x = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    rec = recipe("byol", 32)
    aug = Augmenter(rec, 16)
    a = aug.views(x, torch.Generator().manual_seed(4), 2)
    g = torch.Generator().manual_seed(4)
    b = [augment(x, rec, 16, g) for _ in range(2)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))          # unfused Augmenter == repeated augment()
    f = aug.views(x, torch.Generator().manual_seed(4), 2, fused=True)
    assert [t.shape for t in f] == [(5, 3, 16, 16)] * 2 and not torch.equal(f[0], f[1])
    p = sample_params(20000, rec, torch.Generator().manual_seed(0), "cpu")
    assert abs(p["flip"].float().mean() - rec.flip_p) < 0.02 and abs(p["jitter"].float().mean() - rec.jitter_p) < 0.02
    assert p["area"].min() >= rec.crop_scale[0] and p["area"].max() <= rec.crop_scale[1]
    assert p["hue"].abs().max() <= rec.hue and "sigma" not in p    # no blur in the CIFAR recipe: nothing drawn


def test_hue_shift_matches_torchvision():
    tvf = pytest.importorskip("torchvision.transforms.v2.functional")
    torch.manual_seed(0)
    x = torch.rand(4, 3, 6, 6)
    shifts = torch.tensor([-0.1, -0.03, 0.05, 0.1])
    rec = recipe("simsiam", 32)
    p = {"hue": shifts, "jitter": torch.ones(4, dtype=torch.bool)}
    ours = color_jitter_params(x, rec, p)
    ref = torch.stack([tvf.adjust_hue(x[i], float(shifts[i])) for i in range(4)])
    assert torch.allclose(ours, ref, atol=1e-4)


def test_compile_mode_validated():
    with pytest.raises(ConfigError):
        _cfg("simsiam", compile_mode="fastest")
    assert "fused_optimizer" not in _cfg("simsiam").training_fingerprint_fields()
    assert "fuse_views" not in _cfg("simsiam").training_fingerprint_fields()
    assert _cfg("simsiam", fuse_views=True).training_fingerprint_fields()["fuse_views"] is True
