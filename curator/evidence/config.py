"""`EvidenceConfig`: the settings of the evidence stage (recipe section ``[evidence]``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from curator.config import ConfigError, check_range


@dataclass
class EvidenceConfig:
    # the kNN graph (curator.evidence.graph, the engine in curator.evidence.knn)
    k: int = 20                       # neighbours per sample
    knn_exact_max_n: int = 20_000     # CPU: exact FAISS search up to this many rows, IVF above
    knn_target_recall: float = 0.9    # IVF: nprobe is raised until recall@10 of sampled self-queries reaches this;
                                      # CIFAR-10N detection: within 0.001 AUROC of exact search at recall 0.95 and
                                      # 0.89, 0.002 at 0.71; at 1M rows 0.95 doubles the graph's cost (docs/scale.md)
    # the out-of-fold probe (curator.evidence.probe, curator.evidence.crossfit)
    folds: int = 5                    # K of the K-fold cross-fitting (stratified by the given label)
    probe_steps: int = 150            # Adam steps per fold
    probe_batch_size: int = 4096      # rows per step (the whole training split when smaller): cost flat in N
    probe_refit_steps: int = 75       # Adam steps per fold of an audit round after the first (warm-started)
    probe_lr: float = 0.01
    # the probe's weight decay, or candidates for it: the one whose fit gives a held-out fold's given labels the
    # highest class-balanced likelihood is used (`curator.evidence.probe.select_weight_decay`; docs/signals.md,
    # "The probe's weight decay": 2,000-10,000 CIFAR-10 images choose 3e-2, CIFAR-10N's 50,000 1e-3 or 1e-2)
    probe_weight_decay: float | list[float] = field(default_factory=lambda: [1e-3, 1e-2, 3e-2])

    def __post_init__(self) -> None:
        check_range("evidence.k", self.k, 1, 1000)
        check_range("evidence.folds", self.folds, 2, 100)
        check_range("evidence.probe_steps", self.probe_steps, 1, 1_000_000)
        check_range("evidence.probe_refit_steps", self.probe_refit_steps, 1, 1_000_000)
        if not 0.0 < self.knn_target_recall <= 1.0:
            raise ConfigError(f"evidence.knn_target_recall must be in (0, 1], got {self.knn_target_recall}")
        if self.probe_steps < 1:
            raise ConfigError(f"evidence.probe_steps must be ≥ 1, got {self.probe_steps}")
        wd = self.weight_decays()
        if not wd or any(not 0.0 <= w <= 10.0 for w in wd):
            raise ConfigError("evidence.probe_weight_decay must be a number in [0, 10] or a non-empty list of them, "
                              f"got {self.probe_weight_decay!r}")
        if self.probe_batch_size < 1:
            raise ConfigError(f"evidence.probe_batch_size must be ≥ 1, got {self.probe_batch_size}")

    def weight_decays(self) -> list[float]:
        """The weight decay candidates, as a list (one: fixed)."""
        wd = self.probe_weight_decay
        return [float(w) for w in (wd if isinstance(wd, list) else [wd])]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
