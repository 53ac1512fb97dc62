"""The whole audit, top to bottom — the ONE place where the stages are wired (ARCHITECTURE.md).

    prepare → pretrain → embed (or the user's --embeddings) → heads → evidence → hygiene → signals → audit → report

- evidence (`pipelines.evidence`): the kNN graph and the out-of-fold probe, computed once; the signals, the
  audit, the explorer and the confident-learning columns all read them;
- heads (`pipelines.heads`): the robust heads, whose per-sample training records become explanatory signals;
- hygiene (`pipelines.hygiene`): duplicates, train/test leakage, image quality and outliers; its measurements join
  the signals and its flags are fused into the audit's table (which kinds of issue each sample has).

Every stage goes through `RunDir.run_stage`, so a re-run with unchanged inputs does no work and a
killed run resumes; ``until`` stops after the named stage. The run's ``--seed`` reaches every stochastic stage.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from curator import runfiles
from curator.audit.aggregate import METHOD_VERSION, aggregate
from curator.audit.classes import class_findings, transition_matrix
from curator.audit.config import AuditConfig
from curator.audit.diagnostics import audit_diagnostics
from curator.audit.evaluate import class_size_error, evaluate
from curator.audit.grade import REPRESENTATION_CEILING
from curator.audit.report import render_report
from curator.data.manifest import UNKNOWN, Dataset
from curator.data.options import DatasetOptions
from curator.device import select_device
from curator.evidence import Evidence
from curator.hygiene.fuse import fuse_audit
from curator.rundir import RunDir, atomic_path
from curator.ssl.resolve import prepare_weights
from pipelines.evidence import OUTPUTS as EVIDENCE_FILES, evidence_stage
from pipelines.heads import train_heads_stage
from pipelines.hygiene import OUTPUTS as HYGIENE_FILES, hygiene_stage
from pipelines.prepare import prepare_run, train_rows
from pipelines.recipes import Recipe, resolve_recipe
from pipelines.signals import signals_stage
from pipelines.ssl import embed_stage, pretrain_stage

LOG = logging.getLogger(__name__)
STAGES = ("prepare", "pretrain", "embed", "heads", "evidence", "hygiene", "signals", "audit", "report")
AUDIT_OUTPUTS = [runfiles.AUDIT, runfiles.CLASSES, runfiles.TRANSITION, runfiles.POSTERIOR, runfiles.DIAGNOSTICS]


def representation(run: RunDir) -> dict:
    """What the run's evidence came from (for the evidence grade): the user's probabilities or embeddings, or the
    pre-training's record (patch k-means, SSL from scratch, or pretrained weights) with its kNN monitor."""
    conf = (run.read_json(runfiles.CONFIG) or {}).get("dataset") or {}
    if conf.get("pred_probs"):
        return {"kind": "pred_probs", "file": conf["pred_probs"], "with_embeddings": run.exists(runfiles.KNN)}
    if conf.get("embeddings"):
        return {"kind": "embeddings", "file": conf["embeddings"]}
    h = run.read_json(f"{runfiles.CHECKPOINTS}/history.json") or {}
    backbone = h.get("backbone") or (h.get("config") or {}).get("backbone")
    knn = h.get("best_knn")
    kind = "patch_kmeans" if backbone == "patch_kmeans" else "pretrained" if h.get("weights") else "ssl"
    return {"kind": kind, "backbone": backbone, "method": (h.get("config") or {}).get("method"),
            "weights": h.get("weights"), "knn_monitor": knn, "epochs": h.get("epochs_done")}


