"""Numbers of the overview page: dataset size, class table, signal distributions, tails at risk.

"Estimated noise" of a class is the share of its labelled samples the audit flags; its
"estimated true count" comes from RUN/classes.parquet when the audit wrote one (any column
named ``estimated_true_count`` / ``est_true_count`` / ``estimated_clean_count``), else it is
(unflagged samples labelled c) + (flagged samples whose suggested label is c). A tail class is
"at risk" when its estimated clean count falls below `min_clean` (default 20, the few-shot bound).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from curator.data.stats import shot_group
from curator.explore.run import ExplorerRun

_TRUE_COUNT_NAMES = ("estimated_true_count", "est_true_count", "estimated_clean_count", "est_clean_count")


def overview_stats(run: ExplorerRun) -> dict:
    """Headline numbers: n_samples, n_classes, imbalance_ratio, n_flagged, flagged_share, noise_rate (truth)."""
    t = run.table
    labels = t["label"].to_numpy()
    counts = np.bincount(labels[labels >= 0], minlength=run.n_classes)
    nonzero = counts[counts > 0]
    out = {"n_samples": run.n_samples, "n_classes": run.n_classes,
           "imbalance_ratio": float(nonzero.max() / nonzero.min()) if len(nonzero) else float("nan"),
           "n_flagged": int(t["is_label_issue"].sum()) if "is_label_issue" in t.columns else None}
    out["flagged_share"] = out["n_flagged"] / max(run.n_samples, 1) if out["n_flagged"] is not None else None
    if run.has_truth:
        true = t["true_label"].to_numpy()
        known = true >= 0
        out["noise_rate"] = float((labels[known] != true[known]).mean())
    return out


def class_summary(run: ExplorerRun) -> pd.DataFrame:
    """One row per class: class, name, count, shot_group, n_flagged, estimated_noise, estimated_true_count
    (+ true_count and true_noise when truth is known)."""
    t = run.table
    c = run.n_classes
    labels = t["label"].to_numpy()
    valid = labels >= 0
    counts = np.bincount(labels[valid], minlength=c)
    df = pd.DataFrame({"class": np.arange(c), "name": run.class_names, "count": counts,
                       "shot_group": shot_group(counts)})
    if "is_label_issue" in t.columns:
        flag = t["is_label_issue"].to_numpy(bool)
        df["n_flagged"] = np.bincount(labels[valid & flag], minlength=c)
        df["estimated_noise"] = df["n_flagged"] / np.maximum(counts, 1)
        est = np.bincount(labels[valid & ~flag], minlength=c).astype(np.float64)
        if "suggested_label" in t.columns:
            sug = t["suggested_label"].to_numpy()
            ok = flag & (sug >= 0) & (sug < c)
            est += np.bincount(sug[ok].astype(np.int64), minlength=c)
        df["estimated_true_count"] = est
    if run.classes is not None and "class" in run.classes.columns:
        given = next((n for n in _TRUE_COUNT_NAMES if n in run.classes.columns), None)
        if given is not None:
            m = run.classes.set_index("class")[given]
            df["estimated_true_count"] = df["class"].map(m).astype(float).fillna(df.get("estimated_true_count", 0))
    if run.has_truth:
        true = t["true_label"].to_numpy()
        known = valid & (true >= 0)
        df["true_count"] = np.bincount(true[known], minlength=c)
        df["true_noise"] = np.bincount(labels[known & (labels != true)], minlength=c) / np.maximum(
            np.bincount(labels[known], minlength=c), 1)
    return df


def tails_at_risk(summary: pd.DataFrame, min_clean: int = 20) -> pd.DataFrame:
    """Classes not in the "many" group whose estimated clean count is below `min_clean`, fewest first."""
    est = summary["estimated_true_count"] if "estimated_true_count" in summary.columns else summary["count"]
    risky = summary[(summary["shot_group"] != "many") & (est < min_clean)]
    return risky.sort_values("estimated_true_count" if "estimated_true_count" in summary.columns else "count")


def signal_histogram(run: ExplorerRun, column: str, bins: int = 30) -> pd.DataFrame:
    """Histogram of `column` split into groups: "truly mislabelled"/"truly clean" when truth is known,
    else "flagged"/"not flagged". Columns: bin_start, bin_end, group, count."""
    t = run.table
    v = t[column].to_numpy().astype(np.float64)
    if run.has_truth:
        true = t["true_label"].to_numpy()
        known = true >= 0
        wrong = t["label"].to_numpy() != true
        groups = {"truly mislabelled": known & wrong, "truly clean": known & ~wrong}
    elif "is_label_issue" in t.columns:
        flag = t["is_label_issue"].to_numpy(bool)
        groups = {"flagged": flag, "not flagged": ~flag}
    else:
        groups = {"all": np.ones(len(t), bool)}
    finite = np.isfinite(v)
    if not finite.any():
        return pd.DataFrame(columns=["bin_start", "bin_end", "group", "count"])
    edges = np.histogram_bin_edges(v[finite], bins=bins)
    frames = []
    for name, m in groups.items():
        counts, _ = np.histogram(v[m & finite], bins=edges)
        frames.append(pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "group": name, "count": counts}))
    return pd.concat(frames, ignore_index=True)
