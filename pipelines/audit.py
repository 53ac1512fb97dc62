"""The whole audit, top to bottom — the ONE place where the stages are wired (SPEC §2, §10).

    prepare_run → pretrain_stage / embed_stage (or the user's --embeddings) → train_heads_stage
      → signals_stage → audit (aggregate, classes, evaluate) → report

Every stage goes through `RunDir.run_stage`, so a re-run with unchanged inputs does no work and a
killed run resumes. A stage whose module has not been written yet is skipped with a warning (the
audit still runs on the embeddings); ``until`` stops after the named stage.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curator.audit.aggregate import aggregate
from curator.audit.classes import class_findings, transition_matrix
from curator.audit.config import AuditConfig
from curator.audit.diagnostics import audit_diagnostics
from curator.audit.evaluate import class_size_error, evaluate
from curator.audit.report import render_report
from curator.data.manifest import UNKNOWN
from curator.data.options import DatasetOptions
from pipelines.heads import train_heads_stage
from pipelines.prepare import prepare_run, train_rows
from pipelines.signals import signals_stage
from pipelines.ssl import embed_stage, pretrain_stage
from pipelines.recipes import Recipe, load_recipe

LOG = logging.getLogger(__name__)
STAGES = ("prepare", "embed", "train", "signals", "audit", "report")
AUDIT_OUTPUTS = ["audit.parquet", "classes.parquet", "transition.npy", "posterior.npy", "diagnostics.json"]


def _cfg_dict(cfg: Any) -> Any:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg


def resolve_options(options: DatasetOptions | dict | None, recipe: Recipe) -> DatasetOptions:
    """Recipe [dataset] values, then the user's options on top: a dict holds exactly the options given
    explicitly (the CLI passes these); from a DatasetOptions every non-default value counts as given."""
    from curator.config import from_dict

    base = from_dict(DatasetOptions, recipe.dataset, where="[dataset]")
    if options is None:
        return base
    if isinstance(options, dict):
        return from_dict(DatasetOptions, {**dataclasses.asdict(base), **options}, where="dataset options")
    default = DatasetOptions()
    for f in dataclasses.fields(DatasetOptions):
        v = getattr(options, f.name)
        if v != getattr(default, f.name):
            setattr(base, f.name, v)
    return base


def _embeddings(run, ds, recipe: Recipe, options: DatasetOptions) -> np.ndarray:
    """SSL pre-training + embedding (or the user's --embeddings file, loaded by embed_stage)."""
    explicit = dict(recipe.raw.get("ssl", {}))  # only what the recipe / --set named; the rest follows the image size
    if not options.embeddings:
        pretrain_stage(run, ds, explicit)
    return np.asarray(embed_stage(run, ds, explicit))


def _head_probs(run, head_results: dict) -> dict[str, np.ndarray]:
    probs = {name: np.asarray(r.probs) for name, r in (head_results or {}).items() if getattr(r, "probs", None) is not None}
    for f in sorted((run.path / "heads").glob("*.npz")) if (run.path / "heads").exists() else []:
        if f.stem not in probs:
            with np.load(f) as z:
                if "probs" in z:
                    probs[f.stem] = z["probs"]
    return probs


def audit_stage(run, ds, embeddings: np.ndarray, signals: pd.DataFrame | None, head_probs: dict, cfg: AuditConfig) -> None:
    """Aggregate, per-class findings, evaluation (when truth is known); writes AUDIT_OUTPUTS (+ metrics.json)."""
    train = ds.manifest.iloc[train_rows(ds)].reset_index(drop=True)
    y = train["label"].to_numpy(np.int64)
    knn = None
    if run.exists("knn.npz"):
        with np.load(run / "knn.npz") as z:
            if z["indices"].shape[0] == len(y) and z["indices"].shape[1] >= cfg.knn_k:
                knn = (z["indices"], z["similarities"])
    res = aggregate(embeddings, y, ds.n_classes, cfg, sample_ids=train["sample_id"].to_numpy(), knn=knn, head_probs=head_probs)
    t = train["true_label"].to_numpy(np.int64)
    truth = bool((t != UNKNOWN).any())
    classes = class_findings(res.posterior, y, res.table["is_label_issue"].to_numpy(), ds.class_names,
                             tail_min_clean=cfg.tail_min_clean, true_label=t if truth else None)
    table = res.table
    table["shot_group"] = classes["shot_group"].to_numpy()[y]
    run.write_parquet("audit.parquet", table)
    run.write_parquet("classes.parquet", classes)
    run.write_npy("transition.npy", transition_matrix(res.posterior, y, ds.n_classes).astype(np.float32))
    run.write_npy("posterior.npy", res.posterior.astype(np.float16))
    run.write_json("diagnostics.json", audit_diagnostics(y, res.class_posterior, table["is_label_issue"].to_numpy()))
    if truth:
        m = evaluate(table, t, ds.n_classes, estimated_sizes=classes["estimated_true_size"].to_numpy(), signals=signals)
        m["class_size_error_soft"] = class_size_error(classes["estimated_true_size_soft"].to_numpy(), np.bincount(t[t >= 0], minlength=ds.n_classes))
        run.write_json("metrics.json", m)


def report_stage(run, ds) -> None:
    audit = run.read_parquet("audit.parquet")
    classes = run.read_parquet("classes.parquet")
    metrics = run.read_json("metrics.json")
    diagnostics = run.read_json("diagnostics.json") or {}
    train = ds.manifest.iloc[train_rows(ds)]
    t = train["true_label"].to_numpy(np.int64)
    html = render_report(audit, classes, class_names=ds.class_names, metrics=metrics,
                         true_label=t if (t != UNKNOWN).all() else None, title=f"curator audit: {ds.name}",
                         warnings=diagnostics.get("warnings", []))
    _write_text(run.path / "report.html", html)


def _write_text(path: Path, text: str) -> None:
    from curator.rundir import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def run_pipeline(options: DatasetOptions | dict | None, out: str | Path, *, recipe: str | Path | dict | Recipe | None = None,
                 overrides: list[str] | None = None, until: str = "report") -> dict:
    """Run every stage up to `until` into run directory `out`; return the audit summary (SPEC §10)."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; expected one of {STAGES}")
    t0 = time.perf_counter()
    ds_name = ((options.get("dataset") if isinstance(options, dict) else options.dataset) if options else None) or "digits"
    if isinstance(recipe, Recipe):
        rec = recipe
    elif isinstance(recipe, dict):
        rec = load_recipe(ds_name, raw=recipe, overrides=overrides)
    else:
        rec = load_recipe(ds_name, path=recipe, overrides=overrides)
    options = resolve_options(options, rec)
    stop = STAGES.index(until)
    run, ds = prepare_run(out, options, {k: rec.raw.get(k, {}) for k in rec.raw} | {"overrides": list(overrides or [])})
    summary: dict[str, Any] = {"run_dir": str(run.path), "n_samples": int(len(train_rows(ds))), "n_classes": ds.n_classes}
    if stop >= 1:
        embeddings = _embeddings(run, ds, rec, options)
    head_results: dict = {}
    if stop >= 2:
        head_results = train_heads_stage(run, ds, embeddings, rec.heads, seed=options.seed) or {}
    signals = None
    if stop >= 3:
        signals = signals_stage(run, ds, embeddings, head_results, rec.signals)
    if stop >= 4:
        cfg = rec.audit if isinstance(rec.audit, AuditConfig) else AuditConfig(**(rec.audit or {}))
        files = ["manifest.parquet", "embeddings.npy"] + [f for f in ("signals.parquet", "knn.npz") if run.exists(f)]
        files += [str(p.relative_to(run.path)) for p in sorted((run.path / "heads").glob("*.npz"))] if run.exists("heads") else []
        truth = ds.has_truth("train")
        run.run_stage("audit", lambda: audit_stage(run, ds, embeddings, signals, _head_probs(run, head_results), cfg),
                      inputs={"audit": cfg.to_dict()}, outputs=AUDIT_OUTPUTS + (["metrics.json"] if truth else []),
                      input_files=files)
        audit = run.read_parquet("audit.parquet", columns=["is_label_issue"])
        summary["n_flagged"] = int(audit["is_label_issue"].sum())
        summary["warnings"] = list((run.read_json("diagnostics.json") or {}).get("warnings", []))
        for w in summary["warnings"]:  # logged on every run, also when the audit stage was up to date
            LOG.warning("audit: %s", w)
        if truth:
            summary["metrics"] = run.read_json("metrics.json")
    if stop >= 5:
        run.run_stage("report", lambda: report_stage(run, ds), inputs={"report": 1}, outputs=["report.html"],
                      input_files=["audit.parquet", "classes.parquet", "diagnostics.json"]
                      + (["metrics.json"] if run.exists("metrics.json") else []))
        summary["report"] = str(run / "report.html")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary
