"""Batched image augmentations on any device (GPU for speed, CPU for tests and the demo).

The views of SimCLR/SimSiam/BYOL (SimCLR §3, appendix A; BYOL table 6; SimSiam §4): random
resized crop, horizontal flip, colour jitter (brightness, contrast, saturation, hue) applied with
probability p, random grayscale, Gaussian blur and solarisation where the recipe has them. Every
operation draws its per-sample parameters from one `torch.Generator`, so a view is reproducible
from (seed, epoch, step) — which is what makes resume-after-kill exact.

Differences from torchvision's per-image transforms, on purpose: crops whose aspect ratio does not
fit are clamped instead of re-sampled; the four jitter operations run in a fixed order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.247, 0.243, 0.261)


@dataclass(frozen=True)
class AugmentRecipe:
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD


def _u(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) or (B, 3, H, W) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    if x_uint8.shape[-1] == 3 and x_uint8.shape[1] != 3:
        x_uint8 = x_uint8.permute(0, 3, 1, 2)
    return x_uint8.float().div_(255.0)


def random_resized_crop(x: torch.Tensor, out: int, scale, ratio, flip_p: float, g: torch.Generator) -> torch.Tensor:
    """Per-sample crop of area share in `scale` and aspect in `ratio`, resized to out x out, with flips.

    One affine grid per sample (grid_sample, bilinear): (B, 3, H, W) -> (B, 3, out, out).
    """
    b, dev = x.shape[0], x.device
    area = _u(b, scale[0], scale[1], g, dev)
    log_r = _u(b, math.log(ratio[0]), math.log(ratio[1]), g, dev)
    r = torch.exp(log_r)
    w = torch.sqrt(area * r).clamp(max=1.0)   # crop width as a share of the image width
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (torch.rand(b, generator=g, device=dev) * 2 - 1) * (1 - w)  # centre in [-1, 1] coordinates
    cy = (torch.rand(b, generator=g, device=dev) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(b, generator=g, device=dev) < flip_p, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [b, 3, out, out], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,1,H,W), ITU-R 601 luma
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, gch, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-8), torch.zeros_like(maxc))
    d = delta.clamp(min=1e-8)
    h = torch.where(maxc == r, ((gch - b) / d) % 6, torch.where(maxc == gch, (b - r) / d + 2, (r - gch) / d + 4))
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # rows: i = 0..5 -> (r, g, b)
    table = torch.stack([torch.stack([v, t, p], 1), torch.stack([q, v, p], 1), torch.stack([p, v, t], 1),
                         torch.stack([p, q, v], 1), torch.stack([t, p, v], 1), torch.stack([v, p, q], 1)], 1)
    idx = i[:, None, None].expand(-1, 1, 3, *i.shape[1:])  # (B,1,3,H,W)
    return table.gather(1, idx).squeeze(1)


def color_jitter(x: torch.Tensor, rec: AugmentRecipe, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation, hue with per-sample factors; applied to a share jitter_p."""
    b, dev = x.shape[0], x.device
    y = x
    if rec.brightness:
        y = (y * _u(b, 1 - rec.brightness, 1 + rec.brightness, g, dev).view(b, 1, 1, 1)).clamp(0, 1)
    if rec.contrast:
        m = _gray(y).mean((1, 2, 3), keepdim=True)
        y = ((y - m) * _u(b, 1 - rec.contrast, 1 + rec.contrast, g, dev).view(b, 1, 1, 1) + m).clamp(0, 1)
    if rec.saturation:
        gr = _gray(y)
        y = ((y - gr) * _u(b, 1 - rec.saturation, 1 + rec.saturation, g, dev).view(b, 1, 1, 1) + gr).clamp(0, 1)
    if rec.hue:
        hsv = _rgb_to_hsv(y)
        shift = _u(b, -rec.hue, rec.hue, g, dev).view(b, 1, 1)
        hsv = torch.stack([(hsv[:, 0] + shift) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
        y = _hsv_to_rgb(hsv).clamp(0, 1)
    apply = (torch.rand(b, generator=g, device=dev) < rec.jitter_p).view(b, 1, 1, 1)
    return torch.where(apply, y, x)


def gaussian_blur(x: torch.Tensor, sigma_range, p: float, g: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma (kernel ~10% of the side, odd), share p of the batch."""
    b, c, hgt, wid = x.shape
    dev = x.device
    k = max(3, int(0.1 * hgt) // 2 * 2 + 1)
    sigma = _u(b, sigma_range[0], sigma_range[1], g, dev)
    apply = torch.rand(b, generator=g, device=dev) < p
    sigma = torch.where(apply, sigma, torch.full_like(sigma, 1e-3))  # ~identity kernel when not applied
    t = torch.arange(k, device=dev, dtype=x.dtype) - k // 2
    ker = torch.exp(-(t[None] ** 2) / (2 * sigma[:, None] ** 2))
    ker = ker / ker.sum(1, keepdim=True)                         # (B, k)
    ker = ker.repeat_interleave(c, 0)                            # (B*C, k)
    y = x.reshape(1, b * c, hgt, wid)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), ker.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), ker.view(b * c, 1, k, 1), groups=b * c)
    return y.view(b, c, hgt, wid)


def augment(x_uint8: torch.Tensor, rec: AugmentRecipe, out: int, g: torch.Generator) -> torch.Tensor:
    """One augmented, normalised view of a uint8 batch: (B,H,W,3)|(B,3,H,W) uint8 -> (B,3,out,out) float32."""
    x = to_float(x_uint8)
    b, dev = x.shape[0], x.device
    x = random_resized_crop(x, out, rec.crop_scale, rec.crop_ratio, rec.flip_p, g)
    if rec.jitter_p > 0:
        x = color_jitter(x, rec, g)
    if rec.gray_p > 0:
        apply = (torch.rand(b, generator=g, device=dev) < rec.gray_p).view(b, 1, 1, 1)
        x = torch.where(apply, _gray(x).expand_as(x), x)
    if rec.blur_p > 0:
        x = gaussian_blur(x, rec.blur_sigma, rec.blur_p, g)
    if rec.solarize_p > 0:
        apply = (torch.rand(b, generator=g, device=dev) < rec.solarize_p).view(b, 1, 1, 1)
        x = torch.where(apply & (x >= 0.5), 1.0 - x, x)
    return normalize(x, rec)


def normalize(x: torch.Tensor, rec: AugmentRecipe) -> torch.Tensor:
    mean = torch.tensor(rec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(rec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def plain_view(x_uint8: torch.Tensor, rec: AugmentRecipe, out: int) -> torch.Tensor:
    """The un-augmented view used for embeddings and the kNN monitor (resize only when needed)."""
    x = to_float(x_uint8)
    if x.shape[-1] != out or x.shape[-2] != out:
        x = F.interpolate(x, size=(out, out), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x, rec)
