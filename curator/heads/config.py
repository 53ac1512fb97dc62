"""Typed settings of the robust heads (recipe section ``[heads]``).

Defaults follow paper 000 §3.2 (SimSiam fine-tuning): the full 2-FC projection head, Adam,
lr 0.003, no weight decay, batch 256, 10 epochs; SuperLoss with τ = log C and λ = 4 (§3.3).
CBS+RRS follows paper 002 (loss weights 0.5 : 1); the long-tail baselines follow paper 001's
references (class-balanced loss β = 0.9999, focal γ, LDAM margins ∝ n^(-1/4) with DRW).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from curator.config import ConfigError, from_dict

# The audit computes every per-sample signal of SPEC §5 by default: σ* (lasl), GDW ω_t, FSR meta-margin,
# and the class-balanced head (cbs). The long-tail baselines (cb, focal, ldam) and semi are opt-in.
DEFAULT_HEADS = ["ce", "la", "lasl", "cbs", "gdw", "fsr"]


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
    # passed through to the GDW / FSR trainers (curator.heads.gdw / fsr)
    gdw: dict = field(default_factory=dict)
    fsr: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.heads, str):
            self.heads = [h.strip() for h in self.heads.split(",") if h.strip()]
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"heads: epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if self.last_epochs < 1:
            raise ConfigError(f"heads.last_epochs must be >= 1 (got {self.last_epochs})")
        if self.sl_lambda <= 0:
            raise ConfigError(f"heads.sl_lambda must be > 0 (got {self.sl_lambda})")
        if not (isinstance(self.tau, (int, float)) or self.tau in ("logC", "mean")):
            raise ConfigError(f"heads.tau must be 'logC', 'mean' or a number (got {self.tau!r})")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "HeadsConfig":
        return from_dict(cls, values, where="heads")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "HeadsConfig":
        return dataclasses.replace(self, **changes)
