"""Head registry: name -> trainer, and the one public entry point `train_head`.

``train_head(name, X, y, n_classes, cfg, *, meta_mask=None, seed=0, device=None) -> HeadResult``

- X: (N, d) embeddings (any float dtype), or (V, N, d) several cached views (view 0 = the
  un-augmented one, used for records and probabilities); y: (N,) labels in [0, C), -1 = unlabeled.
- Validation happens here once; the embeddings are standardised with training-set statistics
  (kept inside the returned model, so ``result.model(raw_embeddings)`` gives logits) and moved to
  the device chosen by `curator.device.select_device`.
- ``gdw`` and ``fsr`` are imported lazily from `curator.heads.gdw` / `curator.heads.fsr` (another
  engineer's modules) and called as ``train_gdw(X, y, n_classes, *, cfg=cfg.gdw (a dict),
  meta_mask=..., seed=..., device=...)`` (``cfg.fsr`` for FSR) on the raw view-0 embeddings of the
  labelled rows (those trainers standardise themselves; their model takes raw embeddings).
- ``semi`` needs a teacher head (``cfg.semi_teacher``, default ``lasl``): pass its result in
  ``results`` or it is trained first.
"""
from __future__ import annotations

import importlib
import logging
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from curator.device import select_device
from curator.heads.base import HeadResult
from curator.heads.config import HeadsConfig

LOG = logging.getLogger(__name__)

STANDARD = ("ce", "la", "lasl", "cb", "focal", "ldam")
EXTERNAL = {"gdw": ("curator.heads.gdw", "train_gdw"), "fsr": ("curator.heads.fsr", "train_fsr")}
HEAD_NAMES = (*STANDARD, "cbs", "semi", *EXTERNAL)


class StandardizedHead(nn.Module):
    """z-scores raw embeddings with the training statistics, then applies the trained head. (N, d) -> (N, C)"""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, head: nn.Module):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((x.to(self.mean.dtype) - self.mean) / self.std)


def _trainer(name: str) -> Callable:
    if name in STANDARD:
        from curator.heads.standard import train_standard

        return lambda X, y, C, cfg, seed, views, **_: train_standard(name, X, y, C, cfg, seed=seed, views=views)
    if name == "cbs":
        from curator.heads.cbs import train_cbs

        return lambda X, y, C, cfg, seed, views, **_: train_cbs(X, y, C, cfg, seed=seed, views=views)
    if name == "semi":
        from curator.heads.semi import train_semi

        return lambda X, y, C, cfg, seed, views, teacher, **_: train_semi(X, y, C, cfg, teacher, seed=seed, views=views)
    raise KeyError(name)


def external_available(name: str) -> bool:
    """True when the module of an external head (gdw, fsr) can be imported."""
    module, _ = EXTERNAL[name]
    try:
        importlib.import_module(module)
        return True
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return False
        raise


#: name -> "where it comes from" (for `curator train --help` and docs)
HEADS: dict[str, str] = {
    "ce": "cross-entropy baseline", "la": "logit-adjusted loss (paper 000 eq. 1-2)",
    "lasl": "LA + SuperLoss (paper 000 eq. 3-4)", "cb": "class-balanced loss (effective number)",
    "focal": "focal loss", "ldam": "LDAM with deferred re-weighting", "cbs": "CBS + RRS (paper 002)",
    "semi": "self-training relabel (paper 001)", "gdw": "GDW (paper 003)", "fsr": "FSR (paper 004)",
}


