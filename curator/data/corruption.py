"""The corruption tool: long-tail subsampling and synthetic label noise, seeded, truth kept.

Protocols (papers 000 §4.1, 003 §5, 004 §5; docs/datasets.md):

- **Long tail by true class** (training split only; val/test stay balanced). Exponential profile
  n_c = int(n_max · γ^(−c/(C−1))) for class c = 0..C−1 in label order (paper 000: "Exponential
  profile ... γ = max_y p(y) / min_y p(y)"); step profile: the first C − ⌊C/2⌋ classes keep n_max,
  the rest n_max/γ. n_max is the largest class. Drawn class by class with
  ``rng = numpy.random.default_rng(seed)``, ``rng.choice(ids_of_class_c, n_c, replace=False)``
  (the protocol of ``datasets/cifar10n/embeddings-simsiam-r18-lt100``), kept in original order.
- **Noise at rate ν** on the training labels (after subsampling, same generator):
  ``uniform`` (symmetric; paper 000: labels "switched to random ones (possibly keeping the same
  labels)"): with probability ν the label is replaced by a class drawn uniformly from all C
  classes, so the realised flip rate is ν·(C−1)/C; ``flip`` (pairwise): c → c+1 mod C with
  probability ν; ``asym`` (class confusion): for CIFAR-10 class names truck→automobile,
  bird→airplane, deer→horse, cat↔dog, other classes untouched; for other datasets c → c+1 mod C.

Truth is kept in ``true_label`` (set from the pre-noise label where it was unknown). The realised
class counts, imbalance ratio and noise rate are recorded in ``ds.info["corruption"]``; the
realised noise rate is the share of training labels that differ from the truth, so a uniform
draw that lands on the true class does not count as noise.
"""
from __future__ import annotations

import logging

import numpy as np

from curator.data.manifest import UNKNOWN, Dataset
from curator.data.options import DatasetOptions
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)

IMBALANCE_PROFILES = ("none", "exp", "step")
NOISE_TYPES = ("none", "uniform", "flip", "asym")
CIFAR10_ASYM = {"truck": "automobile", "bird": "airplane", "deer": "horse", "cat": "dog", "dog": "cat"}


def target_counts(counts: np.ndarray, profile: str, gamma: float) -> np.ndarray:
    """Per-class target sizes n_c (capped by what each class has); counts: (C,) available per class."""
    C = len(counts)
    n_max = int(counts.max()) if C else 0
    if profile == "exp":
        exps = np.arange(C) / max(C - 1, 1)
        target = np.array([int(n_max * gamma ** (-e)) for e in exps], dtype=np.int64)
    elif profile == "step":
        n_major = C - C // 2
        target = np.array([n_max if c < n_major else int(n_max / gamma) for c in range(C)], dtype=np.int64)
    else:
        raise DataError(f"unknown imbalance profile {profile!r}; choose from {', '.join(IMBALANCE_PROFILES)}")
    return np.minimum(target, counts)


def subsample_long_tail(truth: np.ndarray, n_classes: int, profile: str, gamma: float, rng: np.random.Generator) -> np.ndarray:
    """Positions (sorted) kept by long-tail subsampling of rows whose true class is `truth` (N,)."""
    counts = np.bincount(truth[truth >= 0], minlength=n_classes)
    target = target_counts(counts, profile, gamma)
    kept = [np.flatnonzero(truth < 0)]  # rows without a class are not subsampled
    for c in range(n_classes):
        ids = np.flatnonzero(truth == c)
        kept.append(rng.choice(ids, int(target[c]), replace=False))
    return np.sort(np.concatenate(kept)).astype(np.int64)


def asym_mapping(class_names: list[str]) -> tuple[np.ndarray, str]:
    """(target class per class, description) for asymmetric noise."""
    C = len(class_names)
    index = {n.lower(): i for i, n in enumerate(class_names)}
    if all(k in index for k in set(CIFAR10_ASYM) | set(CIFAR10_ASYM.values())):
        mapping = np.arange(C)
        for src, dst in CIFAR10_ASYM.items():
            mapping[index[src]] = index[dst]
        return mapping, "CIFAR-10 class confusion: truck→automobile, bird→airplane, deer→horse, cat↔dog"
    return (np.arange(C) + 1) % C, "c → c+1 mod C"