def audit_stage(run: RunDir, ds: Dataset, evidence: Evidence, cfg: AuditConfig) -> None:
    """Aggregate, per-class findings, diagnostics, evaluation (when truth is known); writes AUDIT_OUTPUTS (+ metrics)."""
    train = ds.manifest.iloc[train_rows(ds)].reset_index(drop=True)
    y = evidence.labels
    rep = representation(run)
    res = aggregate(evidence, cfg, sample_ids=train["sample_id"].to_numpy(),
                    grade_ceiling=REPRESENTATION_CEILING.get(rep.get("kind")))
    t = train["true_label"].to_numpy(np.int64)
    truth = bool((t != UNKNOWN).any())
    table = res.table
    if run.exists(runfiles.HYGIENE):  # which kinds of issue each sample has (curator.hygiene.fuse)
        table = fuse_audit(table, run.read_parquet(runfiles.HYGIENE), res.class_posterior, res.posterior)
    classes = class_findings(res.posterior, y, table["is_label_issue"].to_numpy(), ds.class_names,
                             tail_min_clean=cfg.tail_min_clean, true_label=t if truth else None)
    table["shot_group"] = classes["shot_group"].to_numpy()[y]
    run.write_parquet(runfiles.AUDIT, table)
    run.write_parquet(runfiles.CLASSES, classes)
    run.write_npy(runfiles.TRANSITION, transition_matrix(res.posterior, y, ds.n_classes).astype(np.float32))
    run.write_npy(runfiles.POSTERIOR, res.posterior.astype(np.float16))
    extra = []
    if evidence.source == "pred_probs":
        from curator.evidence.pred_probs import in_sample_warning

        extra = [w for w in [in_sample_warning(evidence.oof_probs, y)] if w]
    run.write_json(runfiles.DIAGNOSTICS, audit_diagnostics(y, res.class_posterior, table["is_label_issue"].to_numpy(),
                                                           evidence=res.evidence, representation=rep,
                                                           extra_warnings=extra))
    if truth:
        signals = run.read_parquet(runfiles.SIGNALS) if run.exists(runfiles.SIGNALS) else None
        m = evaluate(table, t, ds.n_classes, estimated_sizes=classes["estimated_true_size"].to_numpy(), signals=signals)
        m["class_size_error_soft"] = class_size_error(classes["estimated_true_size_soft"].to_numpy(),
                                                      np.bincount(t[t >= 0], minlength=ds.n_classes))
        run.write_json(runfiles.METRICS, m)


def _spot_check(run: RunDir) -> dict | None:
    """A person's spot check of the flags (made in the explorer after an audit), as the report shows it."""
    from curator.audit.spot_check import read_spot_check, summarise
    from curator.review import load_decisions

    draw = read_spot_check(run.path)
    return None if draw is None else {**summarise(draw, load_decisions(run.path)), "mode": draw.get("mode", "full")}


def _report_thumbnails(run: RunDir, audit: pd.DataFrame, top: int = 30, max_pairs: int = 50, size: int = 48
                       ) -> dict[str, str]:
    """Small inline images for the report's top issues and leaked pairs, read like the explorer's thumbnails (the
    run's image cache when it has one, else the pinned files); none, with one warning, when images cannot be read."""
    from curator.audit.report import thumbnail_uris
    from curator.explore.thumbnails import Thumbnails, open_run_images

    ids = audit.sort_values("rank").head(top)["sample_id"].astype(str).tolist()
    if run.exists(runfiles.LEAKAGE):
        pairs = run.read_parquet(runfiles.LEAKAGE).sort_values("similarity", ascending=False).head(max_pairs)
        ids += pairs["sample_id"].astype(str).tolist() + pairs["other_id"].astype(str).tolist()
    try:
        thumbs = Thumbnails(open_run_images(run.path))
        manifest = run.read_parquet(runfiles.MANIFEST, columns=["sample_id", "image_ref"])
        refs = dict(zip(manifest["sample_id"].astype(str), manifest["image_ref"].astype(np.int64)))
        return thumbnail_uris({s: thumbs.get(int(refs[s]), size) for s in dict.fromkeys(ids) if s in refs})
    except Exception as exc:  # images on a disk that is not mounted here: the report is written without them
        LOG.warning("report: no thumbnails (%s)", exc)
        return {}


