"""`curator bench ssl-throughput` (SPEC §7): SSL pre-training speed and quality on CIFAR-10.

Reads the CIFAR-10 JPEG archive (``cifar10_jpeg.npz``: train/test JPEG bytes + offsets + labels,
see ../shared/datasets/cifar10n/README.md), decodes it once through curator's `EncodedImages`
source, keeps the uint8 images resident on the device and trains each requested method with the
curator training loop. Reports images/s, epoch time (median, and the first epoch, which includes
torch.compile), peak GPU memory, the kNN monitor accuracy (k=200, cosine, T=0.1; bank = training
set, queries = test set) over epochs, and optionally saves the trained model's train/test
embeddings (float16, train split into chunks).
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=DEFAULT_NPZ, help="cifar10_jpeg.npz (default: %(default)s)")
    p.add_argument("--methods", default="simsiam,byol", help="comma-separated SSL methods (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--knn-every", type=int, default=10)
    p.add_argument("--max-minutes", type=float, default=None, help="per-method wall-clock budget (stops after the epoch)")
    p.add_argument("--limit", type=int, default=None, help="use the first N training and N/5 test images (quick runs)")
    p.add_argument("--device", default=None)
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--save-embeddings", default=None, help="folder: write the first method's embeddings there")
    p.add_argument("--chunks", type=int, default=4, help="split the saved train embeddings into this many files")
    p.add_argument("--ckpt-dir", default=None, help="checkpoint folder (default: a temporary folder)")


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


def run(args: argparse.Namespace) -> dict:
    import tempfile

    import torch

    from curator.device import select_device
    from curator.ssl.config import SSLConfig
    from curator.ssl.data import ResidentBatches
    from curator.ssl.embed import embed_rows
    from curator.ssl.train import TrainData, pretrain

    device = select_device(args.device)
    t0 = time.perf_counter()
    tr_x, tr_y, te_x, te_y = load_cifar(args.data, args.limit)
    decode_s = time.perf_counter() - t0
    LOG.info("decoded %d train + %d test images in %.1f s", len(tr_x), len(te_x), decode_s)
    train_b, test_b = ResidentBatches(tr_x, device), ResidentBatches(te_x, device)
    data = TrainData(train_b, len(tr_x), 32, np.ones(len(tr_x), bool), tr_y, 10, test_b, te_y)
    rows, histories = [], {}
    for i, method in enumerate(m.strip() for m in args.methods.split(",") if m.strip()):
        cfg = SSLConfig.from_dict({"method": method, "backbone": "resnet18_cifar", "epochs": args.epochs,
                                   "batch_size": args.batch_size, "knn_every": args.knn_every,
                                   "max_minutes": args.max_minutes, "compile": args.compile, "progress": False})
        ckpt = Path(args.ckpt_dir or tempfile.mkdtemp(prefix="curator-ssl-bench-")) / method
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t1 = time.perf_counter()
        res = pretrain(data, cfg, ckpt, device)
        wall = time.perf_counter() - t1
        hist = res.history
        epoch_s = [h["epoch_s"] for h in hist]
        knn_s = sum(h.get("knn_s", 0.0) for h in hist)
        rows.append({
            "method": method, "epochs": res.epochs_done, "batch": args.batch_size,
            "first_epoch_s": epoch_s[0] if epoch_s else None,
            "median_epoch_s": float(np.median(epoch_s[1:] or epoch_s)) if epoch_s else None,
            "images_per_s": float(np.median([h["images_per_s"] for h in hist[1:] or hist])) if hist else None,
            "train_s": round(sum(epoch_s), 1), "monitor_s": round(knn_s, 1), "wall_s": round(wall, 1),
            "peak_mem_gb": max((h.get("peak_mem_gb", 0.0) for h in hist), default=None),
            "best_knn": res.best_knn, "final_knn": res.final_knn,
        })
        histories[method] = [{k: h.get(k) for k in ("epoch", "loss", "epoch_s", "images_per_s", "knn_acc")} for h in hist]
        LOG.info("%s", rows[-1])
        if args.save_embeddings and i == 0:
            out = Path(args.save_embeddings)
            out.mkdir(parents=True, exist_ok=True)
            kw = dict(amp=True, channels_last=True, batch_size=2048)
            emb_tr, _ = embed_rows(res.method.backbone, train_b, len(tr_x), res.recipe, 32, device, **kw)
            emb_te, _ = embed_rows(res.method.backbone, test_b, len(te_x), res.recipe, 32, device, **kw)
            for j, part in enumerate(np.array_split(emb_tr, args.chunks)):
                np.save(out / f"train_part{j}.npy", part)
            np.save(out / "test.npy", emb_te)
            LOG.info("saved %s embeddings %s / %s to %s", method, emb_tr.shape, emb_te.shape, out)
        del res
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"device": str(device), "decode_s": round(decode_s, 1), "rows": rows, "history": histories}
