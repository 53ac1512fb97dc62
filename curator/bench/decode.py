"""`curator bench decode` (BENCHMARKS.md): the decode-once image cache against decoding every epoch.

On a folder of JPEGs (generated: `--n` images of `--src-size` px with smooth random content, or `--folder DIR`
of your own), measures
- building the cache (`curator.data.cache.build`) at `--size` px with 1 worker and with `--workers` workers
  (a process pool): images/s and images/s per core; on CUDA also `torchvision.io.decode_jpeg` on the GPU;
- one epoch of batches (a random permutation, `--batch` images per batch) read three ways: **streaming** (a
  DataLoader whose `--stream-workers` workers decode every JPEG, as with ``ssl.cache = "off"``), **cached**
  (batches gathered from the cache's memory map) and **resident** (the decoded images held on the device).
Times include only reading images to the device, not training.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

NAME = "decode"
HELP = "decode-once image cache: cache build images/s per core (CPU, GPU), epoch time streaming vs cached"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", default=None, help="a folder of JPEGs to use (default: generate --n images)")
    p.add_argument("--n", type=int, default=2000, help="images to generate (default %(default)s)")
    p.add_argument("--src-size", type=int, default=256, help="side of the generated JPEGs (default %(default)s)")
    p.add_argument("--size", type=int, default=128, help="cache resolution (default %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="processes for the parallel build (default: all cores)")
    p.add_argument("--stream-workers", type=int, default=None, help="DataLoader workers when streaming (default: cores)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--keep", action="store_true", help="keep the generated folder and caches (printed)")


def generate_folder(folder: Path, n: int, side: int, seed: int = 0) -> list[str]:
    """`n` JPEGs of `side` px with smooth random content (so they compress and decode like photos)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        low = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(low).resize((side, side), Image.BICUBIC)
        arr = np.asarray(img, np.int16) + rng.integers(-12, 13, (side, side, 3))
        name = f"{i:06d}.jpg"
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(folder / name, quality=90)
        names.append(name)
    return names


def _epoch_seconds(batches, n: int, batch: int, device) -> float:
    import torch

    perm = np.random.default_rng(1).permutation(n)
    idx = [perm[s:s + batch] for s in range(0, n, batch)]
    t0 = time.perf_counter()
    total = 0
    for x in batches.batches(idx):
        total += int(x.shape[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    assert total == n
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict:
    from curator.data.cache import available_cores, build
    from curator.data.images import FileImages
    from curator.device import select_device
    from curator.ssl.data import CachedBatches, ResidentBatches, StreamingBatches

    device = select_device(args.device)
    cores = available_cores()
    workers = args.workers or cores
    tmp = Path(tempfile.mkdtemp(prefix="curator-bench-decode-"))
    try:
        if args.folder:
            root = Path(args.folder)
            names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
            if not names:
                raise ValueError(f"no .jpg files under {root}")
        else:
            root = tmp / "images"
            t0 = time.perf_counter()
            names = generate_folder(root, args.n, args.src_size)
            LOG.info("generated %d JPEGs of %d px in %.1f s", len(names), args.src_size, time.perf_counter() - t0)
        images = FileImages(root, names)
        refs = np.arange(len(names))
        ids = [f"s{i}" for i in refs]
        rows, cache = [], None
        plans = [("pil", 1, "cpu"), ("pil", workers, "cpu")] if workers > 1 else [("pil", 1, "cpu")]
        if device.type == "cuda":
            plans.append(("torchvision", 1, str(device)))
        for i, (decoder, w, dev) in enumerate(plans):
            t0 = time.perf_counter()
            cache, _ = build(images, refs, args.size, tmp / f"cache{i}", sample_ids=ids, sources=names, workers=w,
                             decoder=decoder, device=dev, pool="process" if w > 1 else "thread")
            s = time.perf_counter() - t0
            ips = len(names) / s
            rows.append({"what": "cache build", "decoder": decoder if dev == "cpu" else f"{decoder} ({dev})",
                         "workers": w, "seconds": round(s, 2), "images_per_s": round(ips, 1),
                         "images_per_s_per_core": round(ips / w, 1) if dev == "cpu" else None})
            LOG.info("%s", rows[-1])
        stream_workers = cores if args.stream_workers is None else args.stream_workers
        sources = [("streaming", StreamingBatches(images, refs, args.size, device, stream_workers)),
                   ("cached", CachedBatches(cache.pixels, device)),
                   ("resident", ResidentBatches(cache.pixels, device))]
        for label, batches in sources:
            s = _epoch_seconds(batches, len(names), args.batch, device)
            rows.append({"what": "epoch", "decoder": label, "workers": stream_workers if label == "streaming" else 0,
                         "seconds": round(s, 5), "images_per_s": round(len(names) / s, 1),
                         "images_per_s_per_core": None})
            LOG.info("%s", rows[-1])
        return {"device": str(device), "cores": cores, "n_images": len(names), "src_size": args.src_size,
                "size": args.size, "folder": str(root), "rows": rows}
    finally:
        if args.keep:
            LOG.info("kept %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
