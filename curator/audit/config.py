"""`AuditConfig`: the knobs of the audit stage (recipe section ``[audit]``).

The evidence the audit reads (kNN graph, out-of-fold probe) is configured in ``[evidence]``
(`curator.evidence.config.EvidenceConfig`); the seed is the run's ``--seed``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from curator.config import ConfigError, check_range


@dataclass
class AuditConfig:
    rounds: int = 2                 # self-training rounds: re-fit the probe / re-weight the kNN vote by P(label correct)
    knn_weight: float = 0.5         # share of the kNN vote in the likelihood ensemble (the probe gets the rest)
    em_iters: int = 200             # prior estimation (Saerens EM) iterations
    prior_smoothing: float = 0.05   # π ← (π_EM + s/C) / (1 + s): keeps EM from collapsing a rare class (docs/audit.md)
    # decisions
    threshold: float = 0.5          # flag when P(given label wrong) > threshold (0.5 = Bayes decision)
    tail_suggestions: bool = True   # flagged: suggest from uniform-prior likelihoods (per-class fairest; docs/audit.md)
    unflagged_suggestion: str = "image"  # unflagged samples: "image" = argmax p(c | x), "label" = argmax p(c | x, ỹ)
    tail_min_clean: int = 20        # a class with fewer estimated clean samples is "at risk"

    def __post_init__(self) -> None:
        check_range("audit.rounds", self.rounds, 0, 20)          # each round re-fits the probe
        check_range("audit.em_iters", self.em_iters, 1, 100_000)
        check_range("audit.tail_min_clean", self.tail_min_clean, 0, 1_000_000_000)
        if not 0.0 <= self.knn_weight <= 1.0:
            raise ConfigError(f"audit.knn_weight must be in [0, 1], got {self.knn_weight}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"audit.threshold must be in (0, 1), got {self.threshold}")
        if self.unflagged_suggestion not in ("image", "label"):
            raise ConfigError(f"audit.unflagged_suggestion must be 'image' or 'label', not {self.unflagged_suggestion!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
