"""Settings of the signals stage, filled from a recipe's ``[signals]`` table (curator.config.from_dict)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SignalsConfig:
    k: int = 20                          # neighbours per sample in RUN/knn.npz and knn_agreement
    knn_weighting: str = "similarity"    # similarity | softmax | uniform (curator.signals.agreement)
    knn_temperature: float = 0.1         # for knn_weighting = "softmax"
    knn_exact_max_n: int = 20_000        # CPU: exact FAISS search up to this many rows, IVF above
    knn_target_recall: float = 0.95      # IVF nprobe is raised until recall@10 reaches this
    duplicate_threshold: float = 0.98    # cosine similarity at or above which two samples are near-duplicates
    cv_folds: int = 5                    # folds of the cross-validated logistic regression
    cv_method: str = "auto"              # auto (= lbfgs, float32 softmax regression) | lbfgs | sklearn
    cv_max_iter: int = 100               # L-BFGS iterations per fold
    cv_c: float = 1.0                    # inverse L2 strength, as sklearn's C
    confident_learning: bool = True      # compute the cl_* columns (the 5-fold CV is the costly part)
    seed: int = 0

    def __post_init__(self) -> None:
        from curator.config import ConfigError

        if self.k < 1:
            raise ConfigError(f"signals.k must be ≥ 1, got {self.k}")
        if self.knn_weighting not in ("similarity", "softmax", "uniform"):
            raise ConfigError(f"signals.knn_weighting must be similarity|softmax|uniform, got {self.knn_weighting!r}")
        if not -1.0 <= self.duplicate_threshold <= 1.0:
            raise ConfigError(f"signals.duplicate_threshold is a cosine similarity in [-1, 1], got {self.duplicate_threshold}")
        if self.cv_folds < 2:
            raise ConfigError(f"signals.cv_folds must be ≥ 2, got {self.cv_folds}")
        if self.cv_method not in ("auto", "lbfgs", "sklearn"):
            raise ConfigError(f"signals.cv_method must be auto|lbfgs|sklearn, got {self.cv_method!r}")
        if not 0.0 < self.knn_target_recall <= 1.0:
            raise ConfigError(f"signals.knn_target_recall must be in (0, 1], got {self.knn_target_recall}")

    def to_dict(self) -> dict:
        return asdict(self)
