"""Evaluation against known true labels (docs/audit.md, BENCHMARKS.md): metrics.json.

Everything here compares the audit (or one signal) with ``true_label``; samples whose truth is
unknown (-1) are left out. Shot groups are assigned by the TRUE class size (paper 002: many ≥ 100,
medium 21–99, few ≤ 20).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from curator.columns import column
from curator.heads import registry as _heads  # noqa: F401 - declares the heads' columns (their orientation)
from curator.hygiene import registry as _hygiene  # noqa: F401 - declares the hygiene checks' columns
from curator.data.stats import shot_group

TAIL_SIZE = 100  # docs/audit.md: a tail class has fewer than 100 samples


def detection_metrics(is_issue: np.ndarray, score: np.ndarray | None, flag: np.ndarray | None) -> dict:
    """AUROC of `score` and precision/recall/F1 of `flag` for the truth `is_issue` (all (N,))."""
    is_issue = np.asarray(is_issue, bool)
    out: dict = {"n": int(len(is_issue)), "n_mislabeled": int(is_issue.sum())}
    if score is not None:
        ok = np.isfinite(score)
        both = len(np.unique(is_issue[ok])) == 2
        out["auroc"] = float(roc_auc_score(is_issue[ok], score[ok])) if both else None
    if flag is not None:
        p, r, f, _ = precision_recall_fscore_support(is_issue, np.asarray(flag, bool), average="binary", zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f), n_flagged=int(np.sum(flag)))
    return out


def class_size_error(estimated: np.ndarray, true_counts: np.ndarray) -> float:
    """Mean over classes (with ≥ 1 true sample) of |estimated − true| / true (docs/audit.md)."""
    true_counts = np.asarray(true_counts, float)
    ok = true_counts > 0
    return float(np.mean(np.abs(np.asarray(estimated, float)[ok] - true_counts[ok]) / true_counts[ok]))


def tail_rescue(true_label, label, flag, suggested, true_counts) -> tuple[float | None, int]:
    """Share of mislabeled samples whose true class has < 100 samples that are flagged AND get their
    true class as suggestion; also returns how many such samples there are."""
    t, y = np.asarray(true_label), np.asarray(label)
    tail = (t != y) & (np.asarray(true_counts)[t] < TAIL_SIZE)
    if not tail.any():
        return None, 0
    hit = np.asarray(flag, bool)[tail] & (np.asarray(suggested)[tail] == t[tail])
    return float(hit.mean()), int(tail.sum())


def signal_issue_score(signals: pd.DataFrame, name: str) -> np.ndarray | None:
    """An individual signal oriented so that higher = more likely an issue, by its declared direction
    (curator.columns); None for columns that are not numeric scores (classes, groups, flags, information)."""
    spec = column(name)
    col = signals[name]
    if spec is None or not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    v = col.to_numpy(np.float64)
    if spec.direction == "higher_is_clean":
        return -v
    if spec.direction == "higher_is_issue":
        return v
    return None


def balanced_suggestion_accuracy(true_label, label, suggested) -> float | None:
    """Mean over true classes of the share of that class's mislabeled samples whose suggestion is the true class:
    suggestion accuracy with every class counting the same, so a tool that never names a rare class scores low."""
    t, y, s = (np.asarray(a, np.int64) for a in (true_label, label, suggested))
    wrong = t != y
    per = [float(np.mean(s[wrong & (t == c)] == c)) for c in np.unique(t[wrong])]
    return float(np.mean(per)) if per else None


def evaluate(audit: pd.DataFrame, true_label: np.ndarray, n_classes: int, *, estimated_sizes: np.ndarray | None = None,
             signals: pd.DataFrame | None = None) -> dict:
    """metrics.json: overall, per shot group, suggestion accuracy, per signal, tail rescue, size error."""
    t = np.asarray(true_label, np.int64)
    known = t >= 0
    a = audit.loc[known].reset_index(drop=True)
    t = t[known]
    y = a["label"].to_numpy()
    issue = t != y
    score, flag = a["label_issue_score"].to_numpy(), a["is_label_issue"].to_numpy(bool)
    sugg = a["suggested_label"].to_numpy()
    true_counts = np.bincount(t, minlength=n_classes)
    groups = shot_group(true_counts)[t]
    m = detection_metrics(issue, score, flag)
    m["noise_rate"] = float(issue.mean())
    m["suggested_label_accuracy"] = float(np.mean(sugg[issue] == t[issue])) if issue.any() else None
    m["suggested_label_balanced_accuracy"] = balanced_suggestion_accuracy(t, y, sugg)
    m["per_shot"] = {g: {**detection_metrics(issue[groups == g], score[groups == g], flag[groups == g]),
                         "suggested_label_accuracy": float(np.mean(sugg[(groups == g) & issue] == t[(groups == g) & issue]))
                         if ((groups == g) & issue).any() else None}
                     for g in ("many", "medium", "few") if (groups == g).any()}
    m["tail_rescue"], m["n_tail_mislabeled"] = tail_rescue(t, y, flag, sugg, true_counts)
    if estimated_sizes is not None:
        m["class_size_error"] = class_size_error(estimated_sizes, true_counts)
    m["class_size_error_labelled_histogram"] = class_size_error(np.bincount(y, minlength=n_classes), true_counts)
    if signals is not None:
        sig = signals.loc[known.nonzero()[0]] if len(signals) == len(known) else None
        per = {}
        for name in ([] if sig is None else sig.columns):
            if name in ("sample_id", "label", "true_label"):
                continue
            s = signal_issue_score(sig, name)
            if s is not None:
                per[name] = detection_metrics(issue, s, None)
        m["per_signal"] = per
    return m
