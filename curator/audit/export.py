"""`curator export`: cleaned / relabelled / re-weighted manifests from an audited run (SPEC §6).

Policies (automatic decisions come from ``audit.parquet``; a person's decisions from
``decisions.parquet`` (curator.review) override them: keep = not an issue, drop = remove,
relabel = use the new label):

- ``clean``: drop flagged samples; weight 1;
- ``relabel``: flagged samples whose suggestion is at least ``min_confidence`` sure get the suggested
  label, other flagged samples are dropped; weight 1;
- ``reweight``: every sample kept (except explicit drops), weight = P(label correct) = 1 − score,
  floored at ``min_weight``, optionally multiplied by a class-balancing factor (inverse estimated clean
  count per class) so ``torch.utils.data.WeightedRandomSampler(weights, len(weights))`` draws classes evenly.

Output: a Parquet or CSV table (``sample_id``, ``source``, ``image_ref``, ``label``, ``original_label``,
``weight``, ``decision``, ``decided_by``) and ``<name>.weights.npy`` (float64, same order) beside it. Both are
written atomically, and never outside the chosen directory (`resolve_output`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from curator.data.problems import DataError
from curator.review import load_decisions
from curator.rundir import atomic_path, write_npy_atomic

LOG = logging.getLogger(__name__)
POLICIES = ("clean", "relabel", "reweight")
FORMATS = ("parquet", "csv")


class UnsafePathError(DataError):
    """An output path that would escape the chosen directory."""


def resolve_output(out: str | os.PathLike, base: str | os.PathLike | None = None) -> Path:
    """The absolute path to write `out` to, guaranteed to lie inside `base`.

    Without `base`, a relative `out` is taken inside the current directory and an absolute one inside its
    own parent. Rejected: any ``..`` component, an absolute `out` with an explicit `base`, and paths
    (or symlinks along them) that resolve outside `base`.
    """
    p = Path(out)
    if ".." in p.parts:
        raise UnsafePathError(f"output path {str(out)!r} contains '..'; give a path inside the target directory")
    if base is None:
        base, rel = (p.parent, Path(p.name)) if p.is_absolute() else (Path.cwd(), p)
    else:
        if p.is_absolute():
            raise UnsafePathError(f"output path {str(out)!r} is absolute but must be relative to {str(base)!r}")
        rel = p
    if not rel.name:
        raise UnsafePathError(f"output path {str(out)!r} names no file")
    base_r = Path(base).resolve()
    target = (base_r / rel).resolve()  # follows symlinks, including a symlink at the target itself
    if not target.is_relative_to(base_r) or target == base_r:
        raise UnsafePathError(f"output path {str(out)!r} resolves to {str(target)!r}, outside {str(base_r)!r}")
    return target


def build_export(run_dir: str | os.PathLike, policy: str, *, min_confidence: float = 0.5, min_weight: float = 0.05,
                 class_balanced: bool = False) -> pd.DataFrame:
    """The exported table for `policy` (see the module docstring); rows in manifest order."""
    if policy not in POLICIES:
        raise ValueError(f"unknown export policy {policy!r}; expected one of {POLICIES}")
    run = Path(run_dir)
    for f in ("audit.parquet", "manifest.parquet"):
        if not (run / f).exists():
            raise DataError(f"{str(run / f)!r} not found: run `curator audit --out {run}` first")
    audit = pd.read_parquet(run / "audit.parquet")
    man = pd.read_parquet(run / "manifest.parquet", columns=["sample_id", "source", "image_ref"])
    df = audit[["sample_id", "label", "label_issue_score", "is_label_issue", "suggested_label",
                "suggested_label_confidence"]].merge(man, on="sample_id", how="left")
    y = df["label"].to_numpy(np.int64)
    flag = df["is_label_issue"].to_numpy(bool)
    sugg, conf = df["suggested_label"].to_numpy(np.int64), df["suggested_label_confidence"].to_numpy(float)
    decision = np.full(len(df), "keep", dtype=object)
    new_label = y.copy()
    if policy == "clean":
        decision[flag] = "drop"
    elif policy == "relabel":
        ok = flag & (conf >= min_confidence) & (sugg != y)
        decision[ok], new_label[ok] = "relabel", sugg[ok]
        decision[flag & ~ok] = "drop"
    by = np.full(len(df), "audit", dtype=object)
    dec = load_decisions(run)
    if len(dec):
        pos = pd.Series(np.arange(len(df)), index=df["sample_id"])
        dec = dec[dec["sample_id"].isin(pos.index)]
        i = pos[dec["sample_id"]].to_numpy()
        act, lab = dec["action"].to_numpy(), dec["new_label"].to_numpy(np.int64)
        decision[i], by[i] = act, "review"
        new_label[i] = np.where(act == "relabel", lab, y[i])
        flag = flag.copy()
        flag[i] = act != "keep"
    weight = np.ones(len(df))
    if policy == "reweight":
        weight = np.clip(1.0 - df["label_issue_score"].to_numpy(float), min_weight, 1.0)
        weight[(by == "review") & (decision != "drop")] = 1.0
        if class_balanced:
            keep = decision != "drop"
            mass = np.bincount(new_label[keep], weights=weight[keep], minlength=int(new_label.max()) + 1)
            weight = weight / np.maximum(mass[new_label], 1e-12) * keep.sum() / max((mass > 0).sum(), 1)
    out = pd.DataFrame({"sample_id": df["sample_id"].astype(str), "source": df["source"], "image_ref": df["image_ref"],
                        "label": new_label, "original_label": y, "weight": weight, "decision": decision,
                        "decided_by": by})
    out = out[out["decision"] != "drop"].reset_index(drop=True)
    if not np.isfinite(out["weight"]).all() or (out["weight"] <= 0).any():
        raise RuntimeError("export produced non-finite or non-positive weights")  # a bug, never bad data
    return out


def export_run(run_dir: str | os.PathLike, policy: str, out: str | os.PathLike, *, fmt: str | None = None,
               base: str | os.PathLike | None = None, **kwargs) -> dict:
    """Write the export table and ``<stem>.weights.npy`` beside it (``clean.parquet`` → ``clean.weights.npy``, so
    several exports can share a folder); return a summary dict."""
    target = resolve_output(out, base)
    fmt = fmt or ("csv" if target.suffix.lower() == ".csv" else "parquet")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    table = build_export(run_dir, policy, **kwargs)
    weights_path = resolve_output(f"{target.stem}.weights.npy", target.parent)
    with atomic_path(target) as tmp:
        table.to_csv(tmp, index=False) if fmt == "csv" else table.to_parquet(tmp, index=False)
    write_npy_atomic(weights_path, table["weight"].to_numpy(np.float64))
    n_total = len(pd.read_parquet(Path(run_dir) / "audit.parquet", columns=["sample_id"]))
    summary = {"policy": policy, "out": str(target), "weights": str(weights_path), "format": fmt, "n_rows": len(table),
               "n_dropped": n_total - len(table), "n_relabelled": int((table["label"] != table["original_label"]).sum()),
               "n_review_decisions": int((table["decided_by"] == "review").sum())}
    LOG.info("export %s: %d rows (%d dropped, %d relabelled) -> %s", policy, len(table), summary["n_dropped"],
             summary["n_relabelled"], target)
    return summary
