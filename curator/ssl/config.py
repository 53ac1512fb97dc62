"""Typed configuration of self-supervised pre-training (paper 000 §3.2; SPEC §4).

`SSLConfig` holds every knob of `curator pretrain` / `curator embed`. Fields left at ``None``
take the method's defaults from `curator.ssl.methods.METHODS` (optimizer, base learning rate,
weight decay, as in paper 000 §3.2) or are derived from the data (`image_size`, `backbone`).
`fuse_views`, `fused_optimizer`, `compile_mode` and `compile_augment` are opt-in speed options for
GPU training (off by default; only `fuse_views` changes what is computed: BatchNorm statistics).
`recipe_for(image_size)` returns the default recipe for a dataset's image size, e.g. the fast
digits recipe (tiny CNN, 8x8 images) that keeps the CPU demo within its time budget.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from curator.config import ConfigError, from_dict


COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class SSLConfig:
    method: str = "simsiam"            # simsiam | byol | simclr | barlow | rotation
    backbone: str = "auto"             # auto | resnet18_cifar | resnet18 | resnet50 | tiny_cnn
    width: int = 32                    # channels of tiny_cnn (digits-sized images)
    head_dim: int | None = None        # hidden width of projector/predictor; None: the method's paper value
    image_size: int | None = None      # training resolution; None: the images' own size (resident data)
    epochs: int = 200
    batch_size: int = 512              # global batch size (all ranks together)
    base_lr: float | None = None       # per 256 images: lr = base_lr * batch_size / 256
    weight_decay: float | None = None
    warmup_epochs: int = 10
    seed: int = 0
    device: str | None = None          # None: CUDA when present (curator.device.select_device)
    amp: bool = True                   # bf16 autocast (CUDA only)
    channels_last: bool = True         # CUDA only
    compile: str = "auto"              # auto (CUDA and >= 300 steps) | on | off
    # --- opt-in speed options (defaults keep the original behaviour; see docs/ssl.md) ---
    fuse_views: bool = False           # all views through backbone/heads in ONE call (BN stats over all views)
    fused_optimizer: bool = False      # torch.optim SGD/Adam(fused=True) where supported, else foreach
    compile_mode: str | None = None    # torch.compile mode: default | reduce-overhead | max-autotune[-no-cudagraphs]
    compile_augment: bool = False      # torch.compile the augmentation's tensor part too (when compiling)
    resident: str = "auto"             # auto | on | off: keep decoded uint8 images on the device
    resident_max_gb: float = 8.0       # auto-resident when the decoded images fit in this budget
    num_workers: int = 4               # DataLoader workers when not resident
    knn_every: int = 5                 # kNN monitor every N epochs (and at the end); 0: only at the end
    knn_k: int = 200
    knn_t: float = 0.1
    knn_holdout: float = 0.2           # share of training rows used as kNN queries when there is no test split
    knn_max_bank: int = 50_000         # cap on bank size (random subset) to bound monitor cost
    max_minutes: float | None = None   # stop after the epoch that passes this wall-clock budget
    embed_batch_size: int = 1024
    embed_views: int = 1               # >1: also write that many augmented views per sample
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def training_fingerprint_fields(self) -> dict[str, Any]:
        """The fields that change what training produces (not speed/monitor knobs)."""
        skip = {"device", "num_workers", "progress", "knn_every", "max_minutes", "embed_batch_size",
                "embed_views", "resident", "resident_max_gb", "compile", "fused_optimizer", "compile_mode",
                "compile_augment"}
        out = {k: v for k, v in self.to_dict().items() if k not in skip}
        if not out["fuse_views"]:   # absent at its default: fingerprints of older runs stay valid
            del out["fuse_views"]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "SSLConfig":
        cfg = from_dict(cls, values, where="ssl")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        from curator.ssl.methods import METHODS

        if self.method not in METHODS:
            raise ConfigError(f"ssl.method: unknown method {self.method!r}; known: {sorted(METHODS)}")
        if self.epochs < 1:
            raise ConfigError(f"ssl.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ConfigError(f"ssl.batch_size must be >= 2, got {self.batch_size}")
        if self.compile not in ("auto", "on", "off"):
            raise ConfigError(f"ssl.compile must be auto|on|off, got {self.compile!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"ssl.compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if self.resident not in ("auto", "on", "off"):
            raise ConfigError(f"ssl.resident must be auto|on|off, got {self.resident!r}")


def recipe_for(image_size: int, n_samples: int) -> dict[str, Any]:
    """Default overrides for a dataset, by image size (and size of the data).

    - <= 16 px (sklearn digits): a tiny CNN of width 16 with 128-wide heads, 8 epochs, batch 256 — the CPU demo recipe
      (`curator pretrain --dataset digits` + `curator embed` well under a minute on 2 cores).
    - <= 64 px (CIFAR): ResNet-18 with the CIFAR stem, batch 512, 200 epochs.
    - larger: standard ResNet-18 at 224 px.
    """
    if image_size <= 16:
        return {"backbone": "tiny_cnn", "width": 16, "head_dim": 128, "epochs": 8, "batch_size": 256,
                "warmup_epochs": 2, "knn_every": 4, "knn_k": 20}
    if image_size <= 64:
        return {"backbone": "resnet18_cifar"}
    return {"backbone": "resnet18", "image_size": 224, "batch_size": 256, "epochs": 100}


__all__ = ["SSLConfig", "ConfigError", "recipe_for"]
