"""Typed settings of the robust heads (recipe section ``[heads]``, with ``[heads.gdw]`` / ``[heads.fsr]``).

Defaults follow paper 000 §3.2 (SimSiam fine-tuning): the full 2-FC projection head, Adam,
lr 0.003, no weight decay, batch 256, 10 epochs; SuperLoss with τ = log C and λ = 4 (§3.3).
CBS+RRS follows paper 002 (loss weights 0.5 : 1); the long-tail baselines follow paper 001's
references (class-balanced loss β = 0.9999, focal γ, LDAM margins ∝ n^(-1/4) with DRW).
GDW (paper 003) and FSR (paper 004) run their own bi-level loops, so they have their own settings
(`GDWConfig`, `FSRConfig`); a recipe writes them as tables (``gdw = {epochs = 20}``), which are
checked key by key when the config is built. Which fields each head reads is declared in
`curator.heads.registry` (its stage fingerprint covers only those).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from curator.config import ConfigError, check_range, from_dict

# What the explorer shows by default: SuperLoss σ* (lasl), GDW's class weights ω (gdw) and FSR's meta-margin (fsr),
# the per-sample signals of docs/heads.md. No head enters the label-issue score (measured: docs/audit.md, "What enters
# the score"), so the baselines (ce, la, cb, focal, ldam), CBS+RRS (cbs) and semi are opt-in: nothing reads them.
DEFAULT_HEADS = ["lasl", "gdw", "fsr"]


@dataclass
class GDWConfig:
    """Settings of the GDW head (paper 003 App. C defaults, adapted to an MLP head on cached embeddings).

    Standardisation of the embeddings is the shared ``[heads] standardize`` setting, as for every head.
    """

    epochs: int = 12
    batch_size: int = 128            # n (paper: 100)
    meta_batch_size: int = 128       # m (paper: 100), drawn class-balanced from the meta set
    lr: float = 0.03                 # η_θ, SGD with momentum, cosine decay (paper App. C: 0.1 for a ResNet from
                                     # scratch; 0.1 on an MLP over 32-d embeddings inverted ω_t, see docs)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    hidden: int = 512                # ProjectionHead (paper 000: 2 FC layers)
    n_layers: int = 2
    wnet_hidden: int = 100           # MW-Net weighting network 1 -> 100 -> 1 (sigmoid)
    wnet_lr: float = 1e-3            # Adam, weight decay 1e-4 (App. C)
    wnet_weight_decay: float = 1e-4
    omega_lr: float = 0.1            # mean step per weight entry: η_ω = omega_lr · n · C (paper η_ω = 100 at n = 100, C = 10)
    clip: float = 0.2                # c in eq. 11
    normalize_weights: bool = False  # first-stage weights divided by their batch mean (MW-Net / L2RW), see docs
    warmup_epochs: int = 2           # without meta_mask: plain CE epochs before the dictionary is trusted
    dict_per_class: int = 100        # FSR dictionary slots per class (|R| / C)
    max_class_fraction: float = 0.25  # a class puts at most this share of its samples in the dictionary (keeps
                                     # noisy tail samples out; 0.5 let MW-Net learn "high loss = useful" on digits γ=10)
    margin_momentum: float = 0.9     # λ of the momentum meta-margin P̂ (paper 004)
    margin_lr: float = 1.0           # step size of the last-layer step on the dictionary loss in P(x)
    normalize_reward: bool = True    # unit-length per-sample reward gradients (see meta.reward_gradient)
    gate_dictionary: bool = True     # dictionary prefers samples the head currently predicts as their label
    last_epochs: int = 3             # signals average the per-epoch records of this many last epochs

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.meta_batch_size < 1:
            raise ConfigError(f"gdw: epochs >= 1, batch_size >= 2, meta_batch_size >= 1 required "
                              f"(got {self.epochs}, {self.batch_size}, {self.meta_batch_size})")
        if not 0 < self.clip:
            raise ConfigError(f"gdw.clip must be > 0 (got {self.clip})")
        if not 0 <= self.margin_momentum < 1:
            raise ConfigError(f"gdw.margin_momentum must be in [0, 1) (got {self.margin_momentum})")
        if self.last_epochs < 1:
            raise ConfigError(f"gdw.last_epochs must be >= 1 (got {self.last_epochs})")
        check_range("heads.gdw.epochs", self.epochs, 1, 10_000)


@dataclass
class FSRConfig:
    """Settings of the FSR head (paper 004 table 4, "CIFAR (noise)", adapted to an MLP head on embeddings).

    Standardisation of the embeddings is the shared ``[heads] standardize`` setting, as for every head.
    """

    epochs: int = 12
    batch_size: int = 128            # b (paper: 100)
    reward_batch_size: int = 200     # q, class-balanced from the dictionary
    lr: float = 0.1                  # η, SGD with momentum, cosine decay
    momentum: float = 0.9
    weight_decay: float = 5e-4
    hidden: int = 512
    n_layers: int = 2
    dict_per_class: int = 200        # |R| / C (paper: |R| = 2k for 10 classes)
    max_class_fraction: float = 0.25  # a class puts at most this share of its samples in the dictionary
    margin_momentum: float = 0.5     # λ per epoch visit (paper 0.9; digits γ=10: AUROC 0.83/0.79 at 0.9 vs 0.88/0.91 at 0.5, seeds 0/1)
    meta_lr: float = 0.1             # α of the last-layer meta step (paper: 1 for a ResNet FC; on 512-d BN-ReLU
                                     # head features α = 1 overshoots: fsr_weight AUROC 0.54 vs 0.90 at 0.1 on digits)
    weight_lr: float = 1.0           # η of eq. 3 relative to the mean |alignment| (see curator.heads.fsr)
    normalize_reward: bool = True    # unit-length per-sample reward gradients (meta.reward_gradient)
    gate_dictionary: bool = True     # dictionary prefers samples the head currently predicts as their label
    relabel_beta: float = 0.1        # β of eq. 7
    relabel_weight: float = 2.0      # p, multiplier of the re-label loss (0 = off)
    mixup_alpha: float = 1.0         # Beta(α, α) MixUp on the weighted loss (0 = off)
    label_smoothing: float = 0.0     # long tail: 0.1 (paper §5.2)
    shift_weights: bool = False      # long tail: ω* − min ω* + 1/b instead of max(0, ω*)
    warmup_epochs: int = 2           # E: uniform weights before (deferred re-weighting = a larger E)
    last_epochs: int = 3

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.reward_batch_size < 1:
            raise ConfigError(f"fsr: epochs >= 1, batch_size >= 2, reward_batch_size >= 1 required "
                              f"(got {self.epochs}, {self.batch_size}, {self.reward_batch_size})")
        if not 0 <= self.margin_momentum < 1 or not 0 <= self.relabel_beta < 1:
            raise ConfigError("fsr: margin_momentum and relabel_beta must be in [0, 1)")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"fsr: warmup_epochs ({self.warmup_epochs}) must be < epochs ({self.epochs})")
        if self.last_epochs < 1:
            raise ConfigError(f"fsr.last_epochs must be >= 1 (got {self.last_epochs})")
        check_range("heads.fsr.epochs", self.epochs, 1, 10_000)


@dataclass
class HeadsConfig:
    heads: list[str] = field(default_factory=lambda: list(DEFAULT_HEADS))
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.003
    weight_decay: float = 0.0
    hidden: int = 512
    n_layers: int = 2                 # 2 = full projection head (paper 000); 1 = last FC only
    dropout: float = 0.0
    standardize: bool = True          # z-score the embeddings with training-set statistics
    last_epochs: int = 3              # signals average per-epoch records over this many last epochs
    # SuperLoss (paper 000 eq. 3-4)
    sl_lambda: float = 4.0
    tau: Any = "logC"                 # "logC", "mean" (running mean of the loss) or a number
    sl_tau_momentum: float = 0.9      # for tau = "mean"
    # CBS + RRS (paper 002)
    cbs_classes_per_batch: int = 0    # k; 0 = all classes (capped by the batch size)
    cbs_per_class: int = 0            # Z; 0 = batch_size // k, so CBS batches are as large as RRS ones
    cbs_weight: float = 0.5           # λ1 (primary, class-balanced batches)
    rrs_weight: float = 1.0           # λ2 (auxiliary, random batches)
    # long-tail baselines (paper 001 table 2 rows)
    cb_beta: float = 0.9999           # class-balanced loss, effective number (1 - β^n) / (1 - β)
    focal_gamma: float = 1.0
    ldam_max_margin: float = 0.5
    ldam_scale: float = 30.0
    drw_start: float = 0.5            # deferred re-weighting starts after this fraction of epochs
    # semi-supervised relabelling (paper 001 §3 self-training)
    semi_teacher: str = "lasl"
    semi_sigma_threshold: float = 1.0  # distrust samples with teacher σ* below this (σ* < 1 <=> ℓ > τ)
    semi_unlabeled_weight: float = 0.5  # ω in L(D_L) + ω L(D_U)
    semi_min_confidence: float = 0.0  # pseudo-labels below this teacher confidence are not used
    # the meta-learning heads' own settings (a recipe writes tables: gdw = {epochs = 20})
    gdw: GDWConfig = field(default_factory=GDWConfig)
    fsr: FSRConfig = field(default_factory=FSRConfig)
    # cost: above this many training samples every head's epochs, warm-up epochs and averaged last epochs
    # (GDW's and FSR's too) shrink in proportion, down to one averaged epoch after one earlier epoch (GDW/FSR:
    # one warm-up epoch, one weighted epoch); an epoch of 1M samples is already thousands of optimizer steps.
    # Measured on CIFAR-10N worse (50k): 20k instead of 200k cut the heads from 167 s to 50 s and every head
    # signal's AUROC stayed or rose (FSR meta-margin 0.646 -> 0.789); 10k instead of 20k (issue 23) cut GDW and FSR
    # by ~3x and 2x with GDW ω and FSR's meta-margin higher on two seeds and σ* 0.007-0.009 lower. 0 = never shrink;
    # docs/heads.md, "Cost"
    full_epochs_up_to: int = 10_000

    def __post_init__(self) -> None:
        if isinstance(self.heads, str):
            self.heads = [h.strip() for h in self.heads.split(",") if h.strip()]
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"heads: epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if self.last_epochs < 1:
            raise ConfigError(f"heads.last_epochs must be >= 1 (got {self.last_epochs})")
        check_range("heads.epochs", self.epochs, 1, 10_000)
        if self.sl_lambda <= 0:
            raise ConfigError(f"heads.sl_lambda must be > 0 (got {self.sl_lambda})")
        if not (isinstance(self.tau, (int, float)) or self.tau in ("logC", "mean")):
            raise ConfigError(f"heads.tau must be 'logC', 'mean' or a number (got {self.tau!r})")
        if not isinstance(self.gdw, GDWConfig):
            self.gdw = from_dict(GDWConfig, self.gdw, where="heads.gdw")
        if not isinstance(self.fsr, FSRConfig):
            self.fsr = from_dict(FSRConfig, self.fsr, where="heads.fsr")

    def for_samples(self, n: int) -> "HeadsConfig":
        """This config with every head's epochs scaled for `n` training samples (see ``full_epochs_up_to``)."""
        if not self.full_epochs_up_to or n <= self.full_epochs_up_to:
            return self
        share = self.full_epochs_up_to / n

        def shrink(epochs: int, floor: int = 1) -> int:
            return int(min(epochs, max(floor, round(epochs * share))))

        def meta(c):   # GDW / FSR: warm-up and averaged epochs shrink too; at least one epoch after the warm-up
            warmup, last = shrink(c.warmup_epochs), shrink(c.last_epochs)
            return dataclasses.replace(c, warmup_epochs=warmup, last_epochs=last,
                                       epochs=shrink(c.epochs, warmup + last))

        last = shrink(self.last_epochs)
        return dataclasses.replace(self, last_epochs=last, epochs=shrink(self.epochs, last + 1),
                                   gdw=meta(self.gdw), fsr=meta(self.fsr))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "HeadsConfig":
        return from_dict(cls, values, where="heads")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "HeadsConfig":
        return dataclasses.replace(self, **changes)
