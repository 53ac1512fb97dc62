"""Typed configuration of self-supervised pre-training (paper 000 §3.2; SPEC §4).

`SSLConfig` holds every knob of `curator pretrain` / `curator embed` (a recipe's ``[ssl]`` section,
``--set ssl.KEY=VALUE`` and the SSL shortcuts ``--epochs --budget --backbone --weights ...``).

Fields that depend on the data, the device or the time budget default to ``None``, which means
"decide from the data": `backbone`, `width`, `head_dim`, `image_size`, `epochs`, `batch_size`,
`warmup_epochs`, `knn_every`, `knn_k`. `pipelines.ssl.resolve_config` fills them from the images'
size and the device (`recipe_for`), then, when pre-training has a budget (`budget_minutes`, or the
CPU default), `curator.ssl.budget` turns the budget into a number of epochs (and, on a CPU, a
backbone and resolution) once per run. A config whose fields are all decided `is_resolved`; the
training loop accepts nothing else. The seed is not here: pre-training takes the run's ``--seed``.

Optimizer fields left at ``None`` take the method's defaults from `curator.ssl.methods.METHODS`.
`fuse_views`, `fused_optimizer`, `compile_mode` and `compile_augment` are opt-in speed options for
GPU training (off by default; only `fuse_views` changes what is computed: BatchNorm statistics).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.config import ConfigError, from_dict


COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

#: fields decided from the data / device / budget when left at None
DATA_DEPENDENT = ("backbone", "width", "head_dim", "image_size", "epochs", "batch_size", "warmup_epochs",
                  "knn_every", "knn_k")
#: of those, the ones that must hold a value before training (head_dim None = the method's paper value)
REQUIRED = ("backbone", "image_size", "epochs", "batch_size", "warmup_epochs", "knn_every", "knn_k")


@dataclass
class SSLConfig:
    method: str = "simsiam"            # simsiam | byol | simclr | barlow | rotation
    backbone: str | None = None        # None/"auto": from the images and device; resnet18_cifar | resnet18 | resnet50 |
    #                                    tiny_cnn | small_cnn | patch_kmeans | torchvision:NAME | timm:NAME
    weights: str | None = None         # local file to start from: torchvision/timm state dict, or a curator backbone.pt
    width: int | None = None           # channels of tiny_cnn / small_cnn (32); centroids of patch_kmeans (128)
    head_dim: int | None = None        # hidden width of projector/predictor; None: the method's paper value
    image_size: int | None = None      # training resolution; None: from the images, the device and the backbone
    epochs: int | None = None          # None: from budget_minutes, else the recipe's default; 0: embed with --weights as is
    budget_minutes: float | None = None  # pre-training time budget: turned into epochs once per run (CPU default 5)
    batch_size: int | None = None      # global batch size (all ranks together)
    base_lr: float | None = None       # per 256 images: lr = base_lr * batch_size / 256
    weight_decay: float | None = None
    warmup_epochs: int | None = None   # None: 10, or a tenth of a short schedule
    device: str | None = None          # None: CUDA when present (curator.device.select_device)
    amp: bool = True                   # bf16 autocast (CUDA only)
    channels_last: bool = True         # channels_last memory format (CUDA, and the CPU's small CNNs)
    compile: str = "auto"              # auto (CUDA and >= 300 steps) | on | off
    # --- opt-in speed options (defaults keep the original behaviour; see docs/ssl.md) ---
    fuse_views: bool = False           # all views through backbone/heads in ONE call (BN stats over all views)
    fused_optimizer: bool = False      # torch.optim SGD/Adam(fused=True) where supported, else foreach
    compile_mode: str | None = None    # torch.compile mode: default | reduce-overhead | max-autotune[-no-cudagraphs]
    compile_augment: bool = False      # torch.compile the augmentation's tensor part too (when compiling)
    resident: str = "auto"             # auto | on | off: keep decoded uint8 images on the device
    resident_max_gb: float = 8.0       # auto-resident when the decoded images fit in this budget
    cache: str = "auto"                # auto | on | off: decode file-backed images once into a uint8 cache
    cache_dir: str | None = None       # where caches live (shared by runs); None: RUN/cache (or $CURATOR_CACHE)
    num_workers: int = 4               # DataLoader workers when streaming undecoded files (cache off)
    knn_every: int | None = None       # kNN monitor every N epochs (and at the end); 0: only at the end
    knn_k: int | None = None
    knn_t: float = 0.1
    knn_holdout: float = 0.2           # share of training rows used as kNN queries when there is no test split
    knn_max_bank: int = 50_000         # cap on bank size (random subset) to bound monitor cost
    max_minutes: float | None = None   # hard wall-clock cap: stop after the epoch that passes it (the run is partial)
    embed_batch_size: int = 1024      # images per embedding batch at 32 px; fewer for larger images (ssl.embed)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def is_resolved(self) -> bool:
        """True when every field the training loop needs has a value (see `pipelines.ssl.resolve_config`)."""
        return all(getattr(self, k) is not None for k in REQUIRED)

    def require_resolved(self) -> None:
        missing = [k for k in REQUIRED if getattr(self, k) is None]
        if missing:
            raise ValueError(f"SSL config not resolved against the data: {missing} still undecided "
                             "(pipelines.ssl.resolve_config decides them)")

    def training_fingerprint_fields(self) -> dict[str, Any]:
        """The fields that change what training produces, apart from the number of epochs (a run with more
        epochs continues from the checkpoint) and the budget (which only chooses the epochs)."""
        skip = {"device", "num_workers", "progress", "knn_every", "max_minutes", "embed_batch_size",
                "resident", "resident_max_gb", "compile", "fused_optimizer", "compile_mode", "compile_augment",
                "epochs", "budget_minutes", "cache", "cache_dir", "knn_k", "knn_t", "knn_holdout", "knn_max_bank"}
        out = {k: v for k, v in self.to_dict().items() if k not in skip}
        if not out["fuse_views"]:   # absent at its default: fingerprints of older runs stay valid
            del out["fuse_views"]
        if out["weights"] is None:
            del out["weights"]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "ssl") -> "SSLConfig":
        values = dict(values or {})
        if "seed" in values:
            raise ConfigError(f"{where}.seed: pre-training uses the run's seed; pass --seed (or [dataset] seed)")
        if "embed_views" in values:
            raise ConfigError(f"{where}.embed_views was removed (nothing read the augmented views)")
        if values.get("backbone") == "auto":
            values["backbone"] = None
        cfg = from_dict(cls, values, where=where)
        cfg.validate(where)
        return cfg

    def replace(self, **changes: Any) -> "SSLConfig":
        return dataclasses.replace(self, **changes)

    def validate(self, where: str = "ssl") -> None:
        from curator.ssl.backbones import check_backbone_name
        from curator.ssl.methods import METHODS

        if self.method not in METHODS:
            raise ConfigError(f"{where}.method: unknown method {self.method!r}; known: {sorted(METHODS)}")
        if self.backbone is not None:
            try:
                check_backbone_name(self.backbone)
            except ValueError as exc:
                raise ConfigError(f"{where}.backbone: {exc}") from None
        if self.epochs is not None and self.epochs < 0:
            raise ConfigError(f"{where}.epochs must be >= 0, got {self.epochs}")
        from curator.ssl.backbones import FITTED

        fitted = self.backbone in FITTED
        if fitted and self.epochs:
            raise ConfigError(f"{where}.backbone {self.backbone} is fitted on the images, not trained for epochs; "
                              "leave --epochs unset")
        if self.epochs == 0 and self.weights is None and not fitted:
            raise ConfigError(f"{where}.epochs = 0 embeds with given weights as they are; it needs --weights FILE")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise ConfigError(f"{where}.budget_minutes must be > 0, got {self.budget_minutes}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"{where}.max_minutes must be > 0, got {self.max_minutes}")
        for name in ("batch_size",):
            v = getattr(self, name)
            if v is not None and v < 2:
                raise ConfigError(f"{where}.{name} must be >= 2, got {v}")
        for name in ("width", "head_dim", "image_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{where}.{name} must be >= 1, got {v}")
        if self.compile not in ("auto", "on", "off"):
            raise ConfigError(f"{where}.compile must be auto|on|off, got {self.compile!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError(f"{where}.compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if self.resident not in ("auto", "on", "off"):
            raise ConfigError(f"{where}.resident must be auto|on|off, got {self.resident!r}")
        if self.cache not in ("auto", "on", "off"):
            raise ConfigError(f"{where}.cache must be auto|on|off, got {self.cache!r}")
        if self.weights is not None and not Path(self.weights).expanduser().exists():
            raise ConfigError(f"{where}.weights: file {self.weights!r} does not exist")


#: what a CPU gets by default for image data (pipelines.ssl.resolve_config): a budget, not a guess
CPU_DEFAULT_BUDGET_MINUTES = 5.0


def recipe_for(image_size: int, n_samples: int, *, cpu: bool = False) -> dict[str, Any]:
    """Default values of the data-dependent fields, by image size and device.

    - <= 16 px (sklearn digits): a tiny CNN of width 16 with 128-wide heads, 8 epochs, batch 256 — the CPU demo
      recipe (`curator pretrain --dataset digits` + `curator embed` well under a minute on 2 cores).
    - on a CPU, larger images: batch 256, the kNN monitor with k = 20; the backbone, resolution and epochs
      come from the time budget (`curator.ssl.budget`: small CNNs at 16-32 px).
    - on a GPU, <= 64 px (CIFAR): ResNet-18 with the CIFAR stem, batch 512, 200 epochs.
    - on a GPU, larger: standard ResNet-18 at 224 px, batch 256, 100 epochs.
    """
    if image_size <= 16:
        return {"backbone": "tiny_cnn", "width": 16, "head_dim": 128, "epochs": 8, "batch_size": 256,
                "warmup_epochs": 2, "knn_every": 4, "knn_k": 20}
    if cpu:
        return {"batch_size": 256, "knn_k": 20}
    if image_size <= 64:
        return {"backbone": "resnet18_cifar", "batch_size": 512, "epochs": 200, "knn_every": 5, "knn_k": 200}
    return {"backbone": "resnet18", "image_size": 224, "batch_size": 256, "epochs": 100, "knn_every": 5, "knn_k": 200}


def default_warmup(epochs: int) -> int:
    """Paper 000's 10 warm-up epochs, or a tenth of a shorter schedule (at least 1)."""
    return max(1, min(10, epochs // 10)) if epochs > 0 else 0


__all__ = ["SSLConfig", "ConfigError", "recipe_for", "default_warmup", "DATA_DEPENDENT", "CPU_DEFAULT_BUDGET_MINUTES"]
