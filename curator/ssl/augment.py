"""Batched image augmentations on any device (GPU for speed, CPU for tests and the demo).

The views of SimCLR/SimSiam/BYOL (SimCLR §3, appendix A; BYOL table 6; SimSiam §4): random
resized crop, horizontal flip, colour jitter (brightness, contrast, saturation, hue) applied with
probability p, random grayscale, Gaussian blur and solarisation where the recipe has them.

Two stages, so the per-step cost is a handful of kernels rather than dozens:
- `sample_params` draws every per-sample random number of a batch in ONE `torch.rand` call from
  one `torch.Generator` (a view is reproducible from (seed, epoch, step) — which is what makes
  resume-after-kill exact), then maps the uniforms to crop boxes, flips, jitter factors, ...;
- `apply_params` is a pure tensor function of (images, parameters): no randomness, no host
  synchronisation, no Python branching on tensor values — so it can be `torch.compile`d
  (`Augmenter(..., compile=True)`), which fuses the colour chain into a few kernels.
Several views of one batch can be made in one pass (`Augmenter.views(..., fused=True)`): the batch
is repeated and every copy gets independent parameters, which is the same distribution as separate
calls (each view still draws its own uniforms), only in a different order of the random stream.

Differences from torchvision's per-image transforms, on purpose: crops whose aspect ratio does not
fit are clamped instead of re-sampled; the four jitter operations run in a fixed order.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.247, 0.243, 0.261)
_LUMA = (0.299, 0.587, 0.114)   # ITU-R 601


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


_CONST: dict = {}


def _const(values: tuple[float, ...], like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A small constant tensor on `like`'s device, built once (torch.tensor(list, device=cuda) is a host sync)."""
    if torch.compiler.is_compiling():   # traced: a graph constant, no cache (and no sync) needed
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(shape)
    key = (values, like.device, like.dtype, shape)
    t = _CONST.get(key)
    if t is None:
        t = _CONST[key] = torch.tensor(values, dtype=like.dtype).view(shape).to(like.device)
    return t


def to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) or (B, 3, H, W) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    if x_uint8.shape[-1] == 3 and x_uint8.shape[1] != 3:
        x_uint8 = x_uint8.permute(0, 3, 1, 2)
    return x_uint8.float().div_(255.0)


def _slots(rec: AugmentRecipe) -> list[str]:
    """Names of the uniforms one sample needs under `rec` (one row of the single rand call each)."""
    s = ["area", "log_r", "cx", "cy", "flip"]
    if rec.jitter_p > 0:
        s += [k for k in ("brightness", "contrast", "saturation", "hue") if getattr(rec, k)] + ["jitter"]
    if rec.gray_p > 0:
        s.append("gray")
    if rec.blur_p > 0:
        s += ["sigma", "blur"]
    if rec.solarize_p > 0:
        s.append("solarize")
    return s


def sample_params(b: int, rec: AugmentRecipe, g: torch.Generator, device) -> dict[str, torch.Tensor]:
    """All random parameters of `b` samples from one `torch.rand` call: name -> (b,) tensor."""
    names = _slots(rec)
    u = torch.rand(len(names), b, generator=g, device=device)        # (K, b) uniforms in [0, 1)
    r = dict(zip(names, u.unbind(0)))
    lin = lambda v, lo, hi: v * (hi - lo) + lo                        # noqa: E731
    p = {"area": lin(r["area"], *rec.crop_scale),
         "ratio": torch.exp(lin(r["log_r"], math.log(rec.crop_ratio[0]), math.log(rec.crop_ratio[1]))),
         "cx": r["cx"] * 2 - 1, "cy": r["cy"] * 2 - 1,
         "flip": r["flip"] < rec.flip_p}
    for k in ("brightness", "contrast", "saturation"):
        if k in r:
            p[k] = lin(r[k], 1 - getattr(rec, k), 1 + getattr(rec, k))
    if "hue" in r:
        p["hue"] = lin(r["hue"], -rec.hue, rec.hue)
    for k, prob in (("jitter", rec.jitter_p), ("gray", rec.gray_p), ("blur", rec.blur_p), ("solarize", rec.solarize_p)):
        if k in r:
            p[k] = r[k] < prob
    if "sigma" in r:
        p["sigma"] = lin(r["sigma"], *rec.blur_sigma)
    return p


