"""A time budget for pre-training, turned into a number of epochs once (SPEC §4, "a budget, not a guess").

`plan(...)` measures how fast this machine trains (a few optimizer steps on random images of the right
shape, so it does not depend on which images come first) and how fast it embeds, and chooses the number of
epochs whose cosine schedule, with its kNN monitor passes, completes inside the budget. On a CPU with the
backbone left to curator, it walks a ladder of (backbone, resolution) candidates from the best to the
cheapest and takes the first self-supervised one that affords a real schedule (`MIN_CPU_EPOCHS`); when none
does, it takes the last rung, patch k-means features (`curator.ssl.patch_kmeans`), which are fitted in about
a minute and beat a self-supervised CNN trained for minutes on a CPU (measured: docs/ssl.md). Epochs are rounded down to a
"nice" number (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, ...), so small differences in load give the same plan.

The plan and the measurements behind it are a `BudgetPlan` that the caller records in the run
(``RUN/checkpoints/budget.json``) and reuses: measurements are keyed by what they depend on (device,
threads, method, batch size, candidate), so a second run with the same command reuses the same epochs,
and a run with a larger budget re-plans from the recorded speeds without measuring again.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from curator.config import check_range, check_type
from curator.ssl.config import SSLConfig, default_warmup

LOG = logging.getLogger(__name__)

NICE = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500,
        600, 800)
MAX_EPOCHS = 800          # paper 000 trains SimSiam for 800 epochs; more is not planned
MIN_CPU_EPOCHS = 200      # a self-supervised CPU candidate must afford this many epochs (a SimSiam CIFAR schedule)
MONITOR_PASSES = 4        # kNN monitor runs per schedule (knn_every = epochs / 4)


@dataclass(frozen=True)
class Candidate:
    backbone: str
    image_size: int
    width: int | None = None

    @property
    def key(self) -> str:
        return f"{self.backbone}@{self.image_size}" + (f"/w{self.width}" if self.width else "")


#: what a CPU may use, best first (measured on 2 cores, docs/ssl.md); the budget picks one. The last rung is
#: fitted (no epochs) and always affordable: ~1 minute for 10,000 images at 32 px on 2 cores.
CPU_LADDER = (
    Candidate("resnet18_cifar", 32),
    Candidate("tiny_cnn", 32, 32),
    Candidate("patch_kmeans", 32, 128),
)


@dataclass
class BudgetPlan:
    budget_minutes: float
    epochs: int
    backbone: str
    image_size: int
    width: int | None
    knn_every: int
    warmup_epochs: int
    seconds_per_epoch: float          # estimated training time of one epoch
    estimated_minutes: float          # training + monitor, estimated
    reason: str
    measurements: dict[str, dict[str, float]] = field(default_factory=dict)   # candidate key -> speeds
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BudgetPlan":
        """The plan recorded in RUN/checkpoints/budget.json; `ValueError` naming the field when a value is not
        what a plan holds (wrong type, negative or absurd epochs), so the caller plans again."""
        if not isinstance(d, dict):
            raise ValueError(f"plan holds {type(d).__name__}, not a record")
        hints = typing.get_type_hints(cls)
        values = {k: check_type(v, hints[k], f"plan.{k}") for k, v in d.items() if k in hints}
        for name, high in (("epochs", 100_000), ("image_size", 4096), ("knn_every", 100_000), ("warmup_epochs", 100_000)):
            if name in values:
                check_range(f"plan.{name}", values[name], 0 if name != "image_size" else 1, high)
        for name in ("seconds_per_epoch", "estimated_minutes", "budget_minutes"):
            if name in values and values[name] < 0:
                raise ValueError(f"plan.{name} is negative ({values[name]})")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"plan: {exc}") from None


def nice_floor(x: float) -> int:
    """The largest 'nice' epoch count <= x (0 when x < 1)."""
    ok = [n for n in NICE if n <= x]
    return ok[-1] if ok else 0


def measure(cfg: SSLConfig, cand: Candidate, device: torch.device, *, batch: int, seed: int,
            max_seconds: float = 20.0, need_images_per_s: float | None = None) -> dict[str, float]:
    """Training and embedding speed (images/s) of `cfg` with candidate `cand` on `device`.

    A few optimizer steps on random uint8 images of the candidate's size (one warm-up step, then timed
    steps until `max_seconds` or 8 steps), then a few no-grad forward passes of the plain view. When even
    three times the warm-up step's speed stays below `need_images_per_s`, the candidate is rejected at once
    (``rejected`` in the result; its speeds are the warm-up step's)."""
    from curator.ssl.augment import Augmenter, plain_view
    from curator.ssl.embed import autocast
    from curator.ssl.train import build_method, make_optimizer, uses_channels_last

    c = cfg.replace(backbone=cand.backbone, image_size=cand.image_size, width=cand.width or cfg.width)
    torch.manual_seed(seed)
    method, rec, _ = build_method(c, cand.image_size, load_weights=False)   # speed does not depend on the weights
    method = method.to(device)
    cl = uses_channels_last(c, device, cand.backbone)
    if cl:
        method = method.to(memory_format=torch.channels_last)
    opt = make_optimizer(method, c)
    aug = Augmenter(rec, cand.image_size)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    x = torch.randint(0, 256, (batch, 3, cand.image_size, cand.image_size), dtype=torch.uint8, device=device,
                      generator=g)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step() -> None:
        views = aug.views(x, g, method.n_views)
        if cl:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        with autocast(device, c.amp):
            loss = method(views)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    method.train()
    t0 = time.perf_counter()
    step()
    sync()
    warm = time.perf_counter() - t0
    if need_images_per_s is not None and 3 * batch / warm < need_images_per_s:
        return {"train_images_per_s": round(batch / warm, 2), "embed_images_per_s": round(4 * batch / warm, 2),
                "probe_batch": batch, "probe_steps": 0, "rejected": True}
    times = []
    t_all = time.perf_counter()
    while len(times) < 8 and (len(times) < 2 or time.perf_counter() - t_all < max_seconds):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    train_ips = batch / float(np.median(times))
    method.eval()
    ftimes = []
    with torch.no_grad():
        for i in range(3):
            t0 = time.perf_counter()
            v = plain_view(x, rec, cand.image_size)
            if cl:
                v = v.contiguous(memory_format=torch.channels_last)
            with autocast(device, c.amp):
                method.backbone(v)
            sync()
            if i:
                ftimes.append(time.perf_counter() - t0)
    return {"train_images_per_s": round(train_ips, 2), "embed_images_per_s": round(batch / float(np.median(ftimes)), 2),
            "probe_batch": batch, "probe_steps": len(times)}


def affordable(budget_s: float, n_train: int, n_monitor: int, speed: dict[str, float], *, monitor: bool) -> tuple[int, float]:
    """(nice number of epochs that fit `budget_s`, seconds per epoch) at the measured `speed`."""
    epoch_s = n_train / speed["train_images_per_s"]
    monitor_s = (n_monitor / speed["embed_images_per_s"]) * MONITOR_PASSES if monitor else 0.0
    return min(MAX_EPOCHS, nice_floor((budget_s - monitor_s) / epoch_s)), epoch_s


def plan(cfg: SSLConfig, *, budget_minutes: float, n_train: int, n_monitor: int, device: torch.device, seed: int,
         candidates: list[Candidate], fixed_epochs: int | None = None, previous: BudgetPlan | None = None,
         monitor: bool = True) -> BudgetPlan:
    """Choose epochs (and a candidate, when there are several) for `budget_minutes` of pre-training.

    `candidates`: one (backbone and size fixed) or the CPU ladder, best first. `fixed_epochs`: the epochs are
    given (``--epochs``); only the candidate is chosen (the best one whose schedule fits). `previous`: a
    recorded plan whose measurements are reused when their context matches."""
    batch = int(cfg.batch_size)
    context = {"device": device.type, "threads": torch.get_num_threads(), "method": cfg.method, "batch_size": batch,
               "head_dim": cfg.head_dim, "amp": cfg.amp, "channels_last": cfg.channels_last,
               "fuse_views": cfg.fuse_views, "weights": cfg.weights is not None}
    known = dict(previous.measurements) if previous is not None and previous.context == context else {}
    budget_s = budget_minutes * 60.0
    probe = batch if device.type == "cuda" else min(batch, 32)
    from curator.ssl.backbones import FITTED

    # with --epochs given only trainable candidates count; otherwise a fitted rung ends the ladder
    ladder = [c for c in candidates if c.backbone not in FITTED] if fixed_epochs is not None else list(candidates)
    if not ladder:
        raise ValueError("no trainable candidate for a fixed number of epochs")
    chosen = None
    for i, cand in enumerate(ladder):
        if cand.backbone in FITTED:   # nothing to train: always affordable
            chosen = (cand, 0, 0.0)
            break
        last = i == len(ladder) - 1
        need = (((MIN_CPU_EPOCHS if fixed_epochs is None else fixed_epochs) * n_train / budget_s)
                if len(ladder) > 1 and not last else None)   # below this speed the next rung is taken
        seen = known.get(cand.key)
        if seen is None or (seen.get("rejected") and (need is None or 3 * seen["train_images_per_s"] >= need)):
            t0 = time.perf_counter()
            small = need is not None and device.type == "cpu"   # a rung that may be skipped: probe with few images
            known[cand.key] = measure(cfg, cand, device, batch=8 if small else probe, seed=seed, need_images_per_s=need)
            LOG.info("budget: %s trains %s%.3g images/s, embeds %.3g images/s on %s (measured in %.1f s)", cand.key,
                     "< " if known[cand.key].get("rejected") else "", known[cand.key]["train_images_per_s"],
                     known[cand.key]["embed_images_per_s"], device.type, time.perf_counter() - t0)
        epochs, epoch_s = affordable(budget_s, n_train, n_monitor, known[cand.key], monitor=monitor)
        if fixed_epochs is not None:
            if fixed_epochs * epoch_s <= budget_s or last:
                chosen = (cand, fixed_epochs, epoch_s)
                break
        elif len(ladder) == 1 or epochs >= MIN_CPU_EPOCHS or last:
            chosen = (cand, max(epochs, 1), epoch_s)
            break
    cand, epochs, epoch_s = chosen
    skipped = [c.key for c in ladder[:ladder.index(cand)]]
    if cand.backbone in FITTED:
        speeds = ", ".join(f"{k}: {known[k]['train_images_per_s']:.0f} images/s" for k in skipped)
        why = (f"no self-supervised candidate affords {MIN_CPU_EPOCHS} epochs of {n_train} images in "
               f"{budget_minutes:g} min ({speeds}); fitting {cand.key} instead (no epochs)")
        return BudgetPlan(budget_minutes=budget_minutes, epochs=0, backbone=cand.backbone, image_size=cand.image_size,
                          width=cand.width, knn_every=0, warmup_epochs=0, seconds_per_epoch=0.0,
                          estimated_minutes=0.0, reason=why, measurements=known, context=context)
    speed = known[cand.key]
    knn_every = max(1, math.ceil(epochs / MONITOR_PASSES)) if monitor else 0
    est = (epochs * epoch_s + (math.ceil(epochs / max(knn_every, 1)) * n_monitor / speed["embed_images_per_s"]
                               if monitor else 0.0)) / 60.0
    if fixed_epochs is not None:
        why = (f"--epochs {fixed_epochs} given; {cand.key} is the best candidate whose schedule fits "
               f"{budget_minutes:g} min" if fixed_epochs * epoch_s <= budget_s
               else f"--epochs {fixed_epochs} given; even the cheapest candidate {cand.key} needs ~{est:.1f} min")
    else:
        rate = speed["train_images_per_s"]
        why = (f"{budget_minutes:g} min at {rate:.0f} training images/s ({epoch_s:.1f} s per epoch of {n_train} images) "
               f"affords {epochs} epoch{'s' if epochs != 1 else ''} of {cand.key}")
        if skipped:
            why += f"; better candidates ({', '.join(skipped)}) afford fewer than {MIN_CPU_EPOCHS} epochs"
        if epochs == 1 and affordable(budget_s, n_train, n_monitor, speed, monitor=monitor)[0] < 1:
            why += "; the budget does not even cover one epoch: 1 epoch is trained"
    return BudgetPlan(budget_minutes=budget_minutes, epochs=int(epochs), backbone=cand.backbone,
                      image_size=cand.image_size, width=cand.width, knn_every=knn_every,
                      warmup_epochs=default_warmup(int(epochs)), seconds_per_epoch=round(epoch_s, 2),
                      estimated_minutes=round(est, 2), reason=why, measurements=known, context=context)
