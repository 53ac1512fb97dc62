"""Embedding extraction (SPEC §4): backbone features of every sample, N x d float16.

The plain view (no augmentation, resized to the training resolution and normalised as in training)
gives ``embeddings.npy``. Under torchrun each rank embeds a contiguous block of rows and rank 0 gathers
them (`curator.ssl.distributed.gather_rows`). `save_backbone` / `load_backbone` write and read
``RUN/checkpoints/backbone.pt`` (tensors, numbers, strings, lists and dicts only; loaded with
``torch.load(weights_only=True)``); that file is also what ``--weights`` accepts from an earlier run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from curator.ssl.augment import AugmentRecipe, plain_view
from curator.ssl.backbones import build_backbone
from curator.ssl.data import BatchSource
from curator.ssl.distributed import DistInfo, contiguous_block, gather_rows
from curator.ssl.weights import WeightsError, check_tensors

LOG = logging.getLogger(__name__)


def autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def extract_features(backbone: nn.Module, batches: BatchSource, positions: np.ndarray, rec: AugmentRecipe, size: int,
                     device: torch.device, *, amp: bool = True, channels_last: bool = False,
                     batch_size: int = 1024) -> torch.Tensor:
    """Features of the rows at `positions`: (len(positions), d) float32 on `device`.

    Each image is the plain view (resized to `size`, normalised as `rec`), as embeddings are. `batch_size` is the
    batch at 32 px; larger images get proportionally fewer per batch (at most 1024 · 32² pixels on a CPU, 16× that
    on a GPU, at least 32 images), so memory stays bounded: ResNet-18 at 224 px in batches of 1024 peaked at 7.9 GiB
    on the CPU.
    """
    was_training = backbone.training
    backbone.eval()
    pixels = (1024 if device.type == "cpu" else 16_384) * 32 * 32
    batch_size = max(1, min(batch_size, max(32, pixels // (size * size))))
    chunks = [positions[i:i + batch_size] for i in range(0, len(positions), batch_size)]
    out = []
    for x in batches.batches(chunks):
        v = plain_view(x, rec, size)
        if channels_last:
            v = v.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            out.append(backbone(v).float())
    backbone.train(was_training)
    if not out:
        return torch.zeros(0, 0, device=device)
    return torch.cat(out)


def embed_rows(backbone: nn.Module, batches: BatchSource, n_rows: int, rec: AugmentRecipe, size: int,
               device: torch.device, *, info: DistInfo = DistInfo(), usable: np.ndarray | None = None,
               amp: bool = True, channels_last: bool = False, batch_size: int = 1024) -> np.ndarray:
    """(N, d) float16 plain-view embeddings. Rows marked unusable (undecodable images under on_bad=skip) are
    zero. Every rank returns the gathered array."""
    block = contiguous_block(n_rows, info.rank, info.world)
    local = extract_features(backbone, batches, block, rec, size, device, amp=amp, channels_last=channels_last,
                             batch_size=batch_size)
    plain = gather_rows(local, n_rows, info).cpu().numpy()
    if usable is not None and not usable.all():
        plain[~usable] = 0
    return plain.astype(np.float16)


def save_backbone(path: Path, backbone: nn.Module, *, name: str, width: int | None, feat_dim: int, image_size: int,
                  method: str, rec: AugmentRecipe, weights: str | None = None, epochs: int | None = None) -> None:
    """Write the trained encoder with what is needed to rebuild it (atomic)."""
    from curator.rundir import atomic_path

    payload = {"backbone_state": {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()},
               "backbone": name, "width": width, "feat_dim": feat_dim, "image_size": image_size,
               "method": method, "recipe": dataclasses.asdict(rec), "weights": weights, "epochs": epochs}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_backbone(path: Path, device: torch.device) -> tuple[nn.Module, dict]:
    """Rebuild the encoder saved by `save_backbone`; returns (backbone on device, metadata).

    Loaded with ``torch.load(weights_only=True)``: a damaged or crafted file is a `DataError`
    naming it, never unpickled freely."""
    import pickle

    from curator.data.problems import DataError

    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"encoder checkpoint {str(path)!r} cannot be loaded safely ({first}); delete it to train "
                        "the encoder again") from None
    if not isinstance(meta, dict) or "backbone_state" not in meta:
        raise DataError(f"encoder checkpoint {str(path)!r} is not one curator wrote; delete it to train the encoder again")
    try:
        check_tensors(dict(meta["backbone_state"]), f"encoder checkpoint {str(path)!r}")
        rec = meta["recipe"]
        mean, std = [float(v) for v in rec["mean"]], [float(v) for v in rec["std"]]
        size, width = meta["image_size"], meta["width"]
        if len(mean) != 3 or len(std) != 3 or not all(0 < s < 1e3 and abs(m) < 1e3 for m, s in zip(mean, std)):
            raise ValueError(f"recipe mean {mean} / std {std} are not three finite values with std > 0")
        if not isinstance(size, int) or not 1 <= size <= 4096 or not (width is None or isinstance(width, int)):
            raise ValueError(f"image_size {size!r} / width {width!r} are not sizes")
        backbone, _ = build_backbone(meta["backbone"], size, width)
        backbone.load_state_dict(meta["backbone_state"])
        meta["recipe"] = AugmentRecipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in rec.items()})
    except (WeightsError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"encoder checkpoint {str(path)!r} is not a usable encoder ({first}); delete it to train "
                        "the encoder again") from None
    return backbone.to(device), meta
