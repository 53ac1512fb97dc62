"""`curator export`: cleaned / relabelled / re-weighted manifests from an audited run (docs/audit.md, docs/hygiene.md).

Policies (automatic decisions come from ``audit.parquet``; a person's decisions from
``decisions.parquet`` (curator.review) override them: keep = not an issue, drop = remove,
relabel = use the new label):

- ``clean``: drop flagged samples; weight 1;
- ``relabel``: flagged samples whose suggestion is at least ``min_confidence`` sure get the suggested
  label, other flagged samples are dropped; weight 1;
- ``reweight``: every sample kept (except explicit drops), weight = P(label correct) = 1 − score,
  floored at ``min_weight``, optionally multiplied by a class-balancing factor (inverse estimated clean
  count per class) so ``torch.utils.data.WeightedRandomSampler(weights, len(weights))`` draws classes evenly.

Hygiene (docs/hygiene.md; needs a run audited with the hygiene stage, i.e. audit.parquet's ``issue_kinds``):

- ``drop`` (any droppable kind of the registry, `curator.hygiene.registry.droppable`, every policy; each check says
  which rows it drops, `HygieneCheck.drop_mask`, and a check that groups samples keeps one per group): ``duplicate`` keeps one sample per group of identical or
  near-identical images (the audit's ``duplicate_of`` choice, or the best remaining member when that one is
  dropped for another reason) and drops the other copies; ``leak`` drops training samples that have a copy in the
  test / validation split (the held-out split stays as it is, so scores stay comparable; the pairs are in
  RUN/leakage.parquet); ``quality`` drops unusable images (``quality_issues`` naming one of `unusable`:
  dark, light, blurry, low_information by default; grayscale and odd sizes are kept); ``outlier`` drops outliers;
- ``relabel`` never relabels a flagged sample whose image is unusable (its suggestion comes from an image
  nobody could label): it is dropped instead.

A person's decision overrides all of these, as for label issues: a duplicate a person kept stands for its group
(its unreviewed copies are dropped), and copies a person kept all stay.

Output: a Parquet or CSV table (``sample_id``, ``source``, ``image_ref``, ``label``, ``original_label``,
``weight``, ``decision``, ``decided_by``; plus ``file`` when the run pinned image files) and
``<name>.weights.npy`` (float64, same order) beside it. Both are written atomically, never outside
the chosen directory (`resolve_output`), never onto a directory, and never over a run's own files:
inside the run directory only ``RUN/exports/`` may be written (`check_not_in_run`).

The run is read only after its files are verified (`curator.rundir.RunDir.verify_output`: a
truncated or altered ``audit.parquet`` is refused with a message, not a parser's traceback), and
the exported samples' image files are checked against their pins (`curator.data.pins`): if any
changed since the audit, the export is refused naming them (``allow_changed=True`` /
``--allow-changed`` exports anyway, with a warning).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from curator import runfiles
from curator.config import ConfigError
from curator.data.pins import changed_samples, describe_changes
from curator.data.problems import DataError
from curator.hygiene import registry
from curator.hygiene.kinds.quality import unusable_mask
from curator.hygiene.thresholds import PROPERTY_CHECKS, UNUSABLE
from curator.review import load_decisions
from curator.rundir import RunDir, atomic_path, write_npy_atomic

LOG = logging.getLogger(__name__)
POLICIES = ("clean", "relabel", "reweight")
FORMATS = ("parquet", "csv")
EXPORTS_DIR = "exports"  # the one place inside a run directory an export may write


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


def check_not_in_run(target: Path, run_dir: str | os.PathLike) -> None:
    """Refuse a `target` inside the run directory other than under ``RUN/exports/``, and a directory."""
    if target.is_dir():
        raise UnsafePathError(f"output path {str(target)!r} is a directory; give a file name, e.g. "
                              f"{str(target / 'clean.parquet')!r}")
    run = Path(run_dir).resolve()
    if target.is_relative_to(run) and not target.is_relative_to(run / EXPORTS_DIR):
        raise UnsafePathError(f"output path {str(target)!r} lies inside the run directory {str(run)!r}, where it could "
                              f"replace the run's own files; write to {str(run / EXPORTS_DIR / target.name)!r} or outside the run")


def _read_run_table(run: RunDir, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    run.verify_output(name)
    try:
        df = pd.read_parquet(run / name, columns=columns)
    except Exception as exc:  # noqa: BLE001 - a damaged file: say which and how to recompute it
        raise DataError(f"{str(run / name)!r} cannot be read ({type(exc).__name__}: {str(exc)[:160]}); "
                        f"re-run `curator audit --out {run.path}` to recompute it") from None
    missing = [c for c in (columns or []) if c not in df.columns]
    if missing:
        raise DataError(f"{str(run / name)!r} lacks column(s) {missing}; re-run `curator audit --out {run.path}`")
    return df


AUDIT_COLUMNS = ["sample_id", "label", "label_issue_score", "is_label_issue", "suggested_label", "suggested_label_confidence"]


def changed_since_audit(run_dir: str | os.PathLike, sample_ids: pd.Series | None = None) -> list:
    """Samples (of `sample_ids`, default all) whose pinned image file changed since the run read it.

    Only file pins are checked here (one ``stat`` each); in-memory datasets (digits, CIFAR pickles) are
    checked by the explorer and by re-runs, which re-open the dataset anyway.
    """
    run = RunDir(run_dir, create=False)
    try:
        man = pd.read_parquet(run / runfiles.MANIFEST)
    except Exception:  # noqa: BLE001 - reported by the caller's own read
        return []
    if "pin" not in man.columns:
        return []
    if sample_ids is not None:
        man = man[man["sample_id"].astype(str).isin(set(sample_ids.astype(str)))]
    man = man[man["pin"].astype(str).str.startswith("stat:")]
    if not len(man):
        return []
    root = (run.read_json(runfiles.CONFIG, {}) or {}).get("image_root")
    if not root:
        return []
    return changed_samples(man, root=root)


def _check_drop(drop, unusable) -> tuple[str, ...]:
    drop = tuple(dict.fromkeys(drop or ()))
    bad = [k for k in drop if k not in registry.droppable()]
    if bad:
        raise ConfigError(f"--drop: unknown kind(s) {bad}; expected some of {','.join(registry.droppable())}")
    known = {c.name for c in PROPERTY_CHECKS}
    bad = [c for c in unusable if c not in known]
    if bad:
        raise ConfigError(f"--unusable: unknown image-quality check(s) {bad}; expected some of {','.join(sorted(known))}")
    return drop


def _dedupe(ids: np.ndarray, is_dup: np.ndarray, dup_of: np.ndarray, decision: np.ndarray, by: np.ndarray,
            score: np.ndarray) -> np.ndarray:
    """Rows to drop so that one member per duplicate group survives: among the members not dropped already,
    reviewed ones stay, and of the others the audit's chosen member (``duplicate_of`` empty), else the lowest
    score, else the earliest row, stays unless a reviewed member already does."""
    drop = np.zeros(len(ids), bool)
    members = np.flatnonzero(is_dup & (decision != "drop"))
    if not len(members):
        return drop
    group = np.where(dup_of[members] != "", dup_of[members], ids[members])
    reviewed = by[members] == "review"
    chosen = dup_of[members] == ""
    order = np.lexsort((members, score[members], ~chosen, ~reviewed, group))
    seen: set = set()
    for j in order:
        g = group[j]
        if g in seen and not reviewed[j]:
            drop[members[j]] = True
        seen.add(g)
    return drop


def build_export(run_dir: str | os.PathLike, policy: str, **kwargs) -> pd.DataFrame:
    """The exported table for `policy` (see the module docstring); rows in manifest order. Keywords: `min_confidence`,
    `min_weight`, `class_balanced`, `drop` (hygiene kinds to remove, `curator.hygiene.registry.droppable`) and `unusable` (the image-quality
    checks that make an image unusable)."""
    return _build(run_dir, policy, **kwargs)[0]


def _build(run_dir: str | os.PathLike, policy: str, *, min_confidence: float = 0.5, min_weight: float = 0.05,
           class_balanced: bool = False, drop: tuple[str, ...] | list[str] = (),
           unusable: tuple[str, ...] | list[str] = UNUSABLE) -> tuple[pd.DataFrame, dict[str, int]]:
    """(the export table, {why: samples dropped}) — the why being label, duplicate, leak, quality, outlier or review."""
    if policy not in POLICIES:
        raise ValueError(f"unknown export policy {policy!r}; expected one of {POLICIES}")
    drop = _check_drop(drop, unusable)
    run = RunDir(run_dir, create=False)
    if not run.path.is_dir():
        raise DataError(f"run directory {str(run.path)!r} does not exist")
    audit = _read_run_table(run, runfiles.AUDIT)
    missing = [c for c in AUDIT_COLUMNS if c not in audit.columns]
    if missing:
        raise DataError(f"{str(run / 'audit.parquet')!r} lacks column(s) {missing}; re-run `curator audit --out {run.path}`")
    hygiene_columns = ["issue_kinds", *registry.audit_columns()]
    hygiene = all(c in audit.columns for c in hygiene_columns)
    if drop and not hygiene:
        raise DataError(f"run {str(run.path)!r} has no hygiene checks in audit.parquet (written before they existed), so "
                        f"--drop {','.join(drop)} cannot be applied; re-run `curator audit --out {run.path}`")
    man = _read_run_table(run, runfiles.MANIFEST)
    missing = [c for c in ("sample_id", "source", "image_ref") if c not in man.columns]
    if missing:
        raise DataError(f"{str(run / 'manifest.parquet')!r} lacks column(s) {missing}; re-run `curator audit --out {run.path}`")
    man = man[["sample_id", "source", "image_ref"] + (["file"] if "file" in man.columns else [])]
    df = audit[AUDIT_COLUMNS + (hygiene_columns if hygiene else [])].merge(man, on="sample_id", how="left")
    y = df["label"].to_numpy(np.int64)
    flag = df["is_label_issue"].to_numpy(bool)
    sugg, conf = df["suggested_label"].to_numpy(np.int64), df["suggested_label_confidence"].to_numpy(float)
    decision = np.full(len(df), "keep", dtype=object)
    new_label = y.copy()
    if policy == "clean":
        decision[flag] = "drop"
    elif policy == "relabel":
        bad_image = unusable_mask(df["quality_issues"], unusable) if hygiene else np.zeros(len(df), bool)
        ok = flag & (conf >= min_confidence) & (sugg != y) & ~bad_image
        decision[ok], new_label[ok] = "relabel", sugg[ok]
        decision[flag & ~ok] = "drop"
    by = np.full(len(df), "audit", dtype=object)
    reason = np.where(decision == "drop", "label", "").astype(object)
    for check in registry.checks():
        if check.kind in drop and not check.group_column:
            hit = check.drop_mask(df, unusable) & (decision != "drop")
            decision[hit], reason[hit] = "drop", check.kind
    dec = load_decisions(run.path)
    if len(dec):
        pos = pd.Series(np.arange(len(df)), index=df["sample_id"])
        dec = dec[dec["sample_id"].isin(pos.index)]
        i = pos[dec["sample_id"]].to_numpy()
        act, lab = dec["action"].to_numpy(), dec["new_label"].to_numpy(np.int64)
        decision[i], by[i] = act, "review"
        reason[i] = np.where(act == "drop", "review", "")
        new_label[i] = np.where(act == "relabel", lab, y[i])
        flag = flag.copy()
        flag[i] = act != "keep"
    for check in registry.checks():
        if check.kind in drop and check.group_column:            # keep one member per group
            extra = _dedupe(df["sample_id"].astype(str).to_numpy(), check.drop_mask(df, unusable),
                            df[check.keeper.name].fillna("").astype(str).to_numpy(), decision, by,
                            df["label_issue_score"].to_numpy(float))
            decision[extra], reason[extra] = "drop", check.kind
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
    if "file" in df.columns and (df["file"].fillna("").astype(str) != "").any():
        out["file"] = df["file"].fillna("").astype(str).to_numpy()  # the pinned image file, relative to the image root
    dropped_for = {str(k): int(v) for k, v in pd.Series(reason[decision == "drop"]).value_counts().items()}
    out = out[out["decision"] != "drop"].reset_index(drop=True)
    if not np.isfinite(out["weight"]).all() or (out["weight"] <= 0).any():
        raise RuntimeError("export produced non-finite or non-positive weights")  # a bug, never bad data
    return out, dropped_for


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with every text cell that a spreadsheet would run as a formula (one starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return: OWASP's CSV injection rule) prefixed with a single quote, so it
    shows as text. For CSV exports only; Parquet keeps the values as they are. Numbers are not touched."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def export_run(run_dir: str | os.PathLike, policy: str, out: str | os.PathLike, *, fmt: str | None = None,
               base: str | os.PathLike | None = None, allow_changed: bool = False, **kwargs) -> dict:
    """Write the export table and ``<stem>.weights.npy`` beside it (``clean.parquet`` → ``clean.weights.npy``, so
    several exports can share a folder); return a summary dict.

    Refused (`DataError`, nothing written): an `out` that is a directory or lies inside the run directory
    outside ``RUN/exports/``; a run whose files are damaged; exported samples whose image file changed
    since the audit (unless `allow_changed`)."""
    target = resolve_output(out, base)
    check_not_in_run(target, run_dir)
    fmt = fmt or ("csv" if target.suffix.lower() == ".csv" else "parquet")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    weights_path = resolve_output(f"{target.stem}.weights.npy", target.parent)
    check_not_in_run(weights_path, run_dir)
    other = RunDir(run_dir, create=False).writer() if Path(run_dir).is_dir() else None
    if other:
        from curator.rundir import describe_holder

        LOG.warning("run %s is being written right now by %s; the export reflects its files as they are now",
                    run_dir, describe_holder(other))
    table, dropped_for = _build(run_dir, policy, **kwargs)
    changed = changed_since_audit(run_dir, table["sample_id"])
    if changed and not allow_changed:
        raise DataError(f"the image files of exported samples changed since the audit ({describe_changes(changed)}); "
                        "re-run `curator audit` on the current data, or pass --allow-changed to export anyway")
    if changed:
        LOG.warning("exporting although %s", describe_changes(changed))
    with atomic_path(target) as tmp:
        escape_formulas(table).to_csv(tmp, index=False) if fmt == "csv" else table.to_parquet(tmp, index=False)
    write_npy_atomic(weights_path, table["weight"].to_numpy(np.float64))
    n_total = len(pd.read_parquet(Path(run_dir) / runfiles.AUDIT, columns=["sample_id"]))  # verified by build_export
    summary = {"policy": policy, "out": str(target), "weights": str(weights_path), "format": fmt, "n_rows": len(table),
               "n_dropped": n_total - len(table), "n_relabelled": int((table["label"] != table["original_label"]).sum()),
               "n_review_decisions": int((table["decided_by"] == "review").sum()),
               "dropped_for": dropped_for, "drop": list(kwargs.get("drop") or ()),
               "n_changed_since_audit": len(changed), "changed_since_audit": [c.sample_id for c in changed[:100]]}
    LOG.debug("export %s: %d rows (%d left out, %d relabelled) -> %s", policy, len(table), summary["n_dropped"],
              summary["n_relabelled"], target)  # the command prints the summary itself, once
    return summary