def crop_flip(x: torch.Tensor, out: int, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-sample crop of area share p['area'] and aspect p['ratio'], resized to out x out, flipped where p['flip'].

    One affine grid per sample (grid_sample, bilinear): (B, 3, H, W) -> (B, 3, out, out).
    """
    b = x.shape[0]
    w = torch.sqrt(p["area"] * p["ratio"]).clamp(max=1.0)   # crop width as a share of the image width
    h = torch.sqrt(p["area"] / p["ratio"]).clamp(max=1.0)
    cx, cy = p["cx"] * (1 - w), p["cy"] * (1 - h)           # centre in [-1, 1] coordinates
    sx = torch.where(p["flip"], -w, w)
    zero = torch.zeros_like(w)
    theta = torch.stack([sx, zero, cx, zero, h, cy], 1).view(b, 2, 3)
    grid = F.affine_grid(theta, [b, 3, out, out], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)




def _gray(x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,1,H,W), ITU-R 601 luma
    return (x * _const(_LUMA, x, (1, 3, 1, 1))).sum(1, keepdim=True)


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
    """(B,3,H,W) HSV in [0,1] -> RGB, all three channels at once: c_n = v − v·s·clamp(min(k, 4−k), 0, 1),
    k = (n + 6h) mod 6 for n = 5, 3, 1 (R, G, B) — the closed form of the six-sector table."""
    h, s, v = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    k = (_const((5.0, 3.0, 1.0), x, (1, 3, 1, 1)) + h * 6.0) % 6.0          # (B,3,H,W)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def color_jitter_params(x: torch.Tensor, rec: AugmentRecipe, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Brightness, contrast, saturation, hue with per-sample factors, applied where p['jitter']."""
    b = x.shape[0]
    col = lambda t: t.view(b, 1, 1, 1)                               # noqa: E731
    y = x
    if "brightness" in p:
        y = (y * col(p["brightness"])).clamp(0, 1)
    if "contrast" in p:
        # mean of the luma image = luma of the per-channel means (linear): (B,3) @ (3,) -> (B,)
        m = col(y.mean((2, 3)) @ _const(_LUMA, y, (3,)))
        y = ((y - m) * col(p["contrast"]) + m).clamp(0, 1)
    if "saturation" in p:
        gr = _gray(y)
        y = ((y - gr) * col(p["saturation"]) + gr).clamp(0, 1)
    if "hue" in p:
        hsv = _rgb_to_hsv(y)
        hsv = torch.cat([(hsv[:, 0:1] + p["hue"].view(b, 1, 1, 1)) % 1.0, hsv[:, 1:]], 1)
        y = _hsv_to_rgb(hsv).clamp(0, 1)
    return torch.where(col(p["jitter"]), y, x)




def blur_params(x: torch.Tensor, sigma: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma (kernel ~10% of the side, odd), where `apply`."""
    b, c, hgt, wid = x.shape
    k = max(3, int(0.1 * hgt) // 2 * 2 + 1)
    sigma = torch.where(apply, sigma, torch.full_like(sigma, 1e-3))  # ~identity kernel when not applied
    t = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    ker = torch.exp(-(t[None] ** 2) / (2 * sigma[:, None] ** 2))
    ker = ker / ker.sum(1, keepdim=True)                         # (B, k)
    ker = ker.repeat_interleave(c, 0)                            # (B*C, k)
    y = x.reshape(1, b * c, hgt, wid)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), ker.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), ker.view(b * c, 1, k, 1), groups=b * c)
    return y.view(b, c, hgt, wid)




def normalize(x: torch.Tensor, rec: AugmentRecipe) -> torch.Tensor:
    """(x − mean) / std per channel, as one fused multiply-add with cached constants."""
    scale = _const(tuple(1.0 / s for s in rec.std), x, (1, 3, 1, 1))
    shift = _const(tuple(-m / s for m, s in zip(rec.mean, rec.std)), x, (1, 3, 1, 1))
    return torch.addcmul(shift, x, scale)


def apply_params(x: torch.Tensor, p: dict[str, torch.Tensor], rec: AugmentRecipe, out: int) -> torch.Tensor:
    """The deterministic part of `augment`: float (B,3,H,W) in [0,1] + parameters -> normalised (B,3,out,out)."""
    b = x.shape[0]
    x = crop_flip(x, out, p)
    if "jitter" in p:
        x = color_jitter_params(x, rec, p)
    if "gray" in p:
        x = torch.where(p["gray"].view(b, 1, 1, 1), _gray(x).expand_as(x), x)
    if "blur" in p:
        x = blur_params(x, p["sigma"], p["blur"])
    if "solarize" in p:
        x = torch.where(p["solarize"].view(b, 1, 1, 1) & (x >= 0.5), 1.0 - x, x)
    return normalize(x, rec)


def augment(x_uint8: torch.Tensor, rec: AugmentRecipe, out: int, g: torch.Generator) -> torch.Tensor:
    """One augmented, normalised view of a uint8 batch: (B,H,W,3)|(B,3,H,W) uint8 -> (B,3,out,out) float32."""
    x = to_float(x_uint8)
    return apply_params(x, sample_params(x.shape[0], rec, g, x.device), rec, out)


class Augmenter:
    """Makes the views of one step. `fused=True`: all views in one pass over a repeated batch.

    `compile=True` wraps `apply_params` in `torch.compile` (CUDA only in the training loop); a
    compile failure at the first call falls back to eager with a warning.
    """

    def __init__(self, rec: AugmentRecipe, out: int, *, compile: bool = False, compile_mode: str | None = None):
        self.rec, self.out = rec, out
        self._eager = lambda x, p: apply_params(x, p, rec, out)     # noqa: E731
        self._fn = torch.compile(self._eager, dynamic=False, mode=compile_mode) if compile else self._eager

    def _apply(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._fn is self._eager:
            return self._fn(x, p)
        try:
            return self._fn(x, p)
        except Exception as exc:  # compile errors surface at the first call
            LOG.warning("torch.compile of the augmentation failed (%s: %s); using eager", type(exc).__name__, exc)
            self._fn = self._eager
            return self._fn(x, p)

    def views(self, x_uint8: torch.Tensor, g: torch.Generator, n_views: int, *, fused: bool = False) -> list[torch.Tensor]:
        """`n_views` augmented views of a uint8 batch, each (B,3,out,out) float32."""
        x = to_float(x_uint8)
        b = x.shape[0]
        if not fused or n_views == 1:
            return [self._apply(x, sample_params(b, self.rec, g, x.device)) for _ in range(n_views)]
        xs = x.repeat(n_views, 1, 1, 1)                                   # (V*B, 3, H, W)
        return list(self._apply(xs, sample_params(n_views * b, self.rec, g, x.device)).chunk(n_views))


def plain_view(x_uint8: torch.Tensor, rec: AugmentRecipe, out: int) -> torch.Tensor:
    """The un-augmented view used for embeddings and the kNN monitor (resize only when needed)."""
    x = to_float(x_uint8)
    if x.shape[-1] != out or x.shape[-2] != out:
        x = F.interpolate(x, size=(out, out), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x, rec)
