"""What pre-training will do for this data and device: the recipe's `SSLConfig` resolved, and the budget planned.

THE SCHEDULE RULE (its one home; `schedule` and `apply_run_options` implement it, everything else asks them):

1. ``--epochs N`` fixes the schedule. A budget given too only chooses, on a CPU ladder, the best candidate whose N
   epochs fit it; otherwise it is not used.
2. ``--weights`` without ``--epochs`` or ``--budget``: embed with the weights as they are (0 epochs).
3. ``--budget MINUTES``: `curator.ssl.budget` measures this machine and turns the budget into epochs (and, on a CPU
   ladder, a backbone and resolution) once per run (``RUN/checkpoints/budget.json``).
4. On a CPU, for images larger than digits, with nothing of the above and no backbone given: a pretrained start
   found in the library cache (`cached_start`), else the default budget `CPU_DEFAULT_BUDGET_MINUTES` over the ladder.
5. Otherwise the epochs of `curator.ssl.config.recipe_for` (the GPU recipes; the digits demo).

A recipe file's ``[ssl] epochs`` is a default: a budget or weights given for THIS run (command line or ``--set``)
replace it unless epochs are given for this run too (`apply_run_options`).

- `resolve_config(ds, cfg, device)`: the undecided (``None``) fields of `cfg` filled from the images' size, the device
  and the weights, except what a budget still has to decide.
- `plan_config(run, ds, cfg, seed=, device=)`: `resolve_config`, then the budget turned into epochs by
  `curator.ssl.budget`, recorded in the run and reused by every later command with the same request.
- `cached_start(cfg, cpu=)`: the first pretrained start whose weights are already in the library's cache (never
  downloaded): the recipe's ``ssl.cached_starts`` or, for the CPU ladder, `CPU_CACHED_STARTS`.
- `prepare_weights(cfg)`: named weights (``--weights imagenet``) located in — or, the user having named them, fetched
  into — the library cache before anything is written, so a missing file is one line and no half-written run.
"""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import torch

from curator import runfiles
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.device import select_device
from curator.rundir import RunDir
from curator.ssl import pretrained
from curator.ssl.backbones import FITTED, PREFIXES, native_preprocessing, resolve_backbone
from curator.ssl.budget import CPU_LADDER, BudgetPlan, Candidate, plan as make_plan
from curator.ssl.config import CPU_DEFAULT_BUDGET_MINUTES, SSLConfig, default_warmup, recipe_for
from curator.ssl.data import image_size_of
from curator.ssl.weights import WeightsError, checkpoint_path, read_weights

LOG = logging.getLogger(__name__)

#: pretrained starts a CPU image audit takes from the library cache before the self-supervised/patch k-means ladder,
#: cheapest first (ImageNet ResNet-18 is the model the 224-px CPU cost target is set for; issue 20)
CPU_CACHED_STARTS = ("torchvision:resnet18=imagenet", "torchvision:resnet50=imagenet",
                     "timm:efficientnet_lite0=pretrained", "openclip:ViT-B-32=laion2b_s34b_b79k")
RUN_DECIDES_EPOCHS = ("budget_minutes", "weights")   # given for a run, they replace a recipe file's epochs


@dataclass(frozen=True)
class Schedule:
    """How the number of epochs is decided (rule 1-5 of the module docstring)."""
    mode: str                      # fitted | fixed | as_is | budget | recipe
    budget_minutes: float | None   # the budget to plan with (rule 3/4), or None

    @property
    def planned(self) -> bool:
        return self.budget_minutes is not None


def schedule(cfg: SSLConfig, *, ladder: bool) -> Schedule:
    """THE rule: how `cfg`'s epochs are decided. `ladder`: a CPU run whose backbone is left to the budget."""
    if cfg.backbone in FITTED:
        return Schedule("fitted", None)
    if cfg.epochs is not None:   # on a CPU ladder a budget (given or the default) still picks the candidate
        return Schedule("fixed", (cfg.budget_minutes or CPU_DEFAULT_BUDGET_MINUTES) if ladder else None)
    if cfg.weights is not None and cfg.budget_minutes is None:
        return Schedule("as_is", None)
    if cfg.budget_minutes is not None:
        return Schedule("budget", cfg.budget_minutes)
    if ladder:
        return Schedule("budget", CPU_DEFAULT_BUDGET_MINUTES)
    return Schedule("recipe", None)


def apply_run_options(recipe: dict, given: dict) -> dict:
    """The [ssl] values of a recipe file with the values given for this run on top (the rule's last paragraph)."""
    out = {**recipe, **given}
    if set(given) & set(RUN_DECIDES_EPOCHS) and "epochs" not in given:
        out.pop("epochs", None)
    return out


# --- weights --------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _curator_meta(path: str, stamp: tuple[int, int]) -> dict | None:
    return read_weights(path)[1]


def weights_metadata(weights: str | None) -> dict | None:
    """The metadata of a curator encoder checkpoint given as --weights (None for other files and weights names)."""
    if weights is None or not pretrained.is_file(weights):
        return None
    p = checkpoint_path(weights)
    if not p.is_file():
        read_weights(p)   # the one-line error for a folder, FIFO, ...
    st = os.stat(p)
    return _curator_meta(str(p), (st.st_size, st.st_mtime_ns))


