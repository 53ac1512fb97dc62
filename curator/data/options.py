"""Dataset options shared by every command that reads a dataset (ARCHITECTURE.md)."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

from curator.data.problems import ON_BAD_CHOICES, DataError

MAX_SEED = 2**32 - 1  # numpy, torch and Python's random all accept 0..2**32-1; curator derives seeds from it


@dataclass
class DatasetOptions:
    dataset: str = "digits"
    root: str | None = None
    label_set: str | None = None          # CIFAR-N: worse/aggre/random1-3 (cifar10n), noisy100 (cifar100n); clothing1m: noisy/clean/both
    imbalance: str = "none"               # none | exp | step
    gamma: float = 1.0                    # imbalance ratio n_max / n_min for exp/step
    noise: str = "none"                   # none | uniform | flip | asym
    noise_rate: float = 0.0
    seed: int = 0
    limit: int | None = None              # keep the first N training samples (quick runs)
    subset_indices: str | None = None     # .npy of training-row indices to keep (in original order)
    embeddings: str | None = None         # .npy/.parquet embeddings, rows in manifest (or subset) order
    pred_probs: str | None = None         # the user's out-of-sample probabilities (curator.evidence.pred_probs)
    pred_probs_kind: str = "probs"        # probs | logits
    on_bad: str = "skip"                  # skip | keep | error  (see curator.data.problems)
    extra: dict[str, Any] = field(default_factory=dict)  # adapter-specific settings from recipes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Raise `DataError` naming the first option with a value no dataset can use.

        Checked here (not only by argparse) so recipes, ``--set dataset.*`` and library callers get
        the same one-line error: ``--limit`` >= 1, ``--seed`` in 0..2**32-1, ``--on-bad`` one of
        skip/keep/error; the corruption values are checked by `curator.data.corruption`.
        """
        if not isinstance(self.dataset, str) or not self.dataset:
            raise DataError(f"--dataset must name an adapter (see `curator datasets`), got {self.dataset!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1):
            raise DataError(f"--limit must be a whole number >= 1 (the number of training samples to keep), got {self.limit!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise DataError(f"--seed must be a whole number in 0..{MAX_SEED}, got {self.seed!r}")
        if self.pred_probs_kind not in ("probs", "logits"):
            raise DataError(f"--pred-probs-kind must be probs or logits, got {self.pred_probs_kind!r}")
        if self.on_bad not in ON_BAD_CHOICES:
            raise DataError(f"--on-bad must be one of {', '.join(ON_BAD_CHOICES)}, got {self.on_bad!r}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DatasetOptions":
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(**{k: v for k, v in vars(args).items() if k in names and v is not None})


def add_dataset_args(parser: argparse.ArgumentParser, *, default_dataset: str | None = "digits") -> None:
    """Add the standard dataset options to a sub-command's parser."""
    g = parser.add_argument_group("dataset")
    g.add_argument("--dataset", default=None,
                   help=f"adapter name (see `curator datasets`); default: with --root, inferred from it (imagefolder for a "
                        f"folder of class folders, csv / parquet for a manifest file), else {default_dataset}")
    g.add_argument("--root", default=None, help="dataset root directory (or manifest file for csv/parquet)")
    g.add_argument("--label-set", dest="label_set", default=None,
                   help="CIFAR-10N: worse|aggre|random1|random2|random3|clean; CIFAR-100N: noisy100|clean; clothing1m: noisy|clean|both")
    g.add_argument("--imbalance", choices=["none", "exp", "step"], default=None, help="long-tail subsampling by class (default none)")
    g.add_argument("--gamma", type=float, default=None, help="imbalance ratio n_max/n_min for --imbalance")
    g.add_argument("--noise", choices=["none", "uniform", "flip", "asym"], default=None, help="synthetic label noise (default none)")
    g.add_argument("--noise-rate", dest="noise_rate", type=float, default=None, help="noise rate ν in [0, 1]")
    g.add_argument("--seed", type=seed_value, default=None, help=f"seed for corruption and training, 0..{MAX_SEED} (default 0)")
    g.add_argument("--limit", type=positive_int, default=None, help="keep only the first N training samples (N >= 1)")
    g.add_argument("--subset-indices", dest="subset_indices", default=None, help=".npy of training indices to keep")
    g.add_argument("--embeddings", default=None, help="precomputed embeddings (.npy or .parquet); skips pre-training")
    g.add_argument("--pred-probs", dest="pred_probs", default=None, metavar="FILE",
                   help="your model's out-of-sample predicted probabilities (N x C): .npy, rows in training (or subset) "
                        "order and columns in class order, or .parquet with sample_id and one column per class name; "
                        "they replace curator's linear probe (docs/audit.md)")
    g.add_argument("--pred-probs-kind", dest="pred_probs_kind", choices=["probs", "logits"], default=None,
                   help="what --pred-probs holds: probs (rows sum to 1, default) or logits (softmax is applied)")
    g.add_argument("--on-bad", dest="on_bad", choices=list(ON_BAD_CHOICES), default=None,
                   help="bad samples: skip (report and exclude, default), keep (report and keep), error (stop)")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse turns the error into exit code 2 and one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_value(text: str) -> int:
    """argparse type: a seed in 0..2**32-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in 0..{MAX_SEED}, got {value}")
    return value
