"""`HygieneConfig`: the settings of the hygiene stage (recipe section ``[hygiene]``, docs/hygiene.md)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from curator.config import ConfigError


@dataclass
class HygieneConfig:
    # how far outside the dataset's own distribution a value must lie to be flagged, in robust standard
    # deviations (curator.hygiene.thresholds); chosen once on CIFAR-10 and digits (docs/hygiene.md)
    property_z: float = 4.0             # image properties: dark, light, blurry, low information, grayscale, size, aspect
    duplicate_z: float = 4.0            # near duplicates: log distance to the nearest neighbour, lower side
    outlier_z: float = 4.0              # outliers: mean distance to the nearest `outlier_neighbours`, upper side
    near_duplicate_similarity: float = 0.0  # > 0: a fixed cosine similarity for near duplicates instead of calibrating
    outlier_neighbours: int = 5         # neighbours whose mean distance measures isolation (small: tail classes stay safe)
    leak_neighbours: int = 5            # training matches listed per test image
    test_embeddings: str = ""           # with --embeddings: the test rows' embeddings (manifest order), for near leaks
    off: list[str] = field(default_factory=list)  # checks switched off, by kind (curator.hygiene.registry), e.g. ["outlier"]

    def __post_init__(self) -> None:
        if not isinstance(self.off, (list, tuple)) or not all(isinstance(k, str) for k in self.off):
            raise ConfigError(f"hygiene.off is a list of check names, e.g. [\"outlier\"], got {self.off!r}")
        self.off = list(self.off)
        for name in ("property_z", "duplicate_z", "outlier_z"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"hygiene.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.near_duplicate_similarity < 1.0:
            raise ConfigError("hygiene.near_duplicate_similarity is a cosine similarity in (0, 1) (0 = calibrate), "
                              f"got {self.near_duplicate_similarity}")
        for name in ("outlier_neighbours", "leak_neighbours"):
            if getattr(self, name) < 1:
                raise ConfigError(f"hygiene.{name} must be ≥ 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
