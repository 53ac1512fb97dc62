"""Stages `pretrain` and `embed` (SPEC §2, §4; contract: RUN/checkpoints/, RUN/embeddings.npy).

- `resolve_config(ds, cfg, device)`: the recipe's `SSLConfig` (its ``None`` fields mean "decide from the
  data") filled from the images' size, the device and the ``--weights`` file: the GPU recipes of
  `curator.ssl.config.recipe_for`; on a CPU, for images larger than digits, a time budget
  (``ssl.budget_minutes``, default `CPU_DEFAULT_BUDGET_MINUTES`) and the backbone/resolution left to it;
  with ``--weights`` and neither ``--epochs`` nor ``--budget``: embed with the weights as they are.
- `plan_config(run, ds, cfg, seed=, device=)`: `resolve_config`, then the budget turned into epochs (and,
  on a CPU, a backbone and resolution) by `curator.ssl.budget` — ONCE per run: the plan is recorded in
  ``RUN/checkpoints/budget.json`` and reused by every later command with the same request, so the same
  command on the same data trains the same schedule whatever the machine's load.
- `pretrain_stage(run, ds, cfg, seed=) -> SSLConfig`: self-supervised training on the training rows' images
  (decoded once into the image cache, `curator.data.cache`), checkpoints in RUN/checkpoints/ (``last.pt``
  every epoch; ``backbone.pt`` and ``history.json`` at the end); skipped when up to date. A run stopped by
  the wall-clock cap ``ssl.max_minutes`` is recorded as partial (history.json) and the next run continues
  it; a run asked for more epochs continues from ``last.pt``. ``ssl.epochs = 0`` (with ``--weights``)
  writes the given weights as the encoder. Returns the resolved config the embed stage uses.
- `embed_stage(run, ds, cfg, seed=) -> (N_train, d) float16`: RUN/embeddings.npy (training rows in
  manifest order) and RUN/embeddings_test.npy (test rows, when present); with
  ``DatasetOptions.embeddings`` (RUN/config.json dataset.embeddings) the file is loaded instead and
  nothing is trained. Skipped when up to date; the arrays are then read back from the run.

Images that cannot be decoded are added to RUN/problems.parquet (by sample id and reason).
"""
from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from curator import runfiles
from curator.data import cache as image_cache
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.data.problems import ProblemReport
from curator.device import select_device
from curator.rundir import RunDir, file_fingerprint
from curator.ssl.backbones import FITTED, PREFIXES, build_backbone, native_preprocessing, resolve_backbone
from curator.ssl.budget import CPU_LADDER, BudgetPlan, Candidate, plan as make_plan
from curator.ssl.config import CPU_DEFAULT_BUDGET_MINUTES, SSLConfig, default_warmup, recipe_for
from curator.ssl.data import CachedBatches, ResidentBatches, StreamingBatches, decode_all, image_size_of
from curator.ssl.distributed import dist_info
from curator.ssl.embed import embed_rows, load_backbone, save_backbone
from curator.ssl.train import TrainData, knn_monitor, normalised_recipe, pretrain, uses_channels_last
from curator.ssl.weights import WeightsError, checkpoint_path, read_weights

LOG = logging.getLogger(__name__)

CPU_QUALITY_NOTE = ("CPU pre-training gives rough embeddings (on 10,000 CIFAR-10 images with 10% of the labels wrong, the "
                    "default 5-minute budget fitted patch k-means features: kNN monitor 0.48 against the given labels, "
                    "label-error AUROC 0.90; ResNet-18 trained on a GPU reaches kNN ~0.75 on CIFAR-10); for better ones: "
                    "a GPU, --weights FILE (a pretrained backbone you have, e.g. --backbone torchvision:resnet50), or "
                    "--embeddings FILE (bring your own)")


@functools.lru_cache(maxsize=8)
def _curator_meta(path: str, stamp: tuple[int, int]) -> dict | None:
    return read_weights(path)[1]


def weights_metadata(weights: str | None) -> dict | None:
    """The metadata of a curator encoder checkpoint given as --weights (None for other files)."""
    if weights is None:
        return None
    p = checkpoint_path(weights)
    if not p.exists():
        raise WeightsError(f"weights file {str(p)!r} does not exist")
    st = os.stat(p)
    return _curator_meta(str(p), (st.st_size, st.st_mtime_ns))


