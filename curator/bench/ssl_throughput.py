"""`curator bench ssl-throughput` (BENCHMARKS.md): SSL pre-training speed and quality on CIFAR-10.

Reads the CIFAR-10 JPEG archive (``cifar10_jpeg.npz``: train/test JPEG bytes + offsets + labels,
see ../shared/datasets/cifar10n/README.md), decodes it once through curator's `EncodedImages`
source, keeps the uint8 images resident on the device and trains each requested method with the
curator training loop. Reports images/s, epoch time (median, and the first epoch, which includes
torch.compile), peak GPU memory, the kNN monitor accuracy (k=200, cosine, T=0.1; bank = training
set, queries = test set) over epochs, and optionally saves the trained model's train/test
embeddings (float16, train split into chunks).

Speed experiments: `--fuse-views`, `--fused-optimizer`, `--compile-mode`, `--compile-augment` set the
opt-in SSLConfig speed options; `--variants base,fuse,fuse+fused_opt,...` trains the (first) method
once per variant for `--epochs` epochs and reports each one's median epoch time (an A/B in one
process); `--profile-steps N` runs N steps after `--profile-after` warm-up steps of every run under
`torch.profiler` and stores the top-25 ops table (by CUDA time, or CPU time on a CPU) in the JSON.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

NAME = "ssl-throughput"
HELP = "SSL pre-training throughput and kNN accuracy on CIFAR-10 (SimSiam/BYOL, ResNet-18 CIFAR stem)"
DEFAULT_NPZ = "../shared/datasets/cifar10n/cifar10_jpeg.npz"
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
VARIANT_TOKENS = {   # token -> SSLConfig overrides
    "base": {}, "fuse": {"fuse_views": True}, "fused_opt": {"fused_optimizer": True},
    "caug": {"compile_augment": True}, "eager": {"compile": "off"},
    "ro": {"compile_mode": "reduce-overhead"}, "ma": {"compile_mode": "max-autotune"},
    "manc": {"compile_mode": "max-autotune-no-cudagraphs"},
}


def parse_variant(spec: str) -> dict:
    """'fuse+fused_opt+mode:reduce-overhead' -> SSLConfig overrides; unknown tokens are an error."""
    out: dict = {}
    for tok in (t.strip() for t in spec.split("+") if t.strip()):
        if tok.startswith("mode:"):
            mode = tok[5:]
            if mode not in COMPILE_MODES:
                raise ValueError(f"variant {spec!r}: unknown compile mode {mode!r}; known: {COMPILE_MODES[1:]}")
            out["compile_mode"] = mode
        elif tok in VARIANT_TOKENS:
            out.update(VARIANT_TOKENS[tok])
        else:
            raise ValueError(f"variant {spec!r}: unknown token {tok!r}; known: {', '.join(VARIANT_TOKENS)}, mode:<mode>")
    return out


class StepProfiler:
    """`on_step` hook: starts torch.profiler after `after` steps, stops after `n` more and keeps the top-25 table."""

    def __init__(self, after: int, n: int, cuda: bool, label: str):
        self.after, self.n, self.cuda, self.label = after, n, cuda, label
        self.prof = None
        self.result: dict | None = None

    def __call__(self, step: int) -> None:
        import torch

        if self.n <= 0 or self.result is not None:
            return
        if self.prof is None and step + 1 >= self.after:
            acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if self.cuda else [])
            if self.cuda:
                torch.cuda.synchronize()
            self.prof = torch.profiler.profile(activities=acts)
            self.prof.start()
            self.first, self.t0 = step + 1, time.perf_counter()
        elif self.prof is not None and step + 1 >= self.first + self.n:
            if self.cuda:
                torch.cuda.synchronize()
            wall = time.perf_counter() - self.t0
            self.prof.stop()
            self.result = {"label": self.label, "steps": step + 1 - self.first, "wall_s": round(wall, 3),
                           "ms_per_step": round(1000 * wall / max(1, step + 1 - self.first), 2),
                           "table": self._table()}
            LOG.info("profile of %s: %d steps, %.2f ms/step (under the profiler)\n%s", self.label,
                     self.result["steps"], self.result["ms_per_step"], self.result["table"])
            self.prof = None

    def _table(self) -> str:
        ka = self.prof.key_averages()
        keys = ["self_device_time_total", "self_cuda_time_total", "device_time_total", "cuda_time_total"] if self.cuda \
            else ["self_cpu_time_total"]
        for key in keys + ["cpu_time_total"]:
            try:
                return ka.table(sort_by=key, row_limit=25, max_name_column_width=70)
            except Exception:  # noqa: BLE001 - the sort key's name changed across torch versions
                continue
        return ka.table(row_limit=25)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=DEFAULT_NPZ, help="cifar10_jpeg.npz (default: %(default)s)")
    p.add_argument("--methods", default="simsiam,byol", help="comma-separated SSL methods (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--knn-every", type=int, default=10)
    p.add_argument("--max-minutes", type=float, default=None, help="per-method wall-clock budget (stops after the epoch)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training and N/5 test images (quick runs)")
    p.add_argument("--device", default=None)
    p.add_argument("--backbone", default="resnet18_cifar", help="encoder (tiny_cnn: quick CPU smoke runs)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--save-embeddings", default=None, help="folder: write the first method's embeddings there")
    p.add_argument("--chunks", type=int, default=4, help="split the saved train embeddings into this many files")
    p.add_argument("--ckpt-dir", default=None, help="checkpoint folder (default: a temporary folder)")
    p.add_argument("--fuse-views", action="store_true", help="one backbone call for all views (SSLConfig.fuse_views)")
    p.add_argument("--fused-optimizer", action="store_true", help="fused SGD/Adam where supported")
    p.add_argument("--compile-mode", default=None, choices=[m for m in COMPILE_MODES if m],
                   help="torch.compile mode (default: torch's default)")
    p.add_argument("--compile-augment", action="store_true", help="also torch.compile the augmentation")
    p.add_argument("--variants", default=None,
                   help="A/B: comma-separated variants of the first method, each '+'-joined tokens from "
                        f"{', '.join(VARIANT_TOKENS)} or mode:<compile mode> (e.g. base,fuse,fuse+fused_opt+ro); "
                        "each runs --epochs epochs")
    p.add_argument("--no-knn", action="store_true", help="skip the kNN monitor (pure speed runs)")
    p.add_argument("--profile-steps", type=int, default=0, help="profile N steps of every run (torch.profiler)")
    p.add_argument("--profile-after", type=int, default=20, help="warm-up steps before profiling (default %(default)s)")


def load_cifar(path: str, limit: int | None):
    """Decode the archive: (train uint8 N x 32 x 32 x 3, train labels, test uint8, test labels)."""
    from curator.data.images import EncodedImages
    from curator.data.problems import DataError
    from curator.ssl.data import decode_all

    if not Path(path).exists():
        raise DataError(f"CIFAR-10 archive {path!r} not found (expected cifar10_jpeg.npz, see the dataset README)")
    z = np.load(path, allow_pickle=False)
    out = []
    for split, n in (("train", limit), ("test", None if limit is None else max(limit // 5, 10))):
        src = EncodedImages(z[f"{split}_jpeg"], z[f"{split}_offsets"], f"cifar10_jpeg.npz:{split}")
        labels = z[f"{split}_labels"].astype(np.int64)
        refs = np.arange(len(src))
        if n is not None:  # the test set is ordered by class: take a spread, not the first rows
            refs = refs[:n] if split == "train" else np.linspace(0, len(src) - 1, n).astype(np.int64)
        pixels, _ = decode_all(src, refs, 32, threads=16)
        out += [pixels, labels[refs]]
    return out


def _plan(args: argparse.Namespace) -> list[tuple[str, str | None, dict]]:
    """(method, variant name or None, SSLConfig overrides) per run; variants are parsed before any work."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty")
    flags = {"fuse_views": args.fuse_views, "fused_optimizer": args.fused_optimizer,
             "compile_mode": args.compile_mode, "compile_augment": args.compile_augment}
    if not args.variants:
        return [(m, None, flags) for m in methods]
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    return [(methods[0], v, {**flags, **parse_variant(v)}) for v in names]


