"""Stages `pretrain` and `embed` (SPEC §2, §4; contract: RUN/checkpoints/, RUN/embeddings.npy).

- `pretrain_stage(run, ds, cfg)`: self-supervised training on the training rows' images (read
  through the dataset's `ImageSource`), checkpoints in RUN/checkpoints/ (``last.pt`` every epoch,
  resumable; ``backbone.pt`` at the end); skipped when up to date.
- `embed_stage(run, ds, cfg) -> (N_train, d) float16`: RUN/embeddings.npy (training rows in
  manifest order) and RUN/embeddings_test.npy (test rows, when present); with
  ``DatasetOptions.embeddings`` (RUN/config.json dataset.embeddings) the file is loaded instead and
  nothing is trained. Skipped when up to date; the arrays are then read back from the run.

Images that cannot be decoded are added to RUN/problems.parquet (by sample id and reason).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curator.data.manifest import Dataset, manifest_fingerprint
from curator.data.problems import ProblemReport
from curator.device import select_device
from curator.rundir import RunDir
from curator.ssl.config import SSLConfig, recipe_for
from curator.ssl.data import ResidentBatches, StreamingBatches, decode_all, image_size_of
from curator.ssl.distributed import dist_info
from curator.ssl.embed import embed_rows, load_backbone, save_backbone
from curator.ssl.train import TrainData, pretrain

LOG = logging.getLogger(__name__)
CKPT = "checkpoints/backbone.pt"


def resolve_config(ds: Dataset, cfg: SSLConfig | dict | None = None, overrides: dict | None = None) -> SSLConfig:
    """The SSL settings for `ds`: the default recipe for its image size, then explicit values.

    `cfg` may be a dict of explicitly chosen values (a recipe's ``[ssl]`` section, ``--set ssl.*``),
    or an `SSLConfig` — one returned by this function is final and returned unchanged; for any
    other, its non-default fields count as explicit. `overrides` are applied last.
    """
    if isinstance(cfg, SSLConfig) and getattr(cfg, "_resolved", False) and not overrides:
        return cfg
    rows = ds.train
    size = image_size_of(ds.images, rows["image_ref"].to_numpy())
    values = recipe_for(size, len(rows))
    if isinstance(cfg, dict):
        values.update(cfg)
    elif cfg is not None:
        default = SSLConfig().to_dict()
        values.update({k: v for k, v in cfg.to_dict().items() if v != default[k]})
    values.update(overrides or {})
    out = SSLConfig.from_dict(values)
    out._resolved = True  # not a dataclass field: marks a config that needs no further resolution
    return out


def _split_data(ds: Dataset, split: str, cfg: SSLConfig, device, problems: ProblemReport | None):
    rows = ds.split(split)
    refs = rows["image_ref"].to_numpy()
    if len(rows) == 0:
        return None, 0, None, None
    size = cfg.image_size or image_size_of(ds.images, refs)
    nbytes = len(rows) * size * size * 3
    resident = cfg.resident == "on" or (cfg.resident == "auto" and nbytes <= cfg.resident_max_gb * 2**30)
    if resident:
        pixels, usable = decode_all(ds.images, refs, size, sample_ids=rows["sample_id"].tolist(),
                                    sources=rows["source"].tolist(), problems=problems)
        return ResidentBatches(pixels, device), size, usable, rows["label"].to_numpy()
    LOG.info("%s: %d images of %d px do not fit the resident budget; streaming with %d workers", split, len(rows),
             size, cfg.num_workers)
    return StreamingBatches(ds.images, refs, size, device, cfg.num_workers), size, np.ones(len(rows), bool), \
        rows["label"].to_numpy()


def _record_problems(run: RunDir, problems: ProblemReport) -> None:
    if not problems.problems:
        return
    old = run.read_parquet("problems.parquet") if run.exists("problems.parquet") else pd.DataFrame()
    new = pd.concat([old, problems.to_frame()], ignore_index=True).drop_duplicates()
    run.write_parquet("problems.parquet", new)


def _inputs(ds: Dataset, cfg: SSLConfig) -> dict:
    return {"manifest": manifest_fingerprint(ds.manifest), "ssl": cfg.training_fingerprint_fields()}


def pretrain_stage(run: RunDir, ds: Dataset, cfg: SSLConfig | dict | None = None):
    """Train the SSL encoder unless RUN/checkpoints/backbone.pt is up to date; return the PretrainResult or None."""
    cfg = resolve_config(ds, cfg)
    device = select_device(cfg.device)
    info = dist_info(device)
    out: dict = {}

    def work() -> None:
        problems = ProblemReport(on_bad=ds.problems.on_bad)
        batches, size, usable, labels = _split_data(ds, "train", cfg, device, problems)
        if batches is None:
            raise ValueError("the dataset has no training rows to pre-train on")
        test_b, _, _, test_labels = _split_data(ds, "test", cfg.__class__(**{**cfg.to_dict(), "image_size": size}),
                                                device, problems)
        data = TrainData(batches, len(usable), size, usable, labels, ds.n_classes, test_b, test_labels)
        res = pretrain(data, cfg, run / "checkpoints", device, info=info)
        if isinstance(batches, StreamingBatches):
            for pos, why in sorted(batches.failures.items()):
                row = ds.train.iloc[pos]
                problems.add(row["sample_id"], row["source"], "unreadable_image", why)
        if info.is_main:
            save_backbone(run / CKPT, res.method.backbone, name=res.backbone_name, width=cfg.width,
                          feat_dim=res.method.feat_dim, image_size=size, method=cfg.method, rec=res.recipe)
            run.write_json("checkpoints/history.json", {"config": cfg.to_dict(), "history": res.history,
                                                        "best_knn": res.best_knn, "final_knn": res.final_knn,
                                                        "seconds": res.seconds, "resumed_from": res.resumed_from})
            _record_problems(run, problems)
        out["result"] = res

    if _embeddings_option(run, ds):
        LOG.info("pretrain: embeddings were supplied (--embeddings); nothing to train")
        return None
    run.run_stage("pretrain", work, inputs=_inputs(ds, cfg), outputs=[CKPT])
    return out.get("result")


def _embeddings_option(run: RunDir, ds: Dataset) -> str | None:
    conf = run.read_json("config.json", {}) or {}
    return (conf.get("dataset") or {}).get("embeddings")


def embed_stage(run: RunDir, ds: Dataset, cfg: SSLConfig | dict | None = None) -> np.ndarray:
    """Write (or reuse) RUN/embeddings.npy (N_train x d float16) and return it."""
    n_train = len(ds.train)
    supplied = _embeddings_option(run, ds)
    if supplied:
        from curator.embeddings import load_embeddings_file
        from curator.rundir import file_fingerprint

        def load() -> None:
            run.write_npy("embeddings.npy", load_embeddings_file(supplied, n_train).astype(np.float16))

        run.run_stage("embed", load, inputs={"file": supplied, "content": file_fingerprint(supplied),
                                             "manifest": manifest_fingerprint(ds.manifest)}, outputs=["embeddings.npy"])
        return run.read_npy("embeddings.npy")

    cfg = resolve_config(ds, cfg)
    pretrain_stage(run, ds, cfg)
    device = select_device(cfg.device)
    info = dist_info(device)
    has_test = len(ds.split("test")) > 0
    outputs = ["embeddings.npy"] + (["embeddings_test.npy"] if has_test else [])
    if cfg.embed_views > 0 and cfg.embed_views != 1:
        outputs.append("embeddings_views.npy")

    def work() -> None:
        backbone, meta = load_backbone(run / CKPT, device)
        problems = ProblemReport(on_bad=ds.problems.on_bad)
        size_cfg = SSLConfig(**{**cfg.to_dict(), "image_size": meta["image_size"]})
        for split, name in (("train", "embeddings.npy"), ("test", "embeddings_test.npy")):
            batches, _, usable, _ = _split_data(ds, split, size_cfg, device, problems)
            if batches is None:
                continue
            views = cfg.embed_views if (split == "train" and cfg.embed_views > 1) else 0
            plain, aug = embed_rows(backbone, batches, len(usable), meta["recipe"], meta["image_size"], device,
                                    info=info, usable=usable, amp=cfg.amp, channels_last=cfg.channels_last,
                                    batch_size=cfg.embed_batch_size, views=views, seed=cfg.seed)
            if info.is_main:
                run.write_npy(name, plain)
                if aug is not None:
                    run.write_npy("embeddings_views.npy", aug)
        if info.is_main:
            _record_problems(run, problems)

    run.run_stage("embed", work, inputs=_inputs(ds, cfg), outputs=outputs, input_files=[CKPT])
    return run.read_npy("embeddings.npy")