def _validate(name: str, X: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if name not in HEADS:
        raise KeyError(f"unknown head {name!r}; known: {', '.join(HEADS)}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or y.ndim != 1 or X.shape[1] != y.shape[0]:
        raise ValueError(f"{name}: embeddings must be (N, d) or (V, N, d) and labels (N,); got {X.shape} and {y.shape}")
    if n_classes < 2:
        raise ValueError(f"{name}: need at least 2 classes, got {n_classes}")
    bad = np.flatnonzero((y < -1) | (y >= n_classes))
    if bad.size:
        raise ValueError(f"{name}: sample {int(bad[0])} has label {int(y[bad[0]])} outside [-1, {n_classes}) "
                         f"({bad.size} such samples)")
    finite = np.isfinite(X).all(axis=(0, 2))
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{name}: embedding row {row} contains NaN or inf ({int((~finite).sum())} such rows)")
    if (y >= 0).sum() < 2:
        raise ValueError(f"{name}: need at least 2 labelled samples")
    return X.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


def _expand(result: HeadResult, keep: np.ndarray, n: int, X0_raw: np.ndarray) -> HeadResult:
    """Scatter a result trained on rows `keep` back to all n rows (unlabeled rows: NaN / -1 / False)."""
    def fill(a: np.ndarray, axis: int) -> np.ndarray:
        a = np.asarray(a)
        shape = list(a.shape)
        shape[axis] = n
        if a.dtype == bool:
            out = np.zeros(shape, bool)
        elif np.issubdtype(a.dtype, np.integer):
            out = np.full(shape, -1, a.dtype)
        else:
            out = np.full(shape, np.nan, a.dtype)
        idx = [slice(None)] * a.ndim
        idx[axis] = keep
        out[tuple(idx)] = a
        return out

    probs = fill(result.probs, 0)
    if result.model is not None and (~keep).any():
        with torch.no_grad():
            dev = next(result.model.parameters()).device
            logits = result.model(torch.as_tensor(X0_raw[~keep], device=dev))
            probs[~keep] = torch.softmax(logits, 1).float().cpu().numpy()
    result.probs = probs
    result.signals = {k: fill(v, 0) for k, v in result.signals.items()}
    result.history = {k: fill(v, 1) for k, v in result.history.items()}
    result.extras = {k: fill(v, 0) if np.ndim(v) >= 1 and np.shape(v)[0] == keep.sum() else v
                     for k, v in result.extras.items()}
    return result


def train_head(name: str, X: np.ndarray, y: np.ndarray, n_classes: int, cfg: HeadsConfig | None = None, *,
               meta_mask: np.ndarray | None = None, seed: int = 0, device: str | torch.device | None = None,
               results: dict[str, HeadResult] | None = None) -> HeadResult:
    """Train head `name` on embeddings X with labels y; see the module docstring for shapes."""
    cfg = cfg or HeadsConfig()
    Xv, y = _validate(name, X, y, n_classes)
    dev = select_device(str(device) if device is not None else None)
    t0 = time.perf_counter()
    if name in EXTERNAL:
        module, fn = EXTERNAL[name]
        if not external_available(name):
            raise ModuleNotFoundError(f"head {name!r} needs {module}, which is not installed in this tree",
                                      name=module)
        trainer = getattr(importlib.import_module(module), fn)
        keep = y >= 0
        mm = None if meta_mask is None else np.asarray(meta_mask, bool)[keep]
        result = trainer(Xv[0][keep], y[keep], n_classes, cfg=dict(getattr(cfg, name)), meta_mask=mm, seed=seed,
                         device=dev)
        if not keep.all():
            result = _expand(result, keep, len(y), Xv[0])
    else:
        mean = Xv[0].mean(0, dtype=np.float64).astype(np.float32) if cfg.standardize else np.zeros(Xv.shape[2], np.float32)
        std = Xv[0].std(0, dtype=np.float64).astype(np.float32) if cfg.standardize else np.ones(Xv.shape[2], np.float32)
        std = np.where(std > 1e-6, std, 1.0).astype(np.float32)  # constant features: leave unscaled
        Z = torch.as_tensor((Xv - mean) / std, device=dev)  # (V, N, d) standardised
        teacher = None
        if name == "semi":
            teacher = (results or {}).get(cfg.semi_teacher)
            if teacher is None:
                LOG.info("semi: training its teacher head %r first", cfg.semi_teacher)
                teacher = train_head(cfg.semi_teacher, X, y, n_classes, cfg, seed=seed, device=dev)
        result = _trainer(name)(Z[0], y, n_classes, cfg, seed=seed, views=Z if Z.shape[0] > 1 else None,
                                teacher=teacher)
        result.model = StandardizedHead(torch.as_tensor(mean), torch.as_tensor(std), result.model.cpu()).eval()
    result.seconds = time.perf_counter() - t0
    return result
