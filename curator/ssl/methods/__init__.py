"""The SSL methods, each paired with its augmentation recipe and optimizer settings (STYLE §3).

Hyper-parameters follow paper 000 §3.2 (CIFAR): SimSiam SGD base lr 0.03, wd 5e-4, momentum 0.9;
BYOL Adam base lr 1e-3, wd 1.5e-6; SimCLR Adam 1e-3, wd 1e-6; Barlow Twins Adam 3e-3 with the
SimSiam protocol otherwise (wd 5e-4); lr = base_lr x batch_size / 256, 10 warm-up epochs, cosine.
Rotation (paper 001) uses SGD base lr 0.1, wd 5e-4. Augmentations follow each method's paper's
CIFAR setting; `recipe(method, image_size)` adapts them to tiny grayscale images (digits: no flips,
no colour) and to large images (Gaussian blur, ImageNet statistics).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from curator.ssl.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentRecipe
from curator.ssl.methods.barlow import BarlowTwins
from curator.ssl.methods.base import SSLMethod
from curator.ssl.methods.byol import BYOL
from curator.ssl.methods.rotation import Rotation
from curator.ssl.methods.simclr import SimCLR
from curator.ssl.methods.simsiam import SimSiam


@dataclass(frozen=True)
class MethodSpec:
    name: str
    build: Callable[..., SSLMethod]      # (backbone, feat_dim) -> method module
    augment: AugmentRecipe               # CIFAR-size recipe
    optimizer: str                       # sgd | adam
    base_lr: float                       # per 256 images
    weight_decay: float


METHODS: dict[str, MethodSpec] = {
    "simsiam": MethodSpec("simsiam", SimSiam, AugmentRecipe(crop_scale=(0.2, 1.0)), "sgd", 0.03, 5e-4),
    "byol": MethodSpec("byol", BYOL, AugmentRecipe(crop_scale=(0.08, 1.0), saturation=0.2, solarize_p=0.1),
                       "adam", 1e-3, 1.5e-6),
    "simclr": MethodSpec("simclr", SimCLR, AugmentRecipe(crop_scale=(0.08, 1.0)), "adam", 1e-3, 1e-6),
    "barlow": MethodSpec("barlow", BarlowTwins, AugmentRecipe(crop_scale=(0.08, 1.0), saturation=0.2,
                                                              solarize_p=0.1), "adam", 3e-3, 5e-4),
    "rotation": MethodSpec("rotation", Rotation, AugmentRecipe(crop_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0),
                           "sgd", 0.1, 5e-4),
}


def recipe(method: str, image_size: int) -> AugmentRecipe:
    """The method's augmentation recipe adapted to the image size."""
    rec = METHODS[method].augment
    if image_size <= 16:   # 8x8 digits: orientation matters, no colour; keep most of the glyph
        return dataclasses.replace(rec, crop_scale=(max(rec.crop_scale[0], 0.5), 1.0), flip_p=0.0, saturation=0.0,
                                   hue=0.0, gray_p=0.0, solarize_p=0.0, mean=(0.3, 0.3, 0.3), std=(0.4, 0.4, 0.4))
    if image_size > 64:    # ImageNet-style images: blur as in SimCLR/BYOL/SimSiam
        return dataclasses.replace(rec, blur_p=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return rec


__all__ = ["METHODS", "MethodSpec", "SSLMethod", "recipe"]
