"""Stages `pretrain` and `embed` (ARCHITECTURE.md, docs/ssl.md; contract: RUN/checkpoints/, RUN/embeddings.npy).

What pre-training will do — the configuration resolved against the data, the schedule rule and the budget plan — is
decided by `curator.ssl.resolve`; this module runs it:

- `pretrain_stage(run, ds, cfg, seed=) -> SSLConfig`: self-supervised training on the training rows' images
  (decoded once into the image cache, `curator.data.cache`), checkpoints in RUN/checkpoints/ (``last.pt``
  every epoch; ``backbone.pt`` and ``history.json`` at the end); skipped when up to date. A run stopped by
  the wall-clock cap ``ssl.max_minutes`` is recorded as partial (history.json) and the next run continues
  it; a run asked for more epochs continues from ``last.pt``. ``ssl.epochs = 0`` (with ``--weights``, a file or
  a library's weights name) writes the given weights as the encoder. The representation chosen (backbone, weights,
  where they came from) is recorded in RUN/provenance.json. Returns the resolved config the embed stage uses.
- `embed_stage(run, ds, cfg, seed=) -> (N_train, d) float16`: RUN/embeddings.npy (training rows in
  manifest order) and RUN/embeddings_test.npy (test rows, when present); with
  ``DatasetOptions.embeddings`` (RUN/config.json dataset.embeddings) the file is loaded instead and
  nothing is trained. Skipped when up to date (same model, same weights, same images); the arrays are then read
  back from the run. The embeddings of a pretrained encoder taken as it is are also kept beside the image cache, per
  images + model + weights, so runs sharing a cache folder embed once.

Images that cannot be decoded are added to RUN/problems.parquet (by sample id and reason).
"""
from __future__ import annotations

import dataclasses
import logging
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
from curator.rundir import RunDir, file_fingerprint, fingerprint, write_npy_atomic
from curator.ssl import pretrained
from curator.ssl.backbones import FITTED, build_backbone
from curator.ssl.config import SSLConfig
from curator.ssl.data import CachedBatches, ResidentBatches, StreamingBatches, decode_all, image_size_of
from curator.ssl.distributed import dist_info
from curator.ssl.embed import embed_rows, load_backbone, save_backbone
from curator.ssl.resolve import plan_config
from curator.ssl.train import TrainData, knn_monitor, normalised_recipe, pretrain, uses_channels_last

LOG = logging.getLogger(__name__)

CPU_QUALITY_NOTE = ("CPU pre-training gives rough embeddings (on 10,000 CIFAR-10 images with 10% of the labels wrong, the "
                    "default 5-minute budget fitted patch k-means features: kNN monitor 0.48 against the given labels, "
                    "label-error AUROC 0.90; ResNet-18 trained on a GPU reaches kNN ~0.75 on CIFAR-10); for better ones: "
                    "a GPU, a pretrained backbone (--backbone torchvision:resnet18 --weights imagenet: downloaded once "
                    "into the torch cache; or --weights FILE), or --embeddings FILE (bring your own)")


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
    weights = pretrained.fingerprint(cfg.backbone, cfg.weights)   # embeddings are kept per model + weights
    fields = cfg.training_fingerprint_fields()
    if "weights_named" in weights:   # imagenet and IMAGENET1K_V1 may name the same weights: the library's identity counts
        fields.pop("weights", None)
    return {"manifest": manifest_fingerprint(ds.manifest), "ssl": fields, "epochs": cfg.epochs, "seed": seed} | weights


def _record_representation(run: RunDir, cfg: SSLConfig) -> None:
    """RUN/provenance.json ``representation``: the encoder and where its weights came from."""
    named, path = pretrained.source(cfg.backbone, cfg.weights)
    rep = {"backbone": cfg.backbone, "image_size": cfg.image_size, "weights": cfg.weights,
           "weights_source": None if cfg.weights is None else "library cache" if named is not None else "file",
           "weights_file": path}
    if named is not None:
        rep["weights_named"] = named.tag
    prov = run.read_json(runfiles.PROVENANCE, {}) or {}
    if prov.get("representation") != rep:
        run.write_json(runfiles.PROVENANCE, prov | {"representation": rep})


def _embeddings_option(run: RunDir, ds: Dataset) -> str | None:
    conf = run.read_json(runfiles.CONFIG, {}) or {}
    dataset = conf.get("dataset")
    return dataset.get("embeddings") if isinstance(dataset, dict) else None


