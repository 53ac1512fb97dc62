"""The SSL training loop (docs/ssl.md; paper 000 §3.2).

- lr = base_lr x batch_size / 256, linear warm-up (per step) for `warmup_epochs`, then cosine to 0;
- views augmented on the device in batch (`curator.ssl.augment`); bf16 autocast, channels_last and
  `torch.compile` on CUDA (compile guarded: a failure falls back to eager with a warning);
- kNN monitor (k = 200, cosine, T = 0.1) every `knn_every` epochs and at the end;
- a checkpoint (model, optimizer, epoch, history, RNG states — tensors, numbers, strings, lists and
  dicts only, loaded with ``torch.load(weights_only=True)``) written atomically after every
  epoch by rank 0; a rerun with the same config resumes from it. The data order and every
  augmentation draw come from generators seeded by (seed, epoch, rank), so an interrupted-then-
  resumed run reproduces an uninterrupted one. The number of epochs is not part of the checkpoint's
  fingerprint: a run asked for more epochs than its checkpoint holds continues from it (the learning
  rate follows the new, longer schedule from there; each epoch's record says which schedule it was
  trained under), and a run stopped by the wall-clock cap `max_minutes` is `partial` and continues the
  next time;
- the seed is the run's (`pretrain(..., seed=)`), not a field of the config;
- DDP under torchrun: each rank trains on its shard with batch_size / world images per step;
- opt-in speed options (SSLConfig): `fuse_views` (one backbone call for all views, views augmented
  in one pass), `fused_optimizer`, `compile_mode`, `compile_augment`. The step loop never reads a
  GPU value on the host (no .item(), no branching on tensors; the loss is summed on the device and
  read once per epoch), so the host can run ahead of the GPU.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from curator.rundir import atomic_path, fingerprint
from curator.ssl.augment import AugmentRecipe, Augmenter
from curator.ssl.backbones import BackboneInfo, build_backbone
from curator.ssl.config import SSLConfig
from curator.ssl.data import BatchSource
from curator.ssl.distributed import DistInfo, all_reduce_mean, barrier, shard
from curator.ssl.embed import autocast, extract_features
from curator.ssl.knn_monitor import knn_accuracy
from curator.ssl.methods import METHODS, SSLMethod, recipe
from curator.ssl.pretrained import fingerprint as pretrained_fingerprint

LOG = logging.getLogger(__name__)


@dataclass
class TrainData:
    """What the loop trains on: row positions 0..n-1 of `batches`, and labels for the kNN monitor."""
    batches: BatchSource
    n: int
    image_size: int
    usable: np.ndarray                    # (n,) bool: rows to train on
    labels: np.ndarray | None = None      # (n,) int, -1 unknown; for the monitor only
    n_classes: int = 0
    test_batches: BatchSource | None = None
    test_labels: np.ndarray | None = None


@dataclass
class PretrainResult:
    method: SSLMethod
    recipe: AugmentRecipe
    backbone_name: str
    history: list[dict] = field(default_factory=list)
    epochs_done: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    partial: bool = False                 # stopped by the wall-clock cap before the schedule's last epoch
    info: BackboneInfo | None = None

    @property
    def best_knn(self) -> float | None:
        vals = [h["knn_acc"] for h in self.history if h.get("knn_acc") is not None]
        return max(vals) if vals else None

    @property
    def final_knn(self) -> float | None:
        vals = [h["knn_acc"] for h in self.history if h.get("knn_acc") is not None]
        return vals[-1] if vals else None


def build_method(cfg: SSLConfig, image_size: int, *, load_weights: bool = True) -> tuple[SSLMethod, AugmentRecipe, str]:
    """The SSL method around the configured backbone (with `cfg.weights` loaded), and its augmentation recipe,
    normalised with the backbone's own statistics where it has them (pretrained torchvision/timm models)."""
    method, rec, info = build_method_info(cfg, image_size, load_weights=load_weights)
    return method, rec, info.name