def report_stage(run: RunDir, ds: Dataset) -> None:
    audit = run.read_parquet(runfiles.AUDIT)
    classes = run.read_parquet(runfiles.CLASSES)
    metrics = run.read_json(runfiles.METRICS)
    diagnostics = run.read_json(runfiles.DIAGNOSTICS) or {}
    train = ds.manifest.iloc[train_rows(ds)]
    t = train["true_label"].to_numpy(np.int64)
    html = render_report(audit, classes, class_names=ds.class_names, metrics=metrics,
                         true_label=t if (t != UNKNOWN).all() else None, title=f"curator audit: {ds.name}",
                         warnings=diagnostics.get("warnings", []), evidence=diagnostics.get("evidence"),
                         hygiene=run.read_json(runfiles.HYGIENE_SUMMARY),
                         leakage=run.read_parquet(runfiles.LEAKAGE) if run.exists(runfiles.LEAKAGE) else None,
                         spot_check=_spot_check(run), thumbnails=_report_thumbnails(run, audit))
    with atomic_path(run / runfiles.REPORT) as tmp:
        tmp.write_text(html, encoding="utf-8")


def _embeddings(run: RunDir, ds: Dataset, rec: Recipe, options: DatasetOptions, until: int) -> np.ndarray | None:
    """Pre-training (unless --embeddings) and then the embeddings, as far as `until` asks; both take the run's seed."""
    ssl = pretrain_stage(run, ds, rec.ssl, seed=options.seed)   # the config resolved against the data (or None)
    if until < STAGES.index("embed"):
        return None
    return np.asarray(embed_stage(run, ds, ssl, seed=options.seed))


def _computes_embeddings(options: DatasetOptions, overrides: list[str] | None) -> bool:
    """Whether the run has embeddings: always, except with --pred-probs and neither --embeddings nor a backbone or
    weights named on the command line (then the user's probabilities are the only evidence)."""
    if not options.pred_probs or options.embeddings:
        return True
    return any(o.startswith(("ssl.backbone=", "ssl.weights=")) for o in overrides or [])


def _present(run: RunDir, names: list[str]) -> list[str]:
    """The run files among `names` that exist (a run without embeddings has no kNN graph, hygiene or signals)."""
    return [n for n in names if run.exists(n)]


