"""The measurements of `curator bench gpu`, one function per part (`curator.bench.gpu` orders them and caps their time).

Each part takes a `Ctx` and returns a dict of its numbers; rows it has finished are handed to `ctx.keep(...)`
as it goes, so a part stopped at its time cap still reports what it measured. Sizes come from `Sizes`: the real
ones for the GPU, tiny ones (``--tiny``) that run every code path on a CPU in seconds.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from curator.bench import gpu_data

LOG = logging.getLogger(__name__)


class SkipPart(Exception):
    """A part that does not apply here (its message says why): recorded as skipped, not failed."""


@dataclass(frozen=True)
class Sizes:
    ssl_backbone: str = "resnet18_cifar"
    ssl_limit: int | None = None                 # training images for the SSL parts (None: all)
    ssl_batches: tuple[int, ...] = (512, 1024)
    ssl_epochs: int = 2
    budget_minutes: float = 3.0
    knn_n: int = 1_000_000
    knn_dim: int = 512
    knn_recall_queries: int = 1_000
    r50_images: int = 10_000
    r50_size: int = 224
    decode_images: int | None = None             # CIFAR JPEGs decoded (None: all training images)
    reencode_images: int = 2_000
    reencode_size: int = 256
    audit_overrides: tuple[str, ...] = ()
    audit_until: str = "report"


FULL = Sizes()
TINY = Sizes(ssl_backbone="tiny_cnn", ssl_limit=32, ssl_batches=(16, 32), ssl_epochs=2, budget_minutes=0.02,
             knn_n=2_000, knn_dim=32, knn_recall_queries=50, r50_images=16, r50_size=32, decode_images=64,
             reencode_images=8, reencode_size=64,
             audit_overrides=('heads.heads=["lasl"]', "heads.epochs=2", "evidence.folds=3", "audit.rounds=1"), audit_until="audit")

#: part 1's variants, in the order they run (per batch size): SSLConfig overrides
SSL_VARIANTS = (
    ("fp32", {"amp": False, "channels_last": False, "compile": "off"}),
    ("bf16+cl", {"amp": True, "channels_last": True, "compile": "off"}),
    ("bf16+cl+compile", {"amp": True, "channels_last": True, "compile": "on"}),
)


@dataclass
class Ctx:
    device: "object"                              # torch.device
    data: Path                                    # the data folder (curator.bench.gpu_data)
    work: Path                                    # scratch folder shared by the parts of one run
    sizes: Sizes
    deadline: float                               # time.monotonic() by which the part must be done
    earlier: dict = field(default_factory=dict)   # part name -> result of the parts already run
    keep: Callable[[dict], None] = lambda partial: None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def _sync(ctx: Ctx) -> None:
    if ctx.cuda:
        import torch

        torch.cuda.synchronize(ctx.device)


def _cifar(ctx: Ctx, limit: int | None, test: bool = True) -> list[np.ndarray]:
    """Decoded (N, 32, 32, 3) uint8 training images (the first `limit`) and labels, then the test ones (all shipped)."""
    import os

    from curator.data.images import EncodedImages
    from curator.ssl.data import decode_all

    z = np.load(ctx.data / gpu_data.NPZ, allow_pickle=False)
    out = []
    for split in ("train", "test") if test else ("train",):
        src = EncodedImages(z[f"{split}_jpeg"], z[f"{split}_offsets"], f"{gpu_data.NPZ}:{split}")
        n = len(src) if split == "test" or limit is None else min(limit, len(src))
        pixels, _ = decode_all(src, np.arange(n), 32, threads=os.cpu_count() or 8)
        out += [pixels, z[f"{split}_labels"][:n].astype(np.int64)]
    return out


@contextmanager
def _warnings_of(logger: str):
    """Collect the WARNING (and worse) messages that `logger` emits inside the block."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    log = logging.getLogger(logger)
    log.addHandler(handler)
    try:
        yield seen
    finally:
        log.removeHandler(handler)


def _ssl_config(ctx: Ctx, batch: int, overrides: dict, **extra):
    from curator.ssl.config import SSLConfig, default_warmup

    epochs = extra.pop("epochs", ctx.sizes.ssl_epochs)
    return SSLConfig.from_dict({"method": "simsiam", "backbone": ctx.sizes.ssl_backbone, "epochs": epochs,
                                "batch_size": batch, "image_size": 32, "knn_every": 0, "knn_k": 200,
                                "warmup_epochs": default_warmup(epochs) if epochs else 0, "progress": False,
                                **overrides, **extra})