def prepare_weights(cfg: SSLConfig) -> None:
    """Check the weights before the run directory is touched: a file must be one `read_weights` accepts (safely); named
    weights must be in the library cache or, the user having named them, be fetched into it; a file for a named
    torchvision / timm / open_clip model or one of curator's ResNets must fit it (the model is built with it: these
    architectures do not depend on the data). A `WeightsError` line otherwise. (A file for the small CNNs, whose
    width the data may decide, is fitted when the pre-training stage builds the encoder.)"""
    if cfg.weights is None:
        return
    named = pretrained.resolve(cfg.backbone, cfg.weights)
    path = pretrained.fetch(named, download=True) if named is not None else cfg.weights
    fixed = (cfg.backbone or "").startswith(PREFIXES) or cfg.backbone in ("resnet18_cifar", "resnet18", "resnet50")
    if named is not None or not fixed:
        read_weights(path)
        return
    from curator.ssl.backbones import build_backbone

    build_backbone(cfg.backbone, cfg.image_size or 224, cfg.width, weights=cfg.weights, download=False)


def _parse_start(text: str) -> tuple[str, str]:
    backbone, sep, weights = text.partition("=")
    if not sep or not backbone.startswith(PREFIXES) or not weights:
        raise WeightsError(f"ssl.cached_starts: {text!r} must look like BACKBONE=WEIGHTS, "
                           "e.g. torchvision:resnet50=imagenet")
    return backbone, weights


def cached_start(cfg: SSLConfig, *, cpu: bool, native: int) -> tuple[str, str, str] | None:
    """(backbone, weights, why) of the first pretrained start whose weights are in the library cache, or None.

    Only when nothing was asked of pre-training (no backbone, weights, epochs or budget): the recipe's
    ``cached_starts`` or, on a CPU for images larger than digits, `CPU_CACHED_STARTS`. Never downloads; the
    recipe's first start, when missing, is named with the command that fetches it."""
    if cfg.backbone is not None or cfg.weights is not None or cfg.epochs is not None or cfg.budget_minutes is not None:
        return None
    starts = list(cfg.cached_starts) if cfg.cached_starts is not None else (
        list(CPU_CACHED_STARTS) if cpu and native > 16 else [])
    first_missing = None
    for text in starts:
        backbone, weights = _parse_start(text)
        if cfg.cached_starts is None and not pretrained.may_be_cached(backbone):   # a default: look without importing
            continue
        try:
            named = pretrained.resolve(backbone, weights)
        except (WeightsError, ValueError, ImportError) as exc:   # a library that is not installed, an unknown name
            LOG.debug("cached start %s: %s", text, exc)
            continue
        if named is None:
            continue
        hit = pretrained.cached(named)
        if hit is not None:
            why = (f"its weights {named.tag} are in the {backbone.split(':')[0]} cache ({hit}); a pretrained start "
                   "gives far better evidence than features learnt on a CPU from scratch")
            return backbone, weights, why
        first_missing = first_missing or named
    if first_missing is not None and cfg.cached_starts is not None:
        LOG.warning("the recipe starts from %s with --weights %s (%s) when they are in the cache, but they are not "
                    "(expected %s in %s); fetch them on a connected machine by running this command once with "
                    "--backbone %s --weights %s; falling back to %s", first_missing.backbone, first_missing.name,
                    first_missing.tag, first_missing.expected, first_missing.folder, first_missing.backbone,
                    first_missing.name, "the CPU budget ladder" if cpu and native > 16 else "the recipe's default")
    elif starts:
        LOG.info("no pretrained start in the library caches (looked for %s); using the CPU budget ladder",
                 ", ".join(starts))
    return None


# --- resolution ------------------------------------------------------------------------------------------------------
def default_image_size(backbone: str, native: int, cpu: bool) -> int:
    """Training resolution for an explicitly chosen backbone: a torchvision/timm/open_clip model's own input size;
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
    """Fill the undecided (``None``) fields of `cfg` from the data, the device and the weights, except what a budget
    still has to decide (`plan_config`). Idempotent: a resolved config comes back unchanged."""
    if not isinstance(cfg, SSLConfig):
        cfg = SSLConfig.from_dict(cfg or {})
    device = device or select_device(cfg.device)
    cpu = device.type == "cpu"
    refs = ds.train["image_ref"].to_numpy()
    native = image_size_of(ds.images, refs)
    start = cached_start(cfg, cpu=cpu, native=native)
    if start is not None:
        backbone, weights, why = start
        LOG.info("representation: %s with --weights %s as they are, because %s", backbone, weights, why)
        cfg = cfg.replace(backbone=backbone, weights=weights)
    if cfg.weights is not None and not pretrained.is_file(cfg.weights):
        pretrained.resolve(cfg.backbone, cfg.weights)   # a weights name its library knows, or one WeightsError line
    v: dict = {}
    meta = weights_metadata(cfg.weights)
    if meta is not None:
        if cfg.backbone is not None and cfg.backbone != meta["backbone"]:
            raise WeightsError(f"weights file {str(checkpoint_path(cfg.weights))!r} is a curator checkpoint of backbone "
                               f"{meta['backbone']!r}, not {cfg.backbone!r}; leave --backbone unset to use its own")
        v.update(backbone=meta["backbone"], width=cfg.width or meta.get("width"),
                 image_size=cfg.image_size or int(meta["image_size"]))
    merged = cfg.replace(**v)
    ladder = uses_ladder(merged, native, cpu)
    rule = schedule(merged, ladder=ladder)
    if rule.mode in ("as_is", "fitted"):
        v["epochs"] = 0
    if rule.mode == "fitted":
        v.update(warmup_epochs=0, knn_every=0)
    if rule.planned and merged.budget_minutes is None:
        v["budget_minutes"] = rule.budget_minutes
    for key, value in recipe_for(native, len(refs), cpu=cpu).items():
        if key not in v and getattr(merged, key) is None and not (key == "epochs" and rule.mode == "budget"):
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