def run_pipeline(options: DatasetOptions | dict | None, out: str | Path, *, recipe: str | Path | Recipe | None = None,
                 overrides: list[str] | None = None, until: str = "report", ssl: dict[str, Any] | None = None) -> dict:
    """Run every stage up to `until` into run directory `out`; return the audit summary (ARCHITECTURE.md). `ssl`: typed
    SSLConfig values given for this run (the command line's --budget, --weights, ...)."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; expected one of {STAGES}")
    t0 = time.perf_counter()
    stop = STAGES.index(until)
    options, rec = resolve_recipe(options, recipe=recipe, overrides=overrides, ssl=ssl)
    # the run's one device switch (--device, ssl.device): checked before any work, then handed to every stage
    # that computes on a device (pre-training and embedding, heads, evidence: kNN graph and probe, hygiene)
    device = str(select_device(rec.ssl.device))
    if stop >= STAGES.index("pretrain") and not options.embeddings:
        prepare_weights(rec.ssl)   # named weights: from the library cache, or fetched, before the run is written
    run, ds = prepare_run(out, options, rec.record(), needs_labels=stop >= STAGES.index("heads"))
    seed = options.seed
    summary: dict[str, Any] = {"run_dir": str(run.path), "n_samples": int(len(train_rows(ds))), "n_classes": ds.n_classes}
    embeddings, heads = None, {}
    images = _computes_embeddings(options, overrides)
    if not images and stop >= STAGES.index("pretrain"):
        LOG.info("--pred-probs without --embeddings (or --backbone/--weights): no embeddings are computed, so no kNN "
                 "graph, robust heads, hygiene checks, signals, embedding map or neighbours; the audit scores your "
                 "probabilities alone (add --embeddings FILE to join the kNN graph)")
    if images and stop >= STAGES.index("pretrain"):
        embeddings = _embeddings(run, ds, rec, options, stop)
        history = run.read_json(runfiles.SSL_HISTORY, recompute=True)
        if history:
            budget = history.get("budget") if isinstance(history.get("budget"), dict) else {}
            summary["pretrain"] = {k: history.get(k) for k in ("best_knn", "final_knn", "seconds", "backbone",
                                                                "image_size", "epochs_done", "partial", "weights")} | {
                "method": (history.get("config") if isinstance(history.get("config"), dict) else {}).get("method"),
                "epochs": history.get("epochs"),
                "budget_minutes": budget.get("budget_minutes"), "budget_reason": budget.get("reason")}
        if embeddings is not None:
            summary["embeddings"] = {"path": str(run / runfiles.EMBEDDINGS), "n": int(embeddings.shape[0]),
                                     "dim": int(embeddings.shape[1])}
    if stop >= STAGES.index("heads") and embeddings is not None:
        heads = train_heads_stage(run, ds, embeddings, rec.heads, seed=seed, device=device)
    if stop >= STAGES.index("evidence"):
        summary.update(score_stages(run, ds, embeddings, heads, rec, seed=seed, until=until, device=device,
                                    supplied_embeddings=bool(options.embeddings), options=options))
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def score_stages(run: RunDir, ds: Dataset, embeddings: np.ndarray | None, heads: dict, rec: Recipe, *, seed: int,
                 until: str = "report", device: str | None = None,
                 supplied_embeddings: bool = False, options: DatasetOptions | None = None) -> dict[str, Any]:
    """The stages after the embeddings and the heads: evidence → hygiene → signals → audit → report, as far as
    `until`; returns their part of the summary. `run_pipeline` calls it, and so do the benches that bring their
    own embeddings (`curator.bench.hygiene`), so that the stages are wired in this one place. `options` carries
    --pred-probs; `embeddings` is None only with it (then no hygiene and no signals)."""
    stop = STAGES.index(until)
    truth = ds.has_truth("train")
    summary: dict[str, Any] = {}
    hygiene = None
    evidence = evidence_stage(run, ds, embeddings, rec.evidence, seed=seed, device=device, options=options)
    if stop >= STAGES.index("hygiene") and embeddings is not None:
        hygiene = hygiene_stage(run, ds, evidence, embeddings, rec.hygiene, supplied_embeddings=supplied_embeddings)
        summary["hygiene"] = (run.read_json(runfiles.HYGIENE_SUMMARY) or {}).get("counts", {})
    if stop >= STAGES.index("signals") and embeddings is not None:
        signals_stage(run, ds, evidence, heads, rec.signals, hygiene=hygiene)
    if stop >= STAGES.index("audit"):
        # the [evidence] settings too: the audit's self-training rounds re-fit the probe with them (probe_refit_steps
        # changes no evidence file, only the re-fits)
        run.run_stage("audit", lambda: audit_stage(run, ds, evidence, rec.audit),
                      inputs={"audit": rec.audit.to_dict(), "evidence": rec.evidence.to_dict(),
                              "method": METHOD_VERSION},
                      outputs=AUDIT_OUTPUTS + ([runfiles.METRICS] if truth else []),
                      input_files=_present(run, [runfiles.MANIFEST, runfiles.EMBEDDINGS, *EVIDENCE_FILES,
                                                 runfiles.HYGIENE] + ([runfiles.SIGNALS] if truth else [])))
        audit = run.read_parquet(runfiles.AUDIT, columns=["is_label_issue"])
        summary["n_flagged"] = int(audit["is_label_issue"].sum())
        diagnostics = run.read_json(runfiles.DIAGNOSTICS) or {}
        summary["warnings"] = list(diagnostics.get("warnings", []))
        summary["evidence"] = diagnostics.get("evidence")
        for w in summary["warnings"]:  # logged on every run, also when the audit stage was up to date
            LOG.warning("audit: %s", w)
        if truth:
            summary["metrics"] = run.read_json(runfiles.METRICS)
    if stop >= STAGES.index("report"):
        run.run_stage("report", lambda: report_stage(run, ds), inputs={"report": 1}, outputs=[runfiles.REPORT],
                      input_files=_present(run, [runfiles.AUDIT, runfiles.CLASSES, runfiles.DIAGNOSTICS, *HYGIENE_FILES,
                                                 runfiles.METRICS, runfiles.SPOT_CHECK, runfiles.DECISIONS]))
        summary["report"] = str(run / runfiles.REPORT)
    return summary