def run(args: argparse.Namespace) -> dict:
    import tempfile

    import torch

    from curator.device import select_device
    from curator.ssl.config import SSLConfig, default_warmup
    from curator.ssl.data import ResidentBatches
    from curator.ssl.embed import embed_rows
    from curator.ssl.train import TrainData, pretrain

    plan = _plan(args)
    device = select_device(args.device)
    t0 = time.perf_counter()
    tr_x, tr_y, te_x, te_y = load_cifar(args.data, args.limit)
    decode_s = time.perf_counter() - t0
    LOG.info("decoded %d train + %d test images in %.1f s", len(tr_x), len(te_x), decode_s)
    train_b, test_b = ResidentBatches(tr_x, device), ResidentBatches(te_x, device)
    if args.no_knn:
        data = TrainData(train_b, len(tr_x), 32, np.ones(len(tr_x), bool))
    else:
        data = TrainData(train_b, len(tr_x), 32, np.ones(len(tr_x), bool), tr_y, 10, test_b, te_y)
    rows, histories, profiles = [], {}, []
    ckpt_root = Path(args.ckpt_dir or tempfile.mkdtemp(prefix="curator-ssl-bench-"))
    for i, (method, variant, overrides) in enumerate(plan):
        label = method if variant is None else f"{method}:{variant}"
        cfg = SSLConfig.from_dict({"method": method, "backbone": args.backbone, "epochs": args.epochs,
                                   "batch_size": args.batch_size, "knn_every": args.knn_every, "knn_k": 200,
                                   "image_size": 32, "warmup_epochs": default_warmup(args.epochs),
                                   "max_minutes": args.max_minutes, "compile": args.compile, "progress": False,
                                   **overrides})
        ckpt = ckpt_root / (method if variant is None else f"{method}-{i}-{variant.replace(':', '_')}")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        prof = StepProfiler(args.profile_after, args.profile_steps, device.type == "cuda", label)
        LOG.info("run %d/%d: %s %s", i + 1, len(plan), label, {k: v for k, v in overrides.items() if v})
        t1 = time.perf_counter()
        res = pretrain(data, cfg, ckpt, device, seed=0, on_step=prof if args.profile_steps > 0 else None)
        wall = time.perf_counter() - t1
        hist = res.history
        epoch_s = [h["epoch_s"] for h in hist]
        knn_s = sum(h.get("knn_s", 0.0) for h in hist)
        steps = len(tr_x) // min(args.batch_size, len(tr_x))
        med = float(np.median(epoch_s[1:] or epoch_s)) if epoch_s else None
        row = {"method": method}
        if variant is not None:
            row["variant"] = variant
        row.update({
            "epochs": res.epochs_done, "batch": args.batch_size,
            "first_epoch_s": epoch_s[0] if epoch_s else None, "median_epoch_s": med,
            "ms_per_step": round(1000 * med / steps, 2) if med is not None else None,
            "images_per_s": float(np.median([h["images_per_s"] for h in hist[1:] or hist])) if hist else None,
            "train_s": round(sum(epoch_s), 1), "monitor_s": round(knn_s, 1), "wall_s": round(wall, 1),
            "peak_mem_gb": max((h.get("peak_mem_gb", 0.0) for h in hist), default=None),
            "best_knn": res.best_knn, "final_knn": res.final_knn,
        })
        rows.append(row)
        if prof.result is not None:
            profiles.append(prof.result)
        histories[label] = [{k: h.get(k) for k in ("epoch", "loss", "epoch_s", "images_per_s", "knn_acc")}
                            for h in hist]
        LOG.info("%s", rows[-1])
        if args.save_embeddings and i == 0:
            out = Path(args.save_embeddings)
            out.mkdir(parents=True, exist_ok=True)
            kw = dict(amp=True, channels_last=True, batch_size=2048)
            emb_tr = embed_rows(res.method.backbone, train_b, len(tr_x), res.recipe, 32, device, **kw)
            emb_te = embed_rows(res.method.backbone, test_b, len(te_x), res.recipe, 32, device, **kw)
            for j, part in enumerate(np.array_split(emb_tr, args.chunks)):
                np.save(out / f"train_part{j}.npy", part)
            np.save(out / "test.npy", emb_te)
            LOG.info("saved %s embeddings %s / %s to %s", method, emb_tr.shape, emb_te.shape, out)
        del res
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result = {"device": str(device), "decode_s": round(decode_s, 1), "rows": rows, "history": histories}
    if profiles:
        result["profiles"] = profiles
    timed = [r for r in rows if r.get("variant") is not None and r["median_epoch_s"] is not None]
    if timed:
        best = min(timed, key=lambda r: r["median_epoch_s"])
        result["best_variant"] = best["variant"]
        LOG.info("fastest variant: %s (%.3f s/epoch)", best["variant"], best["median_epoch_s"])
    return result
