"""Settings of the signals stage, filled from a recipe's ``[signals]`` table (curator.config.from_dict).

The kNN graph and the out-of-fold probe the signals read are set in ``[evidence]``; duplicates (formerly
``signals.duplicate_threshold``, now calibrated per dataset) in ``[hygiene]`` (curator.hygiene.config).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from curator.config import ConfigError
from curator.evidence.graph import WEIGHTINGS


@dataclass
class SignalsConfig:
    knn_weighting: str = "similarity"    # neighbour vote weights of knn_agreement: similarity | softmax | uniform
    knn_temperature: float = 0.1         # for knn_weighting = "softmax"

    def __post_init__(self) -> None:
        if self.knn_weighting not in WEIGHTINGS:
            raise ConfigError(f"signals.knn_weighting must be one of {'|'.join(WEIGHTINGS)}, got {self.knn_weighting!r}")
        if self.knn_temperature <= 0:
            raise ConfigError(f"signals.knn_temperature must be > 0, got {self.knn_temperature}")

    def to_dict(self) -> dict:
        return asdict(self)
