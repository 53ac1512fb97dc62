"""Synthetic photographs for the hygiene tests: 1/f noise (the spectrum natural images share) tinted per class."""
from __future__ import annotations

import numpy as np

TINTS = np.array([[70, -20, -40], [-40, 60, -20], [-30, -20, 70], [50, 50, -60]], np.float32)   # one per class


def natural_images(n: int, n_classes: int = 4, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """((n, size, size, 3) uint8 images, (n,) labels): random-phase noise with a 1/f amplitude spectrum per channel
    (so detail falls off across scales as in photographs), brightness and contrast varied, a class colour tint."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1.0
    amplitude = 1.0 / radius                                                       # (size, size)
    labels = np.arange(n) % n_classes
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        base = np.real(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((size, size)))))
        chans = [0.7 * base + 0.3 * np.real(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((size, size)))))
                 for _ in range(3)]
        img = np.stack(chans, axis=-1)
        img = (img - img.mean()) / (img.std() + 1e-9) * rng.uniform(30, 50) + rng.uniform(100, 150)
        out[i] = np.clip(img + TINTS[labels[i] % len(TINTS)], 0, 255).astype(np.uint8)
    return out, labels