def build_method_info(cfg: SSLConfig, image_size: int, *, load_weights: bool = True
                      ) -> tuple[SSLMethod, AugmentRecipe, BackboneInfo]:
    backbone, info = build_backbone(cfg.backbone, image_size, cfg.width,
                                    weights=cfg.weights if load_weights else None)
    kw = {} if cfg.head_dim is None else {"head_dim": cfg.head_dim}
    return METHODS[cfg.method].build(backbone, info.dim, **kw), normalised_recipe(cfg.method, image_size, info), info


def normalised_recipe(method: str, image_size: int, info: BackboneInfo) -> AugmentRecipe:
    rec = recipe(method, image_size)
    if info.mean is not None and info.std is not None:
        rec = dataclasses.replace(rec, mean=tuple(info.mean), std=tuple(info.std))
    return rec


def peak_lr(cfg: SSLConfig) -> float:
    base = cfg.base_lr if cfg.base_lr is not None else METHODS[cfg.method].base_lr
    return base * cfg.batch_size / 256


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up then cosine decay to 0 (paper 000 §3.2)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def make_optimizer(method: nn.Module, cfg: SSLConfig) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) or Adam per the method; `cfg.fused_optimizer`: the fused (single-kernel)
    implementation where this torch/device supports it, else the multi-tensor (foreach) one."""
    spec = METHODS[cfg.method]
    wd = cfg.weight_decay if cfg.weight_decay is not None else spec.weight_decay
    params = [p for p in method.parameters() if p.requires_grad]
    cls = torch.optim.SGD if spec.optimizer == "sgd" else torch.optim.Adam
    kw = dict(lr=peak_lr(cfg), weight_decay=wd, **({"momentum": 0.9} if spec.optimizer == "sgd" else {}))
    if cfg.fused_optimizer:
        try:
            return cls(params, fused=True, **kw)   # raises on a device/dtype without fused kernels
        except (TypeError, RuntimeError) as exc:
            LOG.info("fused %s unavailable (%s); using foreach", cls.__name__, exc)
            return cls(params, foreach=True, **kw)
    return cls(params, **kw)


def _rng_state(device: torch.device) -> dict:
    """Every RNG state as tensors, ints, floats, strings and lists only, so the checkpoint loads with
    ``torch.load(weights_only=True)`` (numpy's and Python's states are tuples holding an ndarray)."""
    bit_generator, key, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    st = {"torch": torch.get_rng_state(),
          "numpy": {"bit_generator": str(bit_generator), "key": torch.from_numpy(np.asarray(key, np.int64)),
                    "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
          "python": {"version": int(version), "state": [int(v) for v in py_state], "gauss_next": gauss_next}}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def _set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state((n["bit_generator"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    py = st["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)


def load_checkpoint(path: Path, device: torch.device) -> dict | None:
    """The training checkpoint at `path`, loaded with ``weights_only=True`` (never unpickled freely);
    None, with a warning, if it cannot be loaded that way (damaged, crafted, or not written by curator)."""
    import pickle

    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        LOG.warning("checkpoint %s cannot be loaded safely (%s); training starts afresh", path, first)
        return None
    if not isinstance(ck, dict) or not {"model", "optimizer", "epoch", "history", "rng"} <= set(ck):
        LOG.warning("checkpoint %s is not a curator training checkpoint; training starts afresh", path)
        return None
    return ck


def uses_channels_last(cfg: SSLConfig, device: torch.device, backbone: str) -> bool:
    """channels_last on CUDA, and on the CPU for the small CNNs (measured ~1.7x faster there; not for ResNets)."""
    return cfg.channels_last and (device.type == "cuda" or backbone in ("tiny_cnn", "small_cnn"))


def knn_monitor(backbone: nn.Module, data: TrainData, rec: AugmentRecipe, cfg: SSLConfig, device: torch.device, *,
                seed: int, channels_last: bool = False) -> float | None:
    """The kNN monitor of any encoder (e.g. a fitted one): as during training, on the test split or held-out rows."""
    return _monitor(backbone, data, rec, cfg, device, _holdout_split(data, cfg, seed), channels_last)


def _monitor(backbone: nn.Module, data: TrainData, rec: AugmentRecipe, cfg: SSLConfig, device: torch.device,
             split: tuple[np.ndarray, np.ndarray] | None, channels_last: bool = False) -> float | None:
    """kNN accuracy on the test split (bank: training rows) or on held-out training rows."""
    if data.labels is None or data.n_classes < 2:
        return None
    kw = dict(amp=cfg.amp, channels_last=channels_last, batch_size=cfg.embed_batch_size)
    if data.test_batches is not None and data.test_labels is not None:
        bank_pos = np.flatnonzero(data.usable & (data.labels >= 0))[: cfg.knn_max_bank]
        q = extract_features(backbone, data.test_batches, np.arange(len(data.test_labels)), rec,
                             data.image_size, device, **kw)
        q_lab = data.test_labels
    else:
        if split is None:
            return None
        bank_pos, q_pos = split
        q = extract_features(backbone, data.batches, q_pos, rec, data.image_size, device, **kw)
        q_lab = data.labels[q_pos]
    bank = extract_features(backbone, data.batches, bank_pos, rec, data.image_size, device, **kw)
    lab = lambda a: torch.as_tensor(np.asarray(a, np.int64), device=device)  # noqa: E731
    return knn_accuracy(q, lab(q_lab), bank, lab(data.labels[bank_pos]), data.n_classes, cfg.knn_k, cfg.knn_t)


def _holdout_split(data: TrainData, cfg: SSLConfig, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    if data.labels is None:
        return None
    pos = np.flatnonzero(data.usable & (data.labels >= 0))
    if len(pos) < 10:
        return None
    rng = np.random.default_rng(seed + 12345)
    pos = rng.permutation(pos)
    n_q = max(1, int(round(cfg.knn_holdout * len(pos))))
    return np.sort(pos[n_q:][: cfg.knn_max_bank]), np.sort(pos[:n_q])


LONG_RUN_WARNING_S = 30 * 60


def _warn_if_long(first_epoch_s: float, epochs_left: int, device: torch.device, max_minutes: float | None) -> None:
    """After the first epoch, say how long the rest will take when that is long (e.g. ResNet pre-training on a CPU)."""
    remaining = first_epoch_s * epochs_left
    if max_minutes is not None:
        remaining = min(remaining, max_minutes * 60)
    if remaining < LONG_RUN_WARNING_S:
        return
    hint = ("pre-training is meant for a GPU; on this CPU consider --budget MINUTES (curator picks what fits), "
            "--weights FILE (a pretrained backbone you have), --embeddings FILE (bring your own), "
            "or fewer epochs (--epochs N)"
            if device.type == "cpu" else "use --budget MINUTES to fit it into the time you have")
    LOG.warning("SSL pre-training: about %.1f h left at %.0f s/epoch on %s (%d epochs to go); %s",
                remaining / 3600, first_epoch_s, device.type, epochs_left, hint)


def checkpoint_fingerprint(cfg: SSLConfig, data: TrainData, seed: int, info: DistInfo) -> str:
    """What a checkpoint must match to be continued: everything that shapes training but the number of epochs."""
    desc = {"cfg": cfg.training_fingerprint_fields(), "n": data.n, "usable": int(data.usable.sum()),
            "size": data.image_size, "world": info.world, "seed": seed}
    desc.update(pretrained_fingerprint(cfg.backbone, cfg.weights))
    return fingerprint(desc)


def pretrain(data: TrainData, cfg: SSLConfig, ckpt_dir: Path, device: torch.device, *, seed: int,
             info: DistInfo = DistInfo(), on_epoch_end: Callable[[int, dict], None] | None = None,
             on_step: Callable[[int], None] | None = None) -> PretrainResult:
    """Train (or resume / continue training) the configured SSL method on `data`; return the trained method.

    `cfg` must be resolved (`SSLConfig.is_resolved`; `curator.ssl.resolve.resolve_config`). `on_step(global_step)`
    runs after every optimizer step (the benchmark's profiler hook)."""
    cfg.require_resolved()
    ckpt_dir = Path(ckpt_dir)
    torch.manual_seed(seed)
    method, rec, bb_info = build_method_info(cfg, data.image_size)
    bb_name = bb_info.name
    method = method.to(device)
    use_cl = uses_channels_last(cfg, device, bb_name)
    if use_cl:
        method = method.to(memory_format=torch.channels_last)
    if info.enabled and device.type == "cuda":
        method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
    opt = make_optimizer(method, cfg)
    fp = checkpoint_fingerprint(cfg, data, seed, info)
    result = PretrainResult(method, rec, bb_name, info=bb_info)
    start = 0
    last = ckpt_dir / "last.pt"
    ck = load_checkpoint(last, device) if last.exists() else None
    if ck is not None:
        if ck.get("fingerprint") != fp:
            LOG.warning("checkpoint %s was made with another config or data; starting afresh", last)
        elif int(ck["epoch"]) > cfg.epochs:
            LOG.warning("checkpoint %s holds %d epochs, more than the %d asked for; starting afresh", last,
                        int(ck["epoch"]), cfg.epochs)
        else:
            method.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            _set_rng_state(ck["rng"], device)
            start = result.resumed_from = int(ck["epoch"])
            result.history = list(ck["history"])
            was = int(ck.get("schedule_epochs", cfg.epochs))
            if start >= cfg.epochs:
                LOG.info("checkpoint %s already holds all %d epochs", last, cfg.epochs)
            elif was != cfg.epochs:
                LOG.info("continuing %s from %s at epoch %d: schedule extended from %d to %d epochs", cfg.method,
                         last, start, was, cfg.epochs)
            else:
                LOG.info("resuming %s from %s at epoch %d/%d", cfg.method, last, start, cfg.epochs)

    train_pos = np.flatnonzero(data.usable)
    per_rank = len(train_pos) // info.world
    local_bs = min(cfg.batch_size // info.world, per_rank)
    if local_bs < 2:
        raise ValueError(f"too few trainable samples ({len(train_pos)}) for SSL training on {info.world} rank(s)")
    steps = per_rank // local_bs
    total, warmup = cfg.epochs * steps, cfg.warmup_epochs * steps
    peak = peak_lr(cfg) * (local_bs * info.world) / cfg.batch_size
    model: nn.Module = method
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(method, device_ids=[device.index] if device.type == "cuda" else None)
    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda" and total >= 300)
    method.fuse_views = cfg.fuse_views
    mode = None if cfg.compile_mode in (None, "default") else cfg.compile_mode
    fwd = torch.compile(model, mode=mode) if use_compile else model
    mark_step = use_compile and mode is not None and "cudagraphs" not in mode and device.type == "cuda"
    aug = Augmenter(rec, data.image_size, compile=use_compile and cfg.compile_augment)
    split = _holdout_split(data, cfg, seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_start = time.perf_counter()
    if start < cfg.epochs:
        LOG.info("SSL %s: backbone %s, %d samples, %d px, %d epochs, %d steps/epoch x %d images (x%d ranks), lr %.4g, "
                 "compile=%s", cfg.method, bb_name, len(train_pos), data.image_size, cfg.epochs, steps, local_bs,
                 info.world, peak,
                 f"{use_compile} (mode {mode}, augment {use_compile and cfg.compile_augment}), fuse_views={cfg.fuse_views}, "
                 f"optimizer {type(opt).__name__} {'fused' if opt.defaults.get('fused') else 'foreach' if opt.defaults.get('foreach') else 'default'}")
    from tqdm import tqdm

    for epoch in range(start, cfg.epochs):
        perm = shard(np.random.default_rng([seed, epoch]).permutation(train_pos), info)
        idx_batches = [perm[s * local_bs:(s + 1) * local_bs] for s in range(steps)]
        g = torch.Generator(device=device)
        g.manual_seed(seed * 1_000_003 + epoch * 1009 + info.rank)
        model.train()
        loss_sum = torch.zeros((), device=device)
        t0 = time.perf_counter()
        bar = tqdm(total=steps, desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}", unit="step", leave=False,
                   file=sys.stderr, disable=not (cfg.progress and info.is_main) or None)
        for s, x in enumerate(data.batches.batches(idx_batches)):
            gstep = epoch * steps + s
            for group in opt.param_groups:
                group["lr"] = lr_at(gstep, total, warmup, peak)
            views = aug.views(x, g, method.n_views, fused=cfg.fuse_views)
            if use_cl:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            if mark_step:  # CUDA graphs (reduce-overhead / max-autotune): a new iteration begins
                torch.compiler.cudagraph_mark_step_begin()
            try:
                with autocast(device, cfg.amp):
                    loss = fwd(views)["loss"]
            except Exception as exc:  # torch.compile failures surface at the first call
                if fwd is model:
                    raise
                LOG.warning("torch.compile failed (%s: %s); continuing without it", type(exc).__name__, exc)
                fwd = model
                with autocast(device, cfg.amp):
                    loss = fwd(views)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            method.after_step((gstep + 1) / total)
            loss_sum += loss.detach()
            if on_step is not None:
                on_step(gstep)
            bar.update(1)
            if s % 10 == 0:
                bar.set_postfix(img_s=f"{(s + 1) * local_bs * info.world / (time.perf_counter() - t0):.0f}")
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_s = time.perf_counter() - t0
        loss_mean = float(all_reduce_mean(loss_sum / steps, info).item())
        if not math.isfinite(loss_mean):
            raise FloatingPointError(f"SSL loss became {loss_mean} in epoch {epoch + 1}; lower --lr or check the data")
        rec_e = {"epoch": epoch + 1, "of": cfg.epochs, "loss": loss_mean, "lr": lr_at(gstep, total, warmup, peak),
                 "epoch_s": round(epoch_s, 3), "images_per_s": round(steps * local_bs * info.world / epoch_s, 1)}
        due = epoch + 1 == cfg.epochs or (cfg.knn_every and (epoch + 1) % cfg.knn_every == 0)
        out_of_time = cfg.max_minutes is not None and time.perf_counter() - t_start > cfg.max_minutes * 60
        if (due or out_of_time) and info.is_main:
            t1 = time.perf_counter()
            rec_e["knn_acc"] = _monitor(method.backbone, data, rec, cfg, device, split, use_cl)
            rec_e["knn_s"] = round(time.perf_counter() - t1, 3)
        if device.type == "cuda":
            rec_e["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        result.history.append(rec_e)
        LOG.info("epoch %d/%d loss %.4f %.1f s %.0f img/s%s", epoch + 1, cfg.epochs, loss_mean, epoch_s,
                 rec_e["images_per_s"], f" kNN {rec_e['knn_acc']:.4f}" if rec_e.get("knn_acc") is not None else "")
        if epoch == start and info.is_main:
            _warn_if_long(epoch_s, cfg.epochs - epoch - 1, device, cfg.max_minutes)
        if info.is_main:
            with atomic_path(last) as tmp:
                torch.save({"model": method.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                            "schedule_epochs": cfg.epochs, "history": result.history, "rng": _rng_state(device),
                            "fingerprint": fp, "config": cfg.to_dict(), "seed": seed}, tmp)
        barrier(info)
        result.epochs_done = epoch + 1
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, rec_e)
        if out_of_time and epoch + 1 < cfg.epochs:
            LOG.warning("stopping after epoch %d of %d: past the %g-minute cap (ssl.max_minutes); the run is partial "
                        "and continues from checkpoints/last.pt the next time", epoch + 1, cfg.epochs, cfg.max_minutes)
            result.partial = True
            break
    result.epochs_done = max(result.epochs_done, start)
    result.seconds = time.perf_counter() - t_start
    return result
