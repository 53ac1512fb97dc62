"""The manifest: one row per sample, the same schema for every adapter.

Columns (all present in every manifest):

| column      | dtype  | meaning                                                                  |
|-------------|--------|--------------------------------------------------------------------------|
| sample_id   | str    | stable, unique id (e.g. the relative path, or ``train/000123``)          |
| label       | int64  | the given (possibly noisy) label, 0..C-1; ``UNLABELED`` (-1) if none    |
| true_label  | int64  | the true label when known (CIFAR-N clean labels, corruption tool,       |
|             |        | Clothing1M clean kv), else ``UNKNOWN`` (-1)                              |
| split       | str    | "train", "val" or "test"; the audit runs on "train"                     |
| source      | str    | where the image comes from, human-readable (relative path or array ref)  |
| image_ref   | int64  | index into the dataset's `ImageSource`                                   |
| trusted     | bool   | the label is known to be clean (e.g. Clothing1M clean kv); meta set     |

`curator.data.registry.load_dataset` adds the **pin** columns (`curator.data.pins`): ``file`` (the
image file a row was read from, relative to ``Dataset.root``; ``""`` for in-memory images) and
``pin`` (a cheap content fingerprint: size + mtime for files, a hash of the pixels / bytes for
in-memory images), so every later reader can check that a sample is still the image the run saw.

Adapters may add columns (e.g. ``clean_label`` sources); downstream code only relies on these.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curator.data.images import ImageSource
from curator.data.problems import ProblemReport

UNKNOWN = -1
UNLABELED = -1
MANIFEST_COLUMNS = ["sample_id", "label", "true_label", "split", "source", "image_ref", "trusted"]
SPLITS = ("train", "val", "test")


def make_manifest(
    sample_id, label, *, source, image_ref=None, split="train", true_label=None, trusted=False
) -> pd.DataFrame:
    """Build a manifest frame with the standard columns and dtypes."""
    n = len(sample_id)
    df = pd.DataFrame(
        {
            "sample_id": pd.Series(sample_id, dtype=str),
            "label": np.asarray(label, dtype=np.int64),
            "true_label": np.full(n, UNKNOWN, np.int64) if true_label is None else np.asarray(true_label, dtype=np.int64),
            "split": np.broadcast_to(np.asarray(split, dtype=object), (n,)).copy() if np.ndim(split) == 0 else np.asarray(split, dtype=object),
            "source": pd.Series(source, dtype=str),
            "image_ref": np.arange(n, dtype=np.int64) if image_ref is None else np.asarray(image_ref, dtype=np.int64),
            "trusted": np.broadcast_to(np.asarray(trusted, dtype=bool), (n,)).copy(),
        }
    )
    return df


def check_manifest(df: pd.DataFrame) -> None:
    """Raise ValueError if the frame is not a well-formed manifest (a programming error, not bad data)."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}")
    if df["sample_id"].duplicated().any():
        dup = df.loc[df["sample_id"].duplicated(), "sample_id"].iloc[0]
        raise ValueError(f"manifest has duplicate sample_id {dup!r}")


def manifest_fingerprint(df: pd.DataFrame) -> str:
    """A content hash of the manifest's identity columns (ids, labels, split, source) and, when the
    manifest is pinned, of each sample's content pin (so a changed image file re-runs the stages)."""
    cols = ["sample_id", "label", "true_label", "split", "source"] + (["pin"] if "pin" in df.columns else [])
    h = pd.util.hash_pandas_object(df[cols], index=False).to_numpy()
    return hashlib.sha256(h.tobytes()).hexdigest()[:16]


@dataclass
class Dataset:
    """What an adapter returns: manifest + class names + image accessor + what was found wrong."""

    name: str
    class_names: list[str]
    manifest: pd.DataFrame
    images: ImageSource
    root: Path | None = None
    problems: ProblemReport = field(default_factory=ProblemReport)
    info: dict[str, Any] = field(default_factory=dict)  # adapter / corruption facts (label set, realised γ, ...)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> pd.DataFrame:
        return self.manifest[self.manifest["split"] == name]

    @property
    def train(self) -> pd.DataFrame:
        return self.split("train")

    def has_truth(self, split: str = "train") -> bool:
        return bool((self.split(split)["true_label"] != UNKNOWN).any())

    def select(self, mask_or_index) -> "Dataset":
        """A dataset with a subset of manifest rows (images are shared, refs stay valid)."""
        m = self.manifest.loc[mask_or_index] if not isinstance(mask_or_index, np.ndarray) or mask_or_index.dtype == bool else self.manifest.iloc[mask_or_index]
        return Dataset(self.name, self.class_names, m.reset_index(drop=True), self.images, self.root, self.problems, dict(self.info))