def add_noise(labels: np.ndarray, n_classes: int, noise: str, rate: float, rng: np.random.Generator,
              class_names: list[str]) -> tuple[np.ndarray, dict]:
    """Noisy copy of `labels` (N,) and facts about the draw (expected rate, same-class draws)."""
    n = len(labels)
    labelled = labels >= 0
    hit = (rng.random(n) < rate) & labelled
    out = labels.copy()
    facts: dict = {}
    if noise == "uniform":
        drawn = rng.integers(0, n_classes, n)
        out[hit] = drawn[hit]
        facts["n_resampled"] = int(hit.sum())
        facts["n_resampled_to_same_class"] = int((hit & (drawn == labels)).sum())
        facts["expected_noise_rate"] = rate * (n_classes - 1) / n_classes
        facts["rule"] = "with probability ν the label is redrawn uniformly from all C classes (may keep the same class)"
    elif noise == "flip":
        out[hit] = (labels[hit] + 1) % n_classes
        facts["expected_noise_rate"] = rate if n_classes > 1 else 0.0
        facts["rule"] = "pairwise: c → c+1 mod C with probability ν"
    elif noise == "asym":
        mapping, rule = asym_mapping(class_names)
        out[hit] = mapping[labels[hit]]
        movable = labelled & (mapping[np.clip(labels, 0, None)] != np.clip(labels, 0, None))
        facts["expected_noise_rate"] = rate * float(movable.sum()) / max(int(labelled.sum()), 1)
        facts["rule"] = rule + " with probability ν"
    else:
        raise DataError(f"unknown noise type {noise!r}; choose from {', '.join(NOISE_TYPES)}")
    return out, facts


def _validate(options: DatasetOptions) -> None:
    if options.imbalance not in IMBALANCE_PROFILES:
        raise DataError(f"--imbalance {options.imbalance!r}: choose from {', '.join(IMBALANCE_PROFILES)}")
    if options.noise not in NOISE_TYPES:
        raise DataError(f"--noise {options.noise!r}: choose from {', '.join(NOISE_TYPES)}")
    if options.imbalance != "none" and not options.gamma >= 1.0:
        raise DataError(f"--gamma must be >= 1 (the ratio of the largest to the smallest class), got {options.gamma}")
    if not 0.0 <= options.noise_rate <= 1.0:
        raise DataError(f"--noise-rate must be in [0, 1], got {options.noise_rate}")


def corrupt(ds: Dataset, options: DatasetOptions) -> Dataset:
    """Apply long-tail subsampling then label noise to the training split of `ds` (see module doc).

    Returns a new Dataset; ``info["corruption"]`` holds the realised class counts (by true class),
    the realised imbalance ratio, the expected and realised noise rates and the rule used.
    """
    _validate(options)
    rng = np.random.default_rng(options.seed)
    C = ds.n_classes
    m = ds.manifest
    is_train = (m["split"] == "train").to_numpy()
    train_pos = np.flatnonzero(is_train)
    facts: dict = {"seed": int(options.seed), "imbalance": options.imbalance, "noise": options.noise}

    label = m["label"].to_numpy()[train_pos]
    true = m["true_label"].to_numpy()[train_pos]
    truth = np.where(true != UNKNOWN, true, label)  # subsample by true class when known
    if options.imbalance != "none":
        keep = subsample_long_tail(truth, C, options.imbalance, options.gamma, rng)
        facts["gamma"] = float(options.gamma)
        facts["target_class_counts"] = target_counts(np.bincount(truth[truth >= 0], minlength=C), options.imbalance,
                                                     options.gamma).tolist()
        rows = np.concatenate([train_pos[keep], np.flatnonzero(~is_train)])
        ds = ds.select(np.sort(rows))
        m = ds.manifest
        is_train = (m["split"] == "train").to_numpy()
        train_pos = np.flatnonzero(is_train)
        label, truth = label[keep], truth[keep]

    m = m.copy()
    if options.noise != "none":
        new_label, noise_facts = add_noise(label, C, options.noise, float(options.noise_rate), rng, ds.class_names)
        facts.update(noise_facts)
        facts["noise_rate"] = float(options.noise_rate)
        m.loc[train_pos, "label"] = new_label
        label = new_label
    m.loc[train_pos, "true_label"] = truth  # truth recorded for every training row
    ds = ds.select(np.ones(len(m), dtype=bool))
    ds.manifest = m

    counts = np.bincount(truth[truth >= 0], minlength=C)
    nonzero = counts[counts > 0]
    facts["class_counts"] = counts.tolist()
    facts["realised_imbalance_ratio"] = float(nonzero.max() / nonzero.min()) if len(nonzero) else None
    known = truth >= 0
    facts["realised_noise_rate"] = float((label[known] != truth[known]).mean()) if known.any() else None
    facts["same_class_counts_as_noise"] = False
    facts["note"] = ("noise rate = share of training labels that differ from the true label; a uniform draw that "
                     "lands on the true class is not counted as noise")
    ds.info = dict(ds.info, corruption=facts)
    LOG.info("corruption: %d training samples, realised imbalance %.4g, realised noise %.4f",
             len(train_pos), facts["realised_imbalance_ratio"] or float("nan"), facts["realised_noise_rate"] or 0.0)
    return ds
