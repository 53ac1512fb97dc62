"""`AuditConfig`: the knobs of the audit stage (recipe section ``[audit]``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class AuditConfig:
    # cross-validated probe on the embeddings (curator.audit.crossval)
    folds: int = 5                  # K of the K-fold cross-validation
    probe_steps: int = 150          # full-batch Adam steps per fold
    probe_lr: float = 0.01
    probe_weight_decay: float = 1e-3
    rounds: int = 2                 # self-training rounds: re-fit on the audit's current beliefs
    relabel: bool = False           # re-fit on soft targets p(c | x, label) (else only re-weight by P(label correct))
    # kNN label propagation (curator.audit.aggregate)
    knn_k: int = 20
    knn_weight: float = 0.5         # share of the kNN vote in the ensemble posterior (probe gets the rest)
    head_weight: float = 0.0        # share given to the robust heads' probabilities when present
    heads: list[str] = field(default_factory=lambda: ["lasl", "cbs", "gdw", "fsr"])
    # cross-fitted MLP head (LA + SuperLoss, curator.audit.crossfit_heads): out-of-fold, fitted once (round 1)
    crossfit_weight: float = 0.0    # its share in the likelihood ensemble (0 = not trained; docs/audit.md)
    crossfit_blend: str = "arithmetic"  # "arithmetic" or "geometric" mean with the probe + kNN likelihood
    crossfit_epochs: int = 10
    crossfit_hidden: int = 256
    crossfit_sl_lambda: float = 4.0  # SuperLoss λ (0 = plain logit-adjusted CE)
    em_iters: int = 200             # prior estimation (Saerens EM) iterations
    prior_smoothing: float = 0.05   # π ← (π_EM + s/C) / (1 + s): keeps EM from collapsing a rare class (docs/audit.md)
    # decisions
    threshold: float = 0.5          # flag when P(given label wrong) > threshold (0.5 = Bayes decision)
    tail_suggestions: bool = True   # flagged: suggest from uniform-prior likelihoods (per-class fairest; docs/audit.md)
    unflagged_suggestion: str = "image"  # unflagged samples: "image" = argmax p(c | x), "label" = argmax p(c | x, ỹ)
    min_suggestion_confidence: float = 0.5   # relabel export uses suggestions at least this confident
    tail_min_clean: int = 20        # a class with fewer estimated clean samples is "at risk"
    top_issues_in_report: int = 30
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