def ssl_speed(ctx: Ctx) -> dict:
    """Part 1: SimSiam (ResNet-18, CIFAR stem) from the resident uint8 images, `ssl_epochs` epochs per variant and
    batch size; the last epoch's seconds and images/s (the first includes compilation), peak GPU memory."""
    import tempfile

    import torch

    from curator.ssl.data import ResidentBatches
    from curator.ssl.train import TrainData, pretrain

    t0 = time.perf_counter()
    tr_x, _ = _cifar(ctx, ctx.sizes.ssl_limit, test=False)
    decode_s = time.perf_counter() - t0
    data = TrainData(ResidentBatches(tr_x, ctx.device), len(tr_x), 32, np.ones(len(tr_x), bool))
    rows: list[dict] = []
    out = {"n_images": len(tr_x), "backbone": ctx.sizes.ssl_backbone, "decode_s": round(decode_s, 2),
           "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
           "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32), "rows": rows}
    first, *others = ctx.sizes.ssl_batches
    # every variant at the first batch size; at the others fp32 last (the least informative if the cap cuts it)
    plan = [(first, v) for v in SSL_VARIANTS] + [(b, v) for b in others for v in SSL_VARIANTS[1:] + SSL_VARIANTS[:1]]
    for batch, (name, overrides) in plan:
        row = {"variant": name, "batch": batch}
        rows.append(row)
        if overrides["compile"] == "on" and not ctx.cuda:
            row["status"] = "skipped: torch.compile is measured on CUDA only (on a CPU it compiles for minutes)"
            continue
        if ctx.left() < 5:
            row["status"] = "skipped: the part's time cap was reached"
            continue
        cfg = _ssl_config(ctx, batch, overrides, max_minutes=max(ctx.left() - 5, 1) / 60)
        if ctx.cuda:
            torch.cuda.reset_peak_memory_stats(ctx.device)
        t1 = time.perf_counter()
        with _warnings_of("curator.ssl.train") as warned:
            res = pretrain(data, cfg, Path(tempfile.mkdtemp(dir=ctx.work, prefix="ssl-")), ctx.device, seed=0)
        hist = res.history
        last = hist[-1] if hist else {}
        row.update({"epochs": res.epochs_done, "seconds_per_epoch": last.get("epoch_s"),
                    "first_epoch_s": hist[0]["epoch_s"] if hist else None,
                    "images_per_s": last.get("images_per_s"),
                    "peak_mem_gb": round(torch.cuda.max_memory_allocated(ctx.device) / 2**30, 2) if ctx.cuda else None,
                    "wall_s": round(time.perf_counter() - t1, 1),
                    "status": "ok" if res.epochs_done >= ctx.sizes.ssl_epochs else "partial: stopped at the cap"})
        fallback = [w for w in warned if "torch.compile failed" in w]
        if fallback:                    # the loop went on eagerly: these are not compiled numbers
            row["status"] = f"failed: {fallback[0][:300]}"
        del res
        if ctx.cuda:
            torch.cuda.empty_cache()
        ctx.keep(out)
    timed = [r for r in rows if r.get("status") == "ok" and r.get("seconds_per_epoch")]
    if timed:
        best = min(timed, key=lambda r: r["seconds_per_epoch"])
        out["best"] = {"variant": best["variant"], "batch": best["batch"]}
    return out


def ssl_budget(ctx: Ctx) -> dict:
    """Part 2: the fastest setting of part 1 under a `budget_minutes` budget, planned as ``--budget`` plans it
    (`curator.ssl.budget.plan`): epochs reached, kNN monitor (k 200 on the shipped test images); the trained
    encoder's embeddings of every training image are kept for the last audit part."""
    import tempfile

    from curator.ssl import budget
    from curator.ssl.config import default_warmup
    from curator.ssl.data import ResidentBatches
    from curator.ssl.embed import embed_rows
    from curator.ssl.train import TrainData, pretrain

    best = (ctx.earlier.get("ssl_speed") or {}).get("best")
    chosen = "fastest of part 1" if best else "default (part 1 has no timed variant)"
    best = best or {"variant": "bf16+cl+compile" if ctx.cuda else "bf16+cl", "batch": ctx.sizes.ssl_batches[0]}
    overrides = dict(SSL_VARIANTS)[best["variant"]]
    tr_x, tr_y, te_x, te_y = _cifar(ctx, ctx.sizes.ssl_limit)
    train_b, test_b = ResidentBatches(tr_x, ctx.device), ResidentBatches(te_x, ctx.device)
    cfg = _ssl_config(ctx, best["batch"], overrides, epochs=None, budget_minutes=ctx.sizes.budget_minutes)
    t0 = time.perf_counter()
    plan = budget.plan(cfg, budget_minutes=ctx.sizes.budget_minutes, n_train=len(tr_x), n_monitor=len(te_x),
                       device=ctx.device, seed=0, candidates=[budget.Candidate(ctx.sizes.ssl_backbone, 32)])
    plan_s = time.perf_counter() - t0
    out = {"setting": best, "chosen": chosen, "budget_minutes": ctx.sizes.budget_minutes, "plan_s": round(plan_s, 1),
           "planned_epochs": plan.epochs, "plan_reason": plan.reason, "n_train": len(tr_x), "n_test": len(te_x)}
    ctx.keep(out)
    cfg = cfg.replace(epochs=plan.epochs, warmup_epochs=default_warmup(plan.epochs), knn_every=plan.knn_every,
                      max_minutes=max(ctx.left() - 30, 1) / 60)     # a guard only: the plan should end in time
    data = TrainData(train_b, len(tr_x), 32, np.ones(len(tr_x), bool), tr_y, 10, test_b, te_y)
    t0 = time.perf_counter()
    res = pretrain(data, cfg, Path(tempfile.mkdtemp(dir=ctx.work, prefix="budget-")), ctx.device, seed=0)
    out.update({"epochs_done": res.epochs_done, "partial": res.partial, "train_s": round(time.perf_counter() - t0, 1),
                "final_knn": res.final_knn, "best_knn": res.best_knn,
                "knn_by_epoch": {h["epoch"]: h["knn_acc"] for h in res.history if h.get("knn_acc") is not None}})
    ctx.keep(out)
    t0 = time.perf_counter()
    emb = embed_rows(res.method.backbone, train_b, len(tr_x), res.recipe, 32, ctx.device, amp=True,
                     channels_last=ctx.cuda, batch_size=2048)
    np.save(ctx.work / "ssl_train_embeddings.npy", emb)
    out.update({"embed_s": round(time.perf_counter() - t0, 1), "embeddings": str(ctx.work / "ssl_train_embeddings.npy")})
    return out


def _audit(ctx: Ctx, rows: np.ndarray, emb_path: Path, name: str, device: str) -> dict:
    from curator import runfiles
    from curator.rundir import RunDir
    from pipelines.audit import run_pipeline

    csv = gpu_data.write_audit_csv(ctx.data, rows, ctx.work / f"{name}.csv")
    out_dir = ctx.work / f"run-{name}-{device.replace(':', '')}"
    t0 = time.perf_counter()
    summary = run_pipeline({"dataset": "csv", "root": str(csv), "embeddings": str(emb_path)}, out_dir,
                           overrides=[f'ssl.device="{device}"', *ctx.sizes.audit_overrides], until=ctx.sizes.audit_until)
    wall = time.perf_counter() - t0
    timings = (RunDir(out_dir).read_json(runfiles.PROVENANCE, {}) or {}).get("timings_s", {})
    stages = {"heads": sum(v for k, v in timings.items() if k.startswith("heads_"))}
    stages.update({k: v for k, v in timings.items() if not k.startswith("heads_")})
    m = summary.get("metrics") or {}
    return {"device": device, "n": int(summary["n_samples"]), "wall_s": round(wall, 1),
            "stage_s": {k: round(v, 2) for k, v in stages.items()}, "n_flagged": summary.get("n_flagged"),
            **{k: m.get(k) for k in ("auroc", "precision", "recall", "f1")}}


def audit(ctx: Ctx) -> dict:
    """Part 3: `curator audit --embeddings` on CIFAR-10N worse (the shipped subset of the shared embeddings) with
    the run's device switch on the device (every post-embedding stage there): seconds per stage, AUROC/F1."""
    rows = np.load(ctx.data / gpu_data.AUDIT_IDX, allow_pickle=False)
    out = {"embeddings": f"shared SimSiam embeddings, {len(rows)} training rows (audit_indices.npy)"}
    out.update(_audit(ctx, rows, ctx.data / gpu_data.AUDIT_EMB, "subset", str(ctx.device)))
    return out


def audit_cpu(ctx: Ctx) -> dict:
    """Last part, when time is left: part 3's audit again with ``--device cpu`` on the same machine (the reference
    its AUROC/F1 must match within the probe's seed spread; its stage seconds show what the device saved)."""
    if not ctx.cuda:
        raise SkipPart("the run's device is the CPU: part audit is the CPU run")
    rows = np.load(ctx.data / gpu_data.AUDIT_IDX, allow_pickle=False)
    out = {"embeddings": f"shared SimSiam embeddings, {len(rows)} training rows (audit_indices.npy)"}
    out.update(_audit(ctx, rows, ctx.data / gpu_data.AUDIT_EMB, "subset-reference", "cpu"))
    return out


def audit_ssl(ctx: Ctx) -> dict:
    """Last part, when time is left: the audit of every training image on the embeddings part 2 just trained."""
    emb = ctx.work / "ssl_train_embeddings.npy"
    if not emb.is_file():
        raise RuntimeError("part ssl_budget left no embeddings (it did not finish)")
    n = len(np.load(emb, mmap_mode="r"))
    out = {"embeddings": f"part ssl_budget's SimSiam encoder, all {n} training rows"}
    out.update(_audit(ctx, np.arange(n), emb, "ssl", str(ctx.device)))
    return out


def knn(ctx: Ctx) -> dict:
    """Part 4: self-kNN (k 10) of `knn_n` x `knn_dim` clustered vectors generated on the device, with the
    torch-exact engine (fp16 scores, fp32 re-scoring) and FAISS GPU when it imports; recall@10 against an fp32
    exact search of `knn_recall_queries` rows."""
    import torch

    from curator.evidence.knn import _import_faiss, build_index, drop_self

    s, k = ctx.sizes, 10
    g = torch.Generator(device=ctx.device).manual_seed(0)
    t0 = time.perf_counter()
    n_c, n_sub = max(10, s.knn_n // 1000), max(10, s.knn_n // 50)
    centres = torch.randn(n_c, s.knn_dim, device=ctx.device, generator=g)
    sub = centres[torch.randint(0, n_c, (n_sub,), device=ctx.device, generator=g)]
    sub += 0.7 * torch.randn(n_sub, s.knn_dim, device=ctx.device, generator=g)
    x = sub[torch.randint(0, n_sub, (s.knn_n,), device=ctx.device, generator=g)]
    x += 0.5 * torch.randn(s.knn_n, s.knn_dim, device=ctx.device, generator=g)
    x = torch.nn.functional.normalize(x, dim=1)
    _sync(ctx)
    gen_s = time.perf_counter() - t0
    q = torch.from_numpy(np.sort(np.random.default_rng(1).choice(s.knn_n, s.knn_recall_queries, replace=False)))
    top = [torch.topk(x[q[i:i + 250].to(ctx.device)] @ x.T, k + 1, dim=1) for i in range(0, len(q), 250)]  # fp32
    truth = drop_self(torch.cat([t.values for t in top]).cpu().numpy(), torch.cat([t.indices for t in top]).cpu().numpy(),
                      q.numpy(), k)[1]
    del top
    xh = x.cpu().numpy()
    del x
    if ctx.cuda:
        torch.cuda.empty_cache()
    out = {"n": s.knn_n, "dim": s.knn_dim, "k": k, "generate_s": round(gen_s, 2), "rows": []}
    faiss = _import_faiss()
    backends = ["torch-exact"] + (["faiss-gpu-flat"] if ctx.cuda and faiss is not None and faiss.get_num_gpus() > 0
                                  else [])
    if len(backends) == 1:
        out["faiss_gpu"] = "skipped: faiss with GPUs is not importable here"
    for backend in backends:
        if ctx.left() < 5:
            out["rows"].append({"backend": backend, "status": "skipped: the part's time cap was reached"})
            continue
        t0 = time.perf_counter()
        index = build_index(xh, backend=backend, device=str(ctx.device), prepared=True)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, idx = index.self_knn(k)
        _sync(ctx)
        search_s = time.perf_counter() - t0
        got = idx[q.numpy()]
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth)]))
        out["rows"].append({"backend": backend, "build_s": round(build_s, 2), "search_s": round(search_s, 2),
                            "self_knn_s": round(build_s + search_s, 2), "recall@10": round(recall, 4), "status": "ok"})
        del index
        ctx.keep(out)
    return out