def _continue_if_partial(run: RunDir) -> None:
    """A pre-training stopped by the wall-clock cap is not finished: forget its stage record so it continues."""
    hist = run.read_json(runfiles.SSL_HISTORY, recompute=True)
    if hist and hist.get("partial") and run.forget_stage("pretrain"):
        LOG.info("pre-training stopped at epoch %s of %s last time (ssl.max_minutes); continuing it",
                 hist.get("epochs_done"), hist.get("epochs"))


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
    # a weights file that does not fit fails now, before any image is decoded; the loaded encoder is the one kept
    loaded = build_backbone(cfg.backbone, cfg.image_size, cfg.width, weights=cfg.weights) if cfg.weights is not None \
        else None
    _continue_if_partial(run)
    _record_representation(run, cfg)

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
        backbone, bb = loaded or build_backbone(cfg.backbone, cfg.image_size, cfg.width, weights=cfg.weights)
        rec = normalised_recipe(cfg.method, cfg.image_size, bb)
        save_backbone(run / runfiles.ENCODER, backbone, name=bb.name, width=cfg.width, feat_dim=bb.dim, image_size=cfg.image_size,
                      method=cfg.method, rec=rec, weights=cfg.weights, epochs=0)
        run.write_json(runfiles.SSL_HISTORY, {"config": cfg.to_dict(), "seed": seed, "mode": "weights as they are (ssl.epochs = 0)",
                                 "weights": cfg.weights, "backbone": bb.name, "image_size": cfg.image_size,
                                 "epochs": 0, "epochs_done": 0, "partial": False, "history": [],
                                 "best_knn": None, "final_knn": None, "seconds": 0.0, "budget": None})
        LOG.info("encoder: %s with the weights %s as they are, %d px, %d-d features", bb.name, cfg.weights,
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


def _shared_embeddings(run: RunDir, cfg: SSLConfig, meta: dict, split: str, size: int, device: torch.device) -> Path | None:
    """Where the embeddings of a pretrained encoder taken as it is (no epochs) are kept beside the image cache, keyed by
    the cached images, the model, its weights and how they are applied, so every run sharing the cache (``ssl.cache_dir``
    / ``$CURATOR_CACHE``) reuses them; None for a trained encoder or images without a cache."""
    if cfg.epochs != 0 or cfg.weights is None:
        return None
    rec = ((run.read_json(runfiles.IMAGE_CACHE, {}) or {}).get("caches") or {}).get(f"{split}@{size}")
    if not rec:
        return None
    images = Path(rec["path"])
    key = fingerprint({"images": images.name, "n": rec["n"], "backbone": meta["backbone"], "size": size,
                       "weights": pretrained.fingerprint(cfg.backbone, cfg.weights), "recipe": dataclasses.asdict(
                           meta["recipe"]), "device": device.type, "amp": bool(cfg.amp and device.type == "cuda")})
    return images.parent / f"embeddings-{key[:16]}.npy"


def _read_shared(path: Path | None, n: int) -> np.ndarray | None:
    """The shared embeddings at `path` when they are readable and have `n` rows (else None: they are computed again)."""
    if path is None or not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        LOG.warning("embeddings cache %s cannot be read (%s); computing them again", path, exc)
        return None
    if arr.ndim != 2 or arr.shape[0] != n or arr.dtype != np.float16:
        LOG.warning("embeddings cache %s holds %s %s, not %d rows of float16; computing them again", path, arr.shape,
                    arr.dtype, n)
        return None
    LOG.info("embeddings: reusing %s (same images, model and weights)", path)
    return arr


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
            shared = _shared_embeddings(run, cfg, meta, split, size, device)
            plain = _read_shared(shared, len(usable))
            if plain is None:
                plain = embed_rows(backbone, batches, len(usable), meta["recipe"], size, device, info=info,
                                   usable=usable, amp=cfg.amp, channels_last=cl, batch_size=cfg.embed_batch_size,
                                   progress=f"embed {split} ({meta['backbone']})" if cfg.progress else None)
                if shared is not None and info.is_main:
                    write_npy_atomic(shared, plain)
            if info.is_main:
                run.write_npy(name, plain)
        if info.is_main:
            _record_problems(run, problems)

    run.run_stage("embed", work, inputs=_inputs(ds, cfg, seed), outputs=outputs, input_files=[runfiles.ENCODER],
                  ids=train_ids(ds))
    return run.read_npy(runfiles.EMBEDDINGS)
