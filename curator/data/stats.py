"""Dataset statistics: class histogram, imbalance ratio, shot groups, noise rate (pure functions).

Shot groups follow paper 002: **many** ≥ 100 samples, **medium** 20–100, **few** ≤ 20.
The imbalance ratio is γ = max_c n_c / min_c n_c over non-empty classes (paper 000 §4.1).
Used by ``curator inspect`` and by later stages (tail report).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from curator.data.manifest import SPLITS, UNKNOWN, Dataset

SHOT_GROUPS = ("many", "medium", "few")
MANY_MIN = 100  # many-shot: n >= 100
FEW_MAX = 20    # few-shot: n <= 20


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) int64 counts of `labels` (N,) in 0..C-1; negative labels (unlabelled) are ignored."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels[(labels >= 0) & (labels < n_classes)], minlength=n_classes).astype(np.int64)


def imbalance_ratio(counts: Sequence[int] | np.ndarray) -> float | None:
    """max / min over non-empty classes; None when no class has a sample."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    return float(c.max() / c.min()) if len(c) else None


def shot_group(counts: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """The shot group of each class size — the one definition in curator (paper 002 §4): "many" (≥ 100),
    "medium" (21–99) or "few" (≤ 20). Array in, array of str out (a 0-d array for one number: use str())."""
    c = np.asarray(counts, dtype=np.float64)
    return np.where(c >= MANY_MIN, "many", np.where(c <= FEW_MAX, "few", "medium"))


def shot_group_summary(counts: Sequence[int] | np.ndarray,
                       class_names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """{group: {"n_classes": k, "classes": [class indices], "names": [...]}} for many / medium / few."""
    counts = np.asarray(counts)
    groups = shot_group(counts)
    out: dict[str, dict[str, Any]] = {}
    for g in SHOT_GROUPS:
        idx = [int(c) for c in np.flatnonzero(groups == g)]
        out[g] = {"n_classes": len(idx), "classes": idx}
        if class_names is not None:
            out[g]["names"] = [str(class_names[c]) for c in idx]
    return out


def noise_rate(labels: np.ndarray, true_labels: np.ndarray) -> float | None:
    """Share of samples with known truth (true_label != -1) whose label differs from it; None if none known."""
    labels, true_labels = np.asarray(labels), np.asarray(true_labels)
    known = true_labels != UNKNOWN
    return float((labels[known] != true_labels[known]).mean()) if known.any() else None


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """What ``curator inspect --json`` prints: counts, histogram, γ, shot groups, noise, problems.

    Counts are over the training split (the audit's subject) by the given label; when truth is
    known, ``true_class_counts`` and ``true_imbalance_ratio`` give the same by true label.
    """
    train = ds.train
    C = ds.n_classes
    labels = train["label"].to_numpy()
    true = train["true_label"].to_numpy()
    counts = class_counts(labels, C)
    out: dict[str, Any] = {
        "dataset": ds.name,
        "root": str(ds.root) if ds.root is not None else None,
        "n_samples": int(len(train)),
        "n_classes": C,
        "class_names": list(ds.class_names),
        "class_counts": counts.tolist(),
        "imbalance_ratio": imbalance_ratio(counts),
        "empty_classes": [int(c) for c in np.flatnonzero(counts == 0)],
        "shot_groups": shot_group_summary(counts, ds.class_names),
        "splits": {s: int((ds.manifest["split"] == s).sum()) for s in SPLITS if (ds.manifest["split"] == s).any()},
        "n_trusted": int(train["trusted"].sum()),
        "n_unlabeled": int((labels < 0).sum()),
    }
    n_truth = int((true != UNKNOWN).sum())
    out["n_with_truth"] = n_truth
    if n_truth:
        true_counts = class_counts(true, C)
        out["noise_rate"] = noise_rate(labels, true)
        out["noise_rate_counts_same_class_as_noise"] = False
        out["true_class_counts"] = true_counts.tolist()
        out["true_imbalance_ratio"] = imbalance_ratio(true_counts)
        out["true_shot_groups"] = shot_group_summary(true_counts, ds.class_names)
    problems = ds.problems
    bad, notes = problems.bad, problems.notes
    out["problems"] = {  # bad samples and fatal errors; conversions and dataset notes are under "notes"
        "n": len(bad),
        "by_kind": problems.summary(),
        "by_action": _count(p.action for p in bad),
        "examples": [_example(p) for p in bad[:20]],
    }
    out["notes"] = {
        "n": len(notes),
        "by_kind": problems.summary(notes=True),
        "examples": [_example(p) for p in notes[:20]],
    }
    for key in ("label_set", "corruption", "images_checked"):
        if key in ds.info:
            out[key] = ds.info[key]
    if "corruption" in ds.info:  # the corruption tool's realised γ (by true class) and noise rate, top level
        out["realised_imbalance_ratio"] = ds.info["corruption"]["realised_imbalance_ratio"]
        out["realised_noise_rate"] = ds.info["corruption"]["realised_noise_rate"]
    return out


def _example(p) -> dict[str, str]:
    return {"sample_id": p.sample_id, "source": p.source, "kind": p.kind, "reason": p.reason, "action": p.action}


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out