def default_image_size(backbone: str, native: int, cpu: bool) -> int:
    """Training resolution for an explicitly chosen backbone: a torchvision/timm model's own input size;
    small CNNs at most 32 px on a CPU (64 px on a GPU); the CIFAR ResNet at most 64 px; standard ResNets
    at 224 px for images larger than 64 px."""
    if backbone.startswith(PREFIXES):
        return int(native_preprocessing(backbone).input_size or 224)
    if backbone in ("tiny_cnn", "small_cnn"):
        return min(native, 32 if cpu else 64)
    if backbone == "resnet18_cifar":
        return min(native, 64)
    return native if native <= 64 else 224


def uses_ladder(cfg: SSLConfig, native: int, cpu: bool) -> bool:
    """On a CPU, for images larger than digits and no backbone given: the budget chooses among `CPU_LADDER`."""
    return cpu and native > 16 and cfg.backbone is None and cfg.epochs != 0


def resolve_config(ds: Dataset, cfg: SSLConfig | dict | None = None, device: torch.device | None = None) -> SSLConfig:
    """Fill the undecided (``None``) fields of `cfg` from the data, the device and the weights file, except what
    a budget still has to decide (`plan_config`). Idempotent: a resolved config comes back unchanged."""
    if not isinstance(cfg, SSLConfig):
        cfg = SSLConfig.from_dict(cfg or {})
    device = device or select_device(cfg.device)
    cpu = device.type == "cpu"
    refs = ds.train["image_ref"].to_numpy()
    native = image_size_of(ds.images, refs)
    v: dict = {}
    meta = weights_metadata(cfg.weights)
    if meta is not None:
        if cfg.backbone is not None and cfg.backbone != meta["backbone"]:
            raise WeightsError(f"weights file {str(checkpoint_path(cfg.weights))!r} is a curator checkpoint of backbone "
                               f"{meta['backbone']!r}, not {cfg.backbone!r}; leave --backbone unset to use its own")
        v.update(backbone=meta["backbone"], width=cfg.width or meta.get("width"),
                 image_size=cfg.image_size or int(meta["image_size"]))
    if cfg.weights is not None and cfg.epochs is None and cfg.budget_minutes is None:
        v["epochs"] = 0          # a pretrained start: embed with it as it is, unless told to train on
    if cfg.backbone in FITTED:
        v.update(epochs=0, warmup_epochs=0, knn_every=0)
    merged = cfg.replace(**v)
    if uses_ladder(merged, native, cpu) and merged.budget_minutes is None:
        v["budget_minutes"] = CPU_DEFAULT_BUDGET_MINUTES
    budgeted = merged.epochs is None and v.get("budget_minutes", cfg.budget_minutes) is not None
    for key, value in recipe_for(native, len(refs), cpu=cpu).items():
        if getattr(merged, key) is None and not (key == "epochs" and budgeted):
            v[key] = value
    merged = cfg.replace(**v)
    if not uses_ladder(merged, native, cpu):
        if merged.backbone is None:
            v["backbone"] = resolve_backbone(None, native)
        name = v.get("backbone", merged.backbone)
        if merged.image_size is None:
            v["image_size"] = default_image_size(name, native, cpu)
        if merged.width is None and name in ("tiny_cnn", "small_cnn"):
            v["width"] = 32
    merged = cfg.replace(**v)
    if merged.epochs is not None:
        if merged.warmup_epochs is None:
            v["warmup_epochs"] = default_warmup(merged.epochs)
        if merged.knn_every is None:
            v["knn_every"] = max(1, -(-merged.epochs // 4))
    return cfg.replace(**v)


def _n_monitor(ds: Dataset, cfg: SSLConfig) -> int:
    n_train, n_test = len(ds.train), len(ds.split("test"))
    return min(n_train, cfg.knn_max_bank) + (n_test if n_test else 0)


def _candidates(cfg: SSLConfig, native: int, cpu: bool) -> list[Candidate]:
    if not uses_ladder(cfg, native, cpu):
        return [Candidate(cfg.backbone, int(cfg.image_size), cfg.width)]
    out: list[Candidate] = []
    for c in CPU_LADDER:
        size = cfg.image_size or min(c.image_size, native)
        cand = Candidate(c.backbone, size, cfg.width or c.width)
        if cand not in out:
            out.append(cand)
    return out


def plan_config(run: RunDir, ds: Dataset, cfg: SSLConfig | dict | None, *, seed: int,
                device: torch.device | None = None) -> tuple[SSLConfig, BudgetPlan | None]:
    """The resolved config for this run and the budget plan behind it (None when no budget was involved)."""
    cfg = resolve_config(ds, cfg, device)
    device = device or select_device(cfg.device)
    cpu = device.type == "cpu"
    native = image_size_of(ds.images, ds.train["image_ref"].to_numpy())
    if cfg.is_resolved:
        if cfg.budget_minutes is not None and cfg.epochs:
            LOG.info("pre-training: %d epochs given; the %g-minute budget is not used", cfg.epochs, cfg.budget_minutes)
        return cfg, None
    cands = _candidates(cfg, native, cpu)
    request = {"budget_minutes": cfg.budget_minutes, "fixed_epochs": cfg.epochs, "candidates": [c.key for c in cands],
               "n_train": len(ds.train), "n_monitor": _n_monitor(ds, cfg), "method": cfg.method,
               "batch_size": cfg.batch_size, "head_dim": cfg.head_dim, "fuse_views": cfg.fuse_views,
               "weights": cfg.weights, "device": device.type, "manifest": manifest_fingerprint(ds.manifest)}
    rec = run.read_json(runfiles.BUDGET, recompute=True)
    try:
        previous = BudgetPlan.from_dict(rec["plan"]) if rec and "plan" in rec else None
    except ValueError as exc:   # not a plan: made again
        LOG.warning("%s: %s; planning the budget again", run / runfiles.BUDGET, exc)
        rec, previous = None, None
    if rec and rec.get("request") == request:
        plan = previous
        LOG.info("pre-training budget: reusing the plan recorded in %s (%d epochs of %s at %d px)", run / runfiles.BUDGET,
                 plan.epochs, plan.backbone, plan.image_size)
    else:
        plan = make_plan(cfg, budget_minutes=float(cfg.budget_minutes), n_train=len(ds.train),
                         n_monitor=_n_monitor(ds, cfg), device=device, seed=seed, candidates=cands,
                         fixed_epochs=cfg.epochs, previous=previous)
        run.write_json(runfiles.BUDGET, {"request": request, "plan": plan.to_dict()})
        LOG.info("pre-training budget: %s; recorded in %s", plan.reason, run / runfiles.BUDGET)
    fill = {"backbone": plan.backbone, "image_size": plan.image_size, "width": cfg.width or plan.width,
            "epochs": cfg.epochs if cfg.epochs is not None else plan.epochs}
    fill["warmup_epochs"] = cfg.warmup_epochs if cfg.warmup_epochs is not None else default_warmup(fill["epochs"])
    fill["knn_every"] = cfg.knn_every if cfg.knn_every is not None else plan.knn_every
    return cfg.replace(**fill), plan


def _record_cache(run: RunDir, cache: image_cache.ImageCache, split: str) -> None:
    """Note in RUN/image_cache.json which cache holds the `split` rows of the run's manifest (in order)."""
    rec = run.read_json(runfiles.IMAGE_CACHE, {}, recompute=True) or {}
    if not isinstance(rec.get("caches"), dict):
        rec["caches"] = {}
    rec.setdefault("caches", {})[f"{split}@{cache.size}"] = {
        "path": str(Path(cache.path).resolve()), "split": split, "size": cache.size, "ids": cache.meta["ids"],
        "n": len(cache)}
    run.write_json(runfiles.IMAGE_CACHE, rec)


def _split_data(run: RunDir, ds: Dataset, split: str, cfg: SSLConfig, size: int, device: torch.device,
                problems: ProblemReport | None):
    """(batches, usable mask, labels, host pixels or None) of `split` at `size` px; Nones when it has no rows.

    The host pixels are the (N, size, size, 3) uint8 images (the cache's memory map, or the decoded array); None
    when streaming (the cache turned off and the images too large to keep)."""
    rows = ds.split(split)
    if len(rows) == 0:
        return None, None, None, None
    refs = rows["image_ref"].to_numpy()
    labels = rows["label"].to_numpy()
    nbytes = len(rows) * size * size * 3
    limit_gb = cfg.resident_max_gb if device.type == "cuda" else min(cfg.resident_max_gb, 8.0)   # host RAM on a CPU
    fits = cfg.resident == "on" or (cfg.resident == "auto" and nbytes <= limit_gb * 2**30)
    use_cache = cfg.cache == "on" or (cfg.cache == "auto" and image_cache.cacheable(ds.images))
    if use_cache and image_cache.cacheable(ds.images):
        folder = image_cache.default_dir(run.path, cfg.cache_dir)
        cuda = device.type == "cuda"
        cache, usable = image_cache.build(
            ds.images, refs, size, folder, sample_ids=rows["sample_id"].astype(str).tolist(),
            sources=rows["source"].astype(str).tolist(),
            pins=rows["pin"].astype(str).tolist() if "pin" in rows.columns else None, problems=problems,
            decoder="torchvision" if cuda else "pil", device=str(device))
        _record_cache(run, cache, split)
        if fits:
            return ResidentBatches(cache.pixels, device), usable, labels, cache.pixels
        LOG.info("%s: %d images of %d px exceed the resident budget (%.1f GB); reading batches from the cache",
                 split, len(rows), size, cfg.resident_max_gb)
        return CachedBatches(cache.pixels, device), usable, labels, cache.pixels
    if fits or not image_cache.cacheable(ds.images):
        pixels, usable = decode_all(ds.images, refs, size, sample_ids=rows["sample_id"].tolist(),
                                    sources=rows["source"].tolist(), problems=problems)
        return ResidentBatches(pixels, device), usable, labels, pixels
    LOG.info("%s: %d images of %d px, cache off and too large to keep resident; decoding every epoch with %d workers",
             split, len(rows), size, cfg.num_workers)
    return (StreamingBatches(ds.images, refs, size, device, cfg.num_workers), np.ones(len(rows), bool), labels,
            None)


def _record_problems(run: RunDir, problems: ProblemReport) -> None:
    if not problems.problems:
        return
    old = run.read_parquet(runfiles.PROBLEMS) if run.exists(runfiles.PROBLEMS) else pd.DataFrame()
    new = pd.concat([old, problems.to_frame()], ignore_index=True).drop_duplicates()
    run.write_parquet(runfiles.PROBLEMS, new)


def _inputs(ds: Dataset, cfg: SSLConfig, seed: int) -> dict:
    out = {"manifest": manifest_fingerprint(ds.manifest), "ssl": cfg.training_fingerprint_fields(),
           "epochs": cfg.epochs, "seed": seed}
    if cfg.weights is not None:
        out["weights_file"] = file_fingerprint(checkpoint_path(cfg.weights))
    return out


def _embeddings_option(run: RunDir, ds: Dataset) -> str | None:
    conf = run.read_json(runfiles.CONFIG, {}) or {}
    dataset = conf.get("dataset")
    return dataset.get("embeddings") if isinstance(dataset, dict) else None


def _continue_if_partial(run: RunDir) -> None:
    """A pre-training stopped by the wall-clock cap is not finished: forget its stage record so it continues."""
    hist = run.read_json(runfiles.SSL_HISTORY, recompute=True)
    record = run.path / "stages" / "pretrain.json"
    if hist and hist.get("partial") and record.exists():
        LOG.info("pre-training stopped at epoch %s of %s last time (ssl.max_minutes); continuing it",
                 hist.get("epochs_done"), hist.get("epochs"))
        record.unlink()


def pretrain_stage(run: RunDir, ds: Dataset, cfg: SSLConfig | dict | None = None, *, seed: int) -> SSLConfig | None:
    """Train the SSL encoder unless RUN/checkpoints/backbone.pt is up to date; return the resolved config (None
    when embeddings were supplied)."""
    if _embeddings_option(run, ds):
        LOG.info("pretrain: embeddings were supplied (--embeddings); nothing to train")
        return None
    requested = cfg if isinstance(cfg, SSLConfig) else SSLConfig.from_dict(cfg or {})
    device = select_device(requested.device)
    cfg, plan = plan_config(run, ds, requested, seed=seed, device=device)
    info = dist_info(device)
    native = image_size_of(ds.images, ds.train["image_ref"].to_numpy())
    if device.type == "cpu" and native > 16 and cfg.weights is None:
        what = (f"{cfg.backbone} features at {cfg.image_size} px, fitted (no epochs)" if cfg.backbone in FITTED
                else f"{cfg.backbone} at {cfg.image_size} px for {cfg.epochs} epochs")
        LOG.warning("representations on the CPU: %s%s. %s", what,
                    f" (chosen for a {plan.budget_minutes:g}-minute budget)" if plan is not None else "", CPU_QUALITY_NOTE)
    if cfg.weights is not None:   # a file that does not fit fails now, before any image is decoded
        build_backbone(cfg.backbone, cfg.image_size, cfg.width, weights=cfg.weights)
    _continue_if_partial(run)

    def _train_data(size: int, problems: ProblemReport) -> tuple[TrainData, np.ndarray | None]:
        batches, usable, labels, pixels = _split_data(run, ds, "train", cfg, size, device, problems)
        if batches is None:
            raise ValueError("the dataset has no training rows to pre-train on")
        test_b, _, test_labels, _ = _split_data(run, ds, "test", cfg, size, device, problems)
        return TrainData(batches, len(usable), size, usable, labels, ds.n_classes, test_b, test_labels), pixels

    def fit() -> None:
        problems = ProblemReport(on_bad=ds.problems.on_bad)
        size = int(cfg.image_size)
        data, pixels = _train_data(size, problems)
        if pixels is None:
            raise ValueError(f"{cfg.backbone} is fitted on decoded images; turn the image cache on (ssl.cache)")
        t0 = time.perf_counter()
        backbone, bb = build_backbone(cfg.backbone, size, cfg.width)
        backbone.fit(pixels, np.flatnonzero(data.usable), seed=seed)
        fit_s = time.perf_counter() - t0
        backbone = backbone.to(device)
        rec = normalised_recipe(cfg.method, size, bb)
        t1 = time.perf_counter()
        knn = knn_monitor(backbone, data, rec, cfg, device, seed=seed)
        history = [{"epoch": 0, "fit_s": round(fit_s, 3), "knn_acc": knn, "knn_s": round(time.perf_counter() - t1, 3)}]
        LOG.info("fitted %s (%d-d features) on %d images in %.1f s; kNN monitor %s", bb.name, bb.dim,
                 int(data.usable.sum()), fit_s, f"{knn:.4f}" if knn is not None else "n/a")
        save_backbone(run / runfiles.ENCODER, backbone, name=bb.name, width=cfg.width, feat_dim=bb.dim, image_size=size,
                      method=cfg.method, rec=rec, epochs=0)
        run.write_json(runfiles.SSL_HISTORY, {"config": cfg.to_dict(), "seed": seed, "mode": f"{bb.name} fitted (no epochs)",
                                 "backbone": bb.name, "image_size": size, "epochs": 0, "epochs_done": 0,
                                 "partial": False, "history": history, "best_knn": knn, "final_knn": knn,
                                 "seconds": time.perf_counter() - t0, "weights": None,
                                 "budget": plan.to_dict() if plan is not None else None})
        _record_problems(run, problems)

    def as_is() -> None:
        backbone, bb = build_backbone(cfg.backbone, cfg.image_size, cfg.width, weights=cfg.weights)
        rec = normalised_recipe(cfg.method, cfg.image_size, bb)
        save_backbone(run / runfiles.ENCODER, backbone, name=bb.name, width=cfg.width, feat_dim=bb.dim, image_size=cfg.image_size,
                      method=cfg.method, rec=rec, weights=cfg.weights, epochs=0)
        run.write_json(runfiles.SSL_HISTORY, {"config": cfg.to_dict(), "seed": seed, "mode": "weights as they are (ssl.epochs = 0)",
                                 "weights": cfg.weights, "backbone": bb.name, "image_size": cfg.image_size,
                                 "epochs": 0, "epochs_done": 0, "partial": False, "history": [],
                                 "best_knn": None, "final_knn": None, "seconds": 0.0, "budget": None})
        LOG.info("encoder: %s with the weights of %s as they are, %d px, %d-d features", bb.name, cfg.weights,
                 cfg.image_size, bb.dim)

    def train() -> None:
        problems = ProblemReport(on_bad=ds.problems.on_bad)
        size = int(cfg.image_size)
        data, _ = _train_data(size, problems)
        batches = data.batches
        res = pretrain(data, cfg, run / "checkpoints", device, seed=seed, info=info)
        if isinstance(batches, StreamingBatches):
            for pos, why in sorted(batches.failures.items()):
                row = ds.train.iloc[pos]
                problems.add(row["sample_id"], row["source"], "unreadable_image", why)
        if info.is_main:
            rec = res.recipe
            save_backbone(run / runfiles.ENCODER, res.method.backbone, name=res.backbone_name, width=cfg.width,
                          feat_dim=res.method.feat_dim, image_size=size, method=cfg.method, rec=rec,
                          weights=cfg.weights, epochs=res.epochs_done)
            minutes = res.seconds / 60
            if plan is not None and minutes > 1.5 * plan.budget_minutes:
                LOG.warning("pre-training took %.1f min for a %g-minute budget (the machine was slower than when the "
                            "budget was planned); the plan is kept so results stay reproducible", minutes,
                            plan.budget_minutes)
            run.write_json(runfiles.SSL_HISTORY, {
                "config": cfg.to_dict(), "seed": seed, "backbone": res.backbone_name, "image_size": size,
                "epochs": cfg.epochs, "epochs_done": res.epochs_done, "partial": res.partial,
                "stopped_by": "max_minutes" if res.partial else None, "history": res.history,
                "best_knn": res.best_knn, "final_knn": res.final_knn, "seconds": res.seconds,
                "resumed_from": res.resumed_from, "weights": cfg.weights,
                "budget": plan.to_dict() if plan is not None else None})
            _record_problems(run, problems)

    work = fit if cfg.backbone in FITTED else as_is if cfg.epochs == 0 else train
    run.run_stage("pretrain", work, inputs=_inputs(ds, cfg, seed), outputs=[runfiles.ENCODER, runfiles.SSL_HISTORY])
    return cfg


def train_ids(ds: Dataset) -> str:
    """The ids digest of the training rows, in the order embeddings.npy holds them (recorded with the embed stage)."""
    return image_cache.ids_digest(ds.train["sample_id"].astype(str).tolist())


def embed_stage(run: RunDir, ds: Dataset, cfg: SSLConfig | dict | None = None, *, seed: int) -> np.ndarray:
    """Write (or reuse) RUN/embeddings.npy (N_train x d float16) and return it. `cfg`: the config
    `pretrain_stage` returned (pre-training runs first if `cfg` is not resolved yet)."""
    n_train = len(ds.train)
    supplied = _embeddings_option(run, ds)
    if supplied:
        from curator.embeddings import load_embeddings_file

        def load() -> None:
            run.write_npy(runfiles.EMBEDDINGS, load_embeddings_file(supplied, n_train, np.float16))

        run.run_stage("embed", load, inputs={"file": supplied, "content": file_fingerprint(supplied),
                                             "manifest": manifest_fingerprint(ds.manifest)}, outputs=[runfiles.EMBEDDINGS],
                      ids=train_ids(ds))
        return run.read_npy(runfiles.EMBEDDINGS)

    if not (isinstance(cfg, SSLConfig) and cfg.is_resolved):
        cfg = pretrain_stage(run, ds, cfg, seed=seed)
    device = select_device(cfg.device)
    info = dist_info(device)
    has_test = len(ds.split("test")) > 0
    outputs = [runfiles.EMBEDDINGS] + ([runfiles.EMBEDDINGS_TEST] if has_test else [])

    def work() -> None:
        backbone, meta = load_backbone(run / runfiles.ENCODER, device)
        size = int(meta["image_size"])
        cl = uses_channels_last(cfg, device, meta["backbone"])
        if cl:
            backbone = backbone.to(memory_format=torch.channels_last)
        problems = ProblemReport(on_bad=ds.problems.on_bad)
        for split, name in (("train", runfiles.EMBEDDINGS), ("test", runfiles.EMBEDDINGS_TEST)):
            batches, usable, _, _ = _split_data(run, ds, split, cfg, size, device, problems)
            if batches is None:
                continue
            plain = embed_rows(backbone, batches, len(usable), meta["recipe"], size, device, info=info, usable=usable,
                               amp=cfg.amp, channels_last=cl, batch_size=cfg.embed_batch_size)
            if info.is_main:
                run.write_npy(name, plain)
        if info.is_main:
            _record_problems(run, problems)

    run.run_stage("embed", work, inputs=_inputs(ds, cfg, seed), outputs=outputs, input_files=[runfiles.ENCODER],
                  ids=train_ids(ds))
    return run.read_npy(runfiles.EMBEDDINGS)
