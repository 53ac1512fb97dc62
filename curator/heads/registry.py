"""The robust heads: one table of `HeadSpec`s and the one entry point `train_head`.

``train_head(name, X, y, n_classes, cfg, *, seed, meta_mask=None, device=None, results=None) -> HeadResult``

- X: (N, d) embeddings (any float dtype), or (V, N, d) several cached views (view 0 = the
  un-augmented one, used for records and probabilities); y: (N,) labels in [0, C), -1 = unlabeled;
  meta_mask: (N,) bool trusted samples, used by heads that learn from a meta set (GDW, FSR).
- Here, once for every head: the inputs are validated (`curator.heads.inputs.validate`), z-scored
  with the training statistics of view 0 (``cfg.standardize``) and moved to the device chosen by
  `curator.device.select_device` (CUDA when present). The trainer gets a `HeadData`; its model is
  wrapped in the standardisation, so ``result.model(raw_embeddings)`` gives logits.
- Heads marked ``labelled_only`` train on the labelled rows; the unlabeled rows then get the trained
  model's probabilities and NaN / -1 / False in the other outputs.
- A head with a ``teacher`` (``semi``) learns from another head's result: pass it in ``results``
  (name -> HeadResult) or it is trained first.

Adding a head: its module (a trainer ``(name, HeadData, HeadsConfig) -> HeadResult``, or an
`Objective` for the shared mini-batch trainer), its settings in `HeadsConfig` if it has any, and one line
in `HEADS` — the one table of head names — with its words and its own columns (declared into the column
contract, `curator.columns.head_columns`, when this module is imported).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from curator import columns
from curator.device import compute_threads, select_device, torch_threads
from curator.heads.base import HeadData, HeadResult
from curator.heads.cbs import train_cbs
from curator.heads.config import HeadsConfig
from curator.heads.fsr import train_fsr
from curator.heads.gdw import train_gdw
from curator.heads.inputs import StandardizedHead, standardization, standardized, validate
from curator.heads.semi import train_semi
from curator.heads.standard import (
    ClassBalanced, CrossEntropy, Focal, LDAMDRW, LogitAdjusted, LogitAdjustedSuperLoss, minibatch,
)

LOG = logging.getLogger(__name__)

Trainer = Callable[[str, HeadData, HeadsConfig], HeadResult]


@dataclass(frozen=True)
class HeadSpec:
    name: str
    train: Trainer                  # (name, standardised inputs, settings) -> result; model: standardised X -> logits
    description: str                # one line for people (`curator train --help`, docs)
    settings: tuple[str, ...]       # the HeadsConfig fields the head reads: its stage fingerprint
    labelled_only: bool = False     # trains on labelled rows only (unlabeled rows are predicted afterwards)
    meta_set: bool = False          # learns from a meta set: the trusted rows (meta_mask) when there are any
    teacher: str | None = None      # the HeadsConfig field naming the head whose result this one learns from
    words: str = ""                 # how people call it (column explanations, the explorer)
    columns: tuple[tuple[str, str, str, str], ...] = ()  # its columns besides the common four: name, direction, range, text


#: what the shared mini-batch trainer (curator.heads.train_loop.fit) and its projection head read
MINIBATCH = ("standardize", "epochs", "batch_size", "lr", "weight_decay", "hidden", "n_layers", "dropout",
             "full_epochs_up_to")
SUMMARY = ("last_epochs",)  # signal columns average the records over the last epochs

#: columns a head writes besides the common four of `curator.columns.head_columns`: (name, direction, range, explanation)
_LASL_COLUMNS = (("lasl_sigma", "higher_is_clean", "(0, e]",
              "SuperLoss confidence σ*: below 1 the sample's loss stayed above τ = log C (hard or mislabelled); "
              "mean over the last epochs."),)
_GDW_COLUMNS = (("gdw_weight", "higher_is_clean", "[0, ~1.2]",
             "GDW's instance weight ω_t of the given label (mean over the last epochs): how much the meta set wants "
             "this label learned; low on mislabelled samples."),
            ("gdw_suggested_label", "categorical", "class index",
             "The other class whose 'not this class' gradient GDW suppressed most: where the meta set thinks the "
             "sample belongs."))
_FSR_COLUMNS = (("fsr_meta_margin", "higher_is_clean", "real (≈ [−1, 1])",
             "Momentum meta-margin: how much the sample's loss falls when the model learns FSR's trusted dictionary; "
             "negative = it contradicts the dictionary."),
            ("fsr_weight", "higher_is_clean", "[0, b] (1 = average)",
             "FSR's learned sample weight relative to the batch average (mean over the last epochs); 0 = excluded."),
            ("fsr_in_dictionary", "higher_is_clean", "bool",
             "FSR picked the sample for its class-balanced dictionary of trusted samples."),
            ("fsr_pseudo_label", "categorical", "class index",
             "Argmax of FSR's momentum re-label (moving average of the head's predictions)."))
_SEMI_COLUMNS = (("semi_pseudo_label", "categorical", "class index",
              "Class given by the self-trained student, which learned the distrusted samples from the robust head's "
              "pseudo-labels."),
             ("semi_pseudo_confidence", "info", "[0, 1]", "The student's probability of its suggested class."),
             ("semi_distrusted", "info", "bool",
              "The robust head distrusted the given label, so self-training treated the sample as unlabelled."))

#: THE table of heads: one line each (name, trainer, description, settings, words, own columns)
HEADS: dict[str, HeadSpec] = {spec.name: spec for spec in (
    HeadSpec("ce", minibatch(lambda c: CrossEntropy()), "cross-entropy baseline", MINIBATCH + SUMMARY,
             words="cross-entropy head"),
    HeadSpec("la", minibatch(lambda c: LogitAdjusted()), "logit-adjusted loss (paper 000 eq. 1-2)",
             MINIBATCH + SUMMARY, words="logit-adjusted head"),
    HeadSpec("lasl", minibatch(lambda c: LogitAdjustedSuperLoss(c.sl_lambda, c.tau, c.sl_tau_momentum)),
             "LA + SuperLoss, σ* per sample (paper 000 eq. 3-4)",
             MINIBATCH + SUMMARY + ("sl_lambda", "tau", "sl_tau_momentum"), words="LA+SuperLoss head",
             columns=_LASL_COLUMNS),
    HeadSpec("cb", minibatch(lambda c: ClassBalanced(c.cb_beta)), "class-balanced loss (effective number)",
             MINIBATCH + SUMMARY + ("cb_beta",), words="class-balanced-loss head"),
    HeadSpec("focal", minibatch(lambda c: Focal(c.focal_gamma)), "focal loss", MINIBATCH + SUMMARY + ("focal_gamma",),
             words="focal-loss head"),
    HeadSpec("ldam", minibatch(lambda c: LDAMDRW(c.ldam_max_margin, c.ldam_scale, c.drw_start, c.cb_beta)),
             "LDAM with deferred re-weighting", MINIBATCH + SUMMARY + ("ldam_max_margin", "ldam_scale", "drw_start",
                                                                       "cb_beta"),
             words="LDAM-DRW head"),
    HeadSpec("cbs", train_cbs, "CBS + RRS, class-balanced classifier (paper 002)",
             MINIBATCH + SUMMARY + ("cbs_classes_per_batch", "cbs_per_class", "cbs_weight", "rrs_weight"),
             words="CBS+RRS head (class-balanced classifier)"),
    HeadSpec("semi", train_semi, "self-training relabel from a teacher head (paper 001)",
             MINIBATCH + ("semi_teacher", "semi_sigma_threshold", "semi_unlabeled_weight", "semi_min_confidence"),
             teacher="semi_teacher", words="self-training head (paper 001)", columns=_SEMI_COLUMNS),
    HeadSpec("gdw", train_gdw, "GDW, class-level gradient weights ω (paper 003)", ("standardize", "gdw", "full_epochs_up_to"),
             labelled_only=True, meta_set=True, words="GDW head (paper 003)", columns=_GDW_COLUMNS),
    HeadSpec("fsr", train_fsr, "FSR, dictionary meta-margin and sample weights (paper 004)", ("standardize", "fsr", "full_epochs_up_to"),
             labelled_only=True, meta_set=True, words="FSR head (paper 004)", columns=_FSR_COLUMNS),
)}


columns.declare([c for spec in HEADS.values() for c in columns.head_columns(spec.name, spec.words, spec.columns)])


def head_spec(name: str) -> HeadSpec:
    """The spec of head `name`; KeyError naming the known heads otherwise."""
    try:
        return HEADS[name]
    except KeyError:
        raise KeyError(f"unknown head {name!r}; known: {', '.join(HEADS)}") from None


def head_settings(name: str, cfg: HeadsConfig) -> dict[str, Any]:
    """The settings head `name` reads, field -> value (nested settings as plain dicts): what its stage
    fingerprint covers, so changing ``focal_gamma`` retrains only ``focal``."""
    out = {}
    for key in head_spec(name).settings:
        value = getattr(cfg, key)
        out[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


def teacher_of(name: str, cfg: HeadsConfig) -> str | None:
    """The head whose result head `name` learns from (``semi`` -> ``cfg.semi_teacher``), or None."""
    spec = head_spec(name)
    return getattr(cfg, spec.teacher) if spec.teacher else None


def _scatter(result: HeadResult, keep: np.ndarray, probs_rest: np.ndarray) -> HeadResult:
    """Spread a result trained on rows `keep` (N,) back to all N rows: the other rows get `probs_rest`
    in ``probs`` and NaN / -1 / False in signals, history and per-row extras."""
    n, n_keep = len(keep), int(keep.sum())

    def fill(a, axis: int) -> np.ndarray:
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
    probs[~keep] = probs_rest
    result.probs = probs
    result.signals = {k: fill(v, 0) for k, v in result.signals.items()}
    result.history = {k: fill(v, 1) for k, v in result.history.items()}
    result.extras = {k: fill(v, 0) if np.ndim(v) >= 1 and np.shape(v)[0] == n_keep else v
                     for k, v in result.extras.items()}
    return result


def train_head(name: str, X: np.ndarray, y: np.ndarray, n_classes: int, cfg: HeadsConfig | None = None, *,
               seed: int, meta_mask: np.ndarray | None = None, device: str | torch.device | None = None,
               results: dict[str, HeadResult] | None = None) -> HeadResult:
    """Train head `name` on embeddings X with labels y; see the module docstring for shapes."""
    spec = head_spec(name)
    views, y, meta_mask = validate(name, X, y, n_classes, meta_mask)
    cfg = (cfg or HeadsConfig()).for_samples(int((y >= 0).sum()))
    dev = select_device(str(device) if device is not None else None)
    t0 = time.perf_counter()
    teacher = None
    if spec.teacher:
        teacher_name = getattr(cfg, spec.teacher)
        teacher = (results or {}).get(teacher_name)
        if teacher is None:
            LOG.info("%s: training its teacher head %r first", name, teacher_name)
            teacher = train_head(teacher_name, X, y, n_classes, cfg, seed=seed, device=dev)
    mean, std = standardization(views[0], cfg.standardize)
    Z = torch.as_tensor(standardized(views, mean, std), device=dev)  # (V, N, d) standardised
    data = HeadData(Z[0], y, n_classes, seed, views=Z if Z.shape[0] > 1 else None,
                    meta_mask=meta_mask if spec.meta_set else None, teacher=teacher)
    keep = y >= 0
    with torch_threads(compute_threads(dev, Z.shape[1] * Z.shape[2])):
        if spec.labelled_only and not keep.all():
            result = spec.train(name, data.rows(keep), cfg)
            with torch.no_grad():
                rest = torch.softmax(result.model(Z[0][np.flatnonzero(~keep)]), 1)
            result = _scatter(result, keep, rest.float().cpu().numpy())
        else:
            result = spec.train(name, data, cfg)
    result.model = StandardizedHead(torch.as_tensor(mean), torch.as_tensor(std), result.model.cpu()).eval()
    result.seconds = time.perf_counter() - t0
    return result