def resnet50(ctx: Ctx) -> dict:
    """Part 5: embedding throughput of a torchvision ResNet-50 (random weights) at `r50_size` px from the decoded
    images held on the device (curator's embedding path: plain view resized on the device, bf16, channels_last)."""
    import torch

    from curator.ssl.augment import AugmentRecipe
    from curator.ssl.backbones import build_backbone
    from curator.ssl.data import ResidentBatches
    from curator.ssl.embed import extract_features

    s = ctx.sizes
    tr_x, _ = _cifar(ctx, s.r50_images, test=False)
    batches = ResidentBatches(tr_x, ctx.device)
    model, info = build_backbone("torchvision:resnet50", s.r50_size)
    model = model.to(ctx.device)
    if ctx.cuda:
        model = model.to(memory_format=torch.channels_last)
    rec = AugmentRecipe()
    kw = dict(amp=True, channels_last=ctx.cuda, batch_size=1024)
    pos = np.arange(len(tr_x))
    with torch.no_grad():
        extract_features(model, batches, pos[:min(len(pos), 256)], rec, s.r50_size, ctx.device, **kw)   # warm-up
        _sync(ctx)
        t0 = time.perf_counter()
        feats = extract_features(model, batches, pos, rec, s.r50_size, ctx.device, **kw)
        _sync(ctx)
        sec = time.perf_counter() - t0
    return {"model": "torchvision:resnet50 (random weights)", "size": s.r50_size, "n_images": len(pos),
            "dim": int(feats.shape[1]), "seconds": round(sec, 2), "images_per_s": round(len(pos) / sec, 1),
            "peak_mem_gb": round(torch.cuda.max_memory_allocated(ctx.device) / 2**30, 2) if ctx.cuda else None}


