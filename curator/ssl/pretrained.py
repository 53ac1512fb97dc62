"""Pretrained weights by name, from the library's own cache (issue 20: "loaded the way their libraries load them").

    --backbone torchvision:NAME --weights imagenet        the weights enum's DEFAULT (or a member: IMAGENET1K_V2)
    --backbone timm:NAME        --weights pretrained      timm's ``pretrained_cfg`` (Hugging Face hub id and file)
    --backbone openclip:ARCH    --weights TAG             open_clip's pretrained tag, image tower only (extra ``openclip``)

`resolve(backbone, weights)` says what a ``--weights`` value means: an existing file (or run directory) of that name
wins and gives None (`curator.ssl.weights` loads it); otherwise a weights name known to the backbone's library gives a
`Named` — the library's identity of the weights, the file expected and the cache folder it belongs in
(torchvision: ``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``; timm and open_clip: the Hugging
Face cache, ``$HF_HOME/hub``). Anything else is a `WeightsError`.

`fetch(named, download=)` returns the cached file; when it is absent and `download` is true (the user named the weights)
it is fetched ONCE into that cache by the library's own downloader, with its progress bar and integrity check (torch
hub's hash prefix of the file name; the Hugging Face hub's checksum). Offline, or with `download` false: one
`WeightsError` line naming the model, the file expected and the folder, and the command that fetches it.

The file is then read like any weights file (`curator.ssl.weights.read_weights`: ``torch.load(weights_only=True)`` or
safetensors, never a free unpickler — the libraries' own loaders are not used because torch hub's ``torch.load``
allows pickles) and loaded with strict key checking into the model built without weights.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from curator.ssl.weights import WeightsError, checkpoint_path

LOG = logging.getLogger(__name__)

TORCHVISION_ALIASES = {"imagenet": "DEFAULT"}
TIMM_NAMES = ("pretrained",)
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
TIMM_FILES = ("model.safetensors", "pytorch_model.bin")
BUILDER_REWRITES = ("densenet", "googlenet", "inception_v3")   # torchvision builders that change weights while loading
FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".tar")   # a --weights value with one is a file


@dataclass(frozen=True)
class Named:
    """Weights named for a library model, and where that library keeps them."""
    backbone: str            # torchvision:resnet18 | timm:resnet18 | openclip:ViT-B-32
    name: str                # what the user wrote: imagenet | IMAGENET1K_V2 | pretrained | laion2b_s34b_b79k
    tag: str                 # the library's identity: ResNet18_Weights.IMAGENET1K_V1 | timm/resnet18.a1_in1k | ...
    folder: str              # the cache folder the file belongs in
    files: tuple[str, ...]   # the file name(s) expected there (the first found is used)
    url: str | None = None   # torchvision: the download URL (torch hub)
    repo: str | None = None  # timm / open_clip: the Hugging Face repository
    mean: tuple[float, ...] | None = None   # open_clip: the normalisation these weights were trained with
    std: tuple[float, ...] | None = None

    @property
    def expected(self) -> str:
        return " or ".join(self.files)

    def fetch_command(self) -> str:
        return f"curator embed --backbone {self.backbone} --weights {self.name} ..."


def _library(backbone: str) -> str:
    return backbone.split(":", 1)[0] if ":" in backbone else ""


def is_file(weights: str) -> bool:
    """True when `weights` names something on disk (a file wins over a weights name)."""
    return os.path.lexists(checkpoint_path(weights))


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def may_be_cached(backbone: str) -> bool:
    """False when the library cache surely lacks weights for `backbone` — checked without importing the library (timm
    takes seconds to import), for the defaults that look for a cached start on every run."""
    if backbone.startswith("timm:"):
        arch = backbone.split(":", 1)[1].split(".", 1)[0]
        return any(Path(hf_cache_dir()).glob(f"models--timm--{arch}*"))
    return True


def _hf_folder(repo: str) -> str:
    return str(Path(hf_cache_dir()) / ("models--" + repo.replace("/", "--")))


def _torchvision(backbone: str, weights: str) -> Named:
    import torchvision

    arch = backbone.split(":", 1)[1]
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        raise WeightsError(f"{backbone} has no published torchvision weights; pass a weights FILE") from None
    members = [m for m in enum.__members__ if m != "DEFAULT"]
    key = TORCHVISION_ALIASES.get(weights.lower(), weights)
    match = [m for m in enum.__members__ if m.lower() == key.lower()]
    if not match:
        raise WeightsError(f"--weights {weights!r}: no file of that name, and not a torchvision weights name of "
                           f"{arch} (imagenet = DEFAULT, or one of {', '.join(members)})")
    member = enum[match[0]]
    if arch.startswith(BUILDER_REWRITES):
        raise WeightsError(f"{backbone}: torchvision's builder rewrites the {member.name} weights as it loads them (key "
                           "names, or an input transform the model applies itself), which curator's safe loader does "
                           "not repeat; pass a state dict FILE saved from the loaded model, or choose another model")
    folder = str(Path(_torch_hub_dir()) / "checkpoints")
    return Named(backbone, weights, f"{type(member).__name__}.{member.name}", folder,
                 (os.path.basename(member.url),), url=member.url)


def _torch_hub_dir() -> str:
    import torch

    return torch.hub.get_dir()


def _timm(backbone: str, weights: str, model) -> Named:
    if weights.lower() not in TIMM_NAMES:
        raise WeightsError(f"--weights {weights!r}: no file of that name; timm weights are named 'pretrained' "
                           f"(timm's pretrained_cfg of {backbone.split(':', 1)[1]})")
    if model is None:
        import timm

        model = timm.create_model(backbone.split(":", 1)[1], pretrained=False)
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    repo = cfg.get("hf_hub_id")
    if not repo:
        raise WeightsError(f"{backbone}: timm's pretrained_cfg names no Hugging Face hub weights; pass a weights FILE")
    repo = repo.split("@", 1)[0]
    files = (cfg["hf_hub_filename"],) if cfg.get("hf_hub_filename") else TIMM_FILES
    return Named(backbone, weights, repo, _hf_folder(repo), files, repo=repo)


def _open_clip(backbone: str, weights: str) -> Named:
    import open_clip   # present: the backbone name was checked

    arch = backbone.split(":", 1)[1]
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if weights.lower().replace("-", "_") not in tags:
        raise WeightsError(f"--weights {weights!r}: no file of that name, and not an open_clip pretrained tag of {arch} "
                           f"({', '.join(tags) or 'none'})")
    cfg = open_clip.get_pretrained_cfg(arch, weights)
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise WeightsError(f"{backbone} {weights}: open_clip names no Hugging Face hub file for these weights; "
                           "choose a tag hosted on the hub")
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    if filename:
        safe = re.sub(r"\.(bin|pth)$", ".safetensors", filename)
        files = tuple(dict.fromkeys((safe, filename)))
    else:
        files = OPEN_CLIP_FILES
    mean, std = cfg.get("mean"), cfg.get("std")
    return Named(backbone, weights, f"{repo} ({weights})", _hf_folder(repo), files, repo=repo,
                 mean=tuple(float(x) for x in mean) if mean else None, std=tuple(float(x) for x in std) if std else None)


def resolve(backbone: str | None, weights: str | None, model=None) -> Named | None:
    """None when `weights` is None or names something on disk; the `Named` weights otherwise (`WeightsError` when the
    value is neither a file nor a weights name of `backbone`'s library). `model`: the timm model, when built already."""
    if weights is None or is_file(weights):
        return None
    if os.sep in weights or "/" in weights or Path(weights).suffix in FILE_SUFFIXES:   # meant as a file
        raise WeightsError(f"weights file {str(checkpoint_path(weights))!r} does not exist")
    lib = _library(backbone or "")
    if lib == "torchvision":
        return _torchvision(backbone, weights)
    if lib == "timm":
        return _timm(backbone, weights, model)
    if lib == "openclip":
        return _open_clip(backbone, weights)
    raise WeightsError(f"weights file {str(checkpoint_path(weights))!r} does not exist (weights by name need "
                       "--backbone torchvision:NAME, timm:NAME or openclip:ARCH)")


def cached(named: Named) -> Path | None:
    """The file in the library's cache, or None; never touches the network."""
    if named.url is not None:
        p = Path(named.folder) / named.files[0]
        return p if os.path.lexists(p) else None
    from huggingface_hub import try_to_load_from_cache

    for f in named.files:
        hit = try_to_load_from_cache(named.repo, f, cache_dir=hf_cache_dir())
        if isinstance(hit, str):
            return Path(hit)
    return None


def _download(named: Named) -> Path:
    if named.url is not None:
        import torch
        from torch.hub import HASH_REGEX

        dst = Path(named.folder) / named.files[0]
        dst.parent.mkdir(parents=True, exist_ok=True)
        m = HASH_REGEX.search(named.files[0])
        LOG.info("downloading %s weights %s from %s into %s", named.backbone, named.tag, named.url, named.folder)
        torch.hub.download_url_to_file(named.url, str(dst), m.group(1) if m else None, progress=True)
        return dst
    import huggingface_hub

    last: Exception | None = None
    for f in named.files:
        LOG.info("downloading %s weights %s (%s) from the Hugging Face hub into %s", named.backbone, named.tag, f,
                 hf_cache_dir())
        try:
            return Path(huggingface_hub.hf_hub_download(named.repo, f, cache_dir=hf_cache_dir()))
        except getattr(huggingface_hub.errors, "RemoteEntryNotFoundError", huggingface_hub.errors.EntryNotFoundError) as exc:   # the repository has the other file
            last = exc
    raise last if last is not None else FileNotFoundError(named.expected)


def fetch(named: Named, *, download: bool) -> Path:
    """The cached file of `named`, downloaded first when absent and `download`; else a one-line `WeightsError`."""
    hit = cached(named)
    if hit is not None:
        LOG.info("%s weights %s (--weights %s): %s from the cache", named.backbone, named.tag, named.name, hit)
        return hit
    where = (f"{named.backbone} weights {named.tag} (--weights {named.name}) are not in the cache: expected "
             f"{named.expected} in {named.folder}")
    if not download:
        raise WeightsError(f"{where}; fetch them on a connected machine with `{named.fetch_command()}`")
    try:
        path = _download(named)
    except Exception as exc:  # noqa: BLE001 - network, HTTP, hash and hub errors all mean the same here
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        other = ("copy the file there" if named.url is not None
                 else "point HF_HOME at a Hugging Face cache that holds them")
        raise WeightsError(f"{where}, and the download failed ({type(exc).__name__}: {why}); fetch them on a "
                           f"connected machine with `{named.fetch_command()}` or {other}") from None
    LOG.info("%s weights %s saved to %s", named.backbone, named.tag, path)
    return path


def source(backbone: str | None, weights: str | None) -> tuple[Named | None, str | None]:
    """(the named weights or None, the file the weights come from; None when there are none or they are not cached)."""
    if weights is None:
        return None, None
    named = resolve(backbone, weights)
    if named is None:
        return None, str(checkpoint_path(weights))
    hit = cached(named)
    return named, str(hit) if hit is not None else None


def fingerprint(backbone: str | None, weights: str | None) -> dict:
    """What identifies the weights a run starts from (part of the stage fingerprints): the file's content, and for
    named weights the library's identity of them."""
    from curator.rundir import file_fingerprint

    named, path = source(backbone, weights)
    out = {"weights_file": file_fingerprint(path)} if path is not None and os.path.isfile(path) else {}
    if named is not None:
        out["weights_named"] = named.tag
    return out