def jpeg_decode(ctx: Ctx) -> dict:
    """Part 6: building the uint8 image cache (`curator.data.cache.build`) from the CIFAR JPEGs and from 256-px
    re-encodes of them, with `torchvision.io.decode_jpeg` on the device and with PIL on every core: images/s."""
    import io
    import tempfile

    import torch
    from PIL import Image

    from curator.data.cache import available_cores, build
    from curator.data.images import EncodedImages

    s = ctx.sizes
    z = np.load(ctx.data / gpu_data.NPZ, allow_pickle=False)
    cifar = EncodedImages(z["train_jpeg"], z["train_offsets"], "cifar10_jpeg.npz:train")
    n = len(cifar) if s.decode_images is None else min(s.decode_images, len(cifar))
    # the 256-px set: CIFAR images upsampled and re-encoded (quality 90) once, on the CPU
    t0 = time.perf_counter()
    parts = []
    for r in range(min(s.reencode_images, len(cifar))):
        buf = io.BytesIO()
        Image.fromarray(cifar.read(r)).resize((s.reencode_size, s.reencode_size), Image.BILINEAR).save(
            buf, format="JPEG", quality=90)
        parts.append(np.frombuffer(buf.getvalue(), np.uint8))
    offs = np.concatenate([[0], np.cumsum([len(p) for p in parts])])
    big = EncodedImages(np.concatenate(parts), offs, f"{s.reencode_size}px re-encodes")
    out = {"reencode_s": round(time.perf_counter() - t0, 1), "cores": available_cores(), "rows": []}
    device = str(ctx.device)
    plans = [(cifar, n, 32, "torchvision", device), (cifar, n, 32, "pil", "cpu"),
             (big, len(big), s.reencode_size, "torchvision", device), (big, len(big), s.reencode_size, "pil", "cpu")]
    for src, count, size, decoder, dev in plans:
        row = {"images": src.name, "size": size, "decoder": f"{decoder} ({dev})", "n": count}
        out["rows"].append(row)
        if ctx.left() < 3:
            row["status"] = "skipped: the part's time cap was reached"
            continue
        refs = np.arange(count)
        folder = Path(tempfile.mkdtemp(dir=ctx.work, prefix="cache-"))
        t0 = time.perf_counter()
        build(src, refs, size, folder, sample_ids=[f"s{i}" for i in refs], sources=[str(i) for i in refs],
              workers=None if decoder == "pil" else 1, decoder=decoder, device=dev)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        row.update({"seconds": round(sec, 2), "images_per_s": round(count / sec, 1), "status": "ok"})
        ctx.keep(out)
    return out


#: name -> (function, time cap in seconds on the GPU, what it measures), in priority order
PARTS: dict[str, tuple[Callable[[Ctx], dict], float, str]] = {
    "ssl_speed": (ssl_speed, 150, "SSL speed A/B: fp32 / bf16+channels_last / +torch.compile, batch 512 and 1024"),
    "ssl_budget": (ssl_budget, 250, "SSL quality in a 3-minute budget: epochs reached, kNN monitor"),
    "audit": (audit, 75, "audit after embedding on the device (CIFAR-10N worse, embeddings subset): stages, AUROC/F1"),
    "knn": (knn, 50, "kNN 1M x 512 torch-exact (FAISS GPU when importable): seconds, recall@10"),
    "resnet50": (resnet50, 35, "pretrained-embedding throughput: ResNet-50 at 224 px, images/s"),
    "jpeg_decode": (jpeg_decode, 45, "JPEG decoding into the image cache, torchvision on the device vs PIL"),
    "audit_ssl": (audit_ssl, 60, "audit of all 50k rows on part 2's embeddings, when time is left"),
    "audit_cpu": (audit_cpu, 90, "part 3's audit with --device cpu (the reference), when time is left"),
}
