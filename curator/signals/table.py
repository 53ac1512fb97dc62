"""The signals table: one row per training sample, one column per signal (SPEC §5, §10).

Columns, in order: ``sample_id``, ``label``, ``true_label`` (−1 unknown); then every head's
``signals`` columns (already named ``<head>_<quantity>``; ``<head>_prob_label`` and
``<head>_pred`` are derived from the head's ``probs`` when the head did not supply them); then the
kNN columns (`curator.signals.agreement`) and the confident-learning columns
(`curator.signals.confident`). Every column is declared in `curator.columns` (checked on build).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from curator.heads.base import HeadResult
from curator.signals.agreement import knn_agreement, near_duplicates
from curator.signals.config import SignalsConfig
from curator.signals.confident import confident_learning, cross_val_probs
from curator.signals.knn import build_index
from curator.columns import check_columns

LOG = logging.getLogger(__name__)

ID_COLUMNS = ["sample_id", "label", "true_label"]


@dataclass
class KnnGraph:
    """Self-excluded kNN graph of the training rows: sims/indices (N, k), and how it was computed."""

    similarities: np.ndarray   # (N, k) float32 cosine, best first
    indices: np.ndarray        # (N, k) int64 positions among the training rows
    info: dict


def compute_knn(embeddings: np.ndarray, cfg: SignalsConfig) -> KnnGraph:
    """Self-kNN (k = cfg.k) of the embeddings with the backend `build_index` chooses."""
    k = min(cfg.k, len(embeddings) - 1)
    index = build_index(embeddings, exact_max_n=cfg.knn_exact_max_n, target_recall=cfg.knn_target_recall,
                        seed=cfg.seed)
    sims, idx = index.self_knn(k)
    return KnnGraph(sims, idx, index.describe())


def compute_cv_probs(embeddings: np.ndarray, labels: np.ndarray, n_classes: int, cfg: SignalsConfig) -> np.ndarray:
    """Out-of-fold probabilities (N, C) for labelled rows; rows with label −1 get NaN."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.full((len(labels), n_classes), np.nan, np.float32)
    ok = (labels >= 0) & (labels < n_classes)
    if ok.sum() >= 2 * cfg.cv_folds:
        probs[ok] = cross_val_probs(np.asarray(embeddings)[ok], labels[ok], n_classes, folds=cfg.cv_folds,
                                    method=cfg.cv_method, c_reg=cfg.cv_c, max_iter=cfg.cv_max_iter, seed=cfg.seed)
    else:
        LOG.warning("only %d labelled samples: confident-learning columns left empty", int(ok.sum()))
    return probs


def head_columns(head_results: Mapping[str, HeadResult] | list[HeadResult], labels: np.ndarray) -> dict[str, np.ndarray]:
    """All heads' per-sample columns, checked for length and name clashes."""
    results = list(head_results.values()) if isinstance(head_results, Mapping) else list(head_results)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    cols: dict[str, np.ndarray] = {}
    for hr in results:
        own = dict(hr.signals)
        if hr.probs is not None and len(hr.probs):
            probs = np.asarray(hr.probs)
            if probs.shape[0] != n:
                raise ValueError(f"head {hr.name!r}: probs has {probs.shape[0]} rows for {n} training samples")
            ok = (labels >= 0) & (labels < probs.shape[1])
            pl = np.full(n, np.nan, np.float32)
            pl[ok] = probs[np.flatnonzero(ok), labels[ok]]
            own.setdefault(f"{hr.name}_prob_label", pl)
            own.setdefault(f"{hr.name}_pred", probs.argmax(axis=1).astype(np.int64))
        for name, values in own.items():
            values = np.asarray(values)
            if values.shape != (n,):
                raise ValueError(f"head {hr.name!r}: signal {name!r} has shape {values.shape}, expected ({n},)")
            if name in cols or name in ID_COLUMNS:
                raise ValueError(f"head {hr.name!r}: signal column {name!r} is produced twice")
            cols[name] = values
    return cols


def build_signals_table(train_manifest: pd.DataFrame, embeddings: np.ndarray,
                        head_results: Mapping[str, HeadResult] | list[HeadResult] | None = None,
                        cfg: SignalsConfig | None = None, *, n_classes: int | None = None,
                        knn: KnnGraph | None = None, cv_probs: np.ndarray | None = None) -> pd.DataFrame:
    """The signals table for the training rows `train_manifest` (manifest order = embedding order).

    embeddings (N, d); head_results name -> HeadResult (or a list); `knn` and `cv_probs` may be
    passed precomputed (the stage does, to save them), otherwise they are computed here.
    n_classes defaults to the heads' probability width, else max(label) + 1.
    """
    cfg = cfg or SignalsConfig()
    head_results = head_results or {}
    m = train_manifest.reset_index(drop=True)
    if len(m) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embedding rows for {len(m)} training samples")
    labels = m["label"].to_numpy(dtype=np.int64)
    if n_classes is None:
        widths = [np.asarray(h.probs).shape[1] for h in (head_results.values() if isinstance(head_results, Mapping) else head_results)
                  if h.probs is not None and np.ndim(h.probs) == 2]
        n_classes = widths[0] if widths else int(labels.max()) + 1
    table = {"sample_id": m["sample_id"].astype(str).to_numpy(), "label": labels,
             "true_label": m["true_label"].to_numpy(dtype=np.int64) if "true_label" in m else np.full(len(m), -1, np.int64)}
    table.update(head_columns(head_results, labels))
    if knn is None:
        knn = compute_knn(embeddings, cfg)
    table.update(knn_agreement(knn.similarities, knn.indices, labels, n_classes, weighting=cfg.knn_weighting,
                               temperature=cfg.knn_temperature))
    table.update(near_duplicates(knn.similarities, knn.indices, labels, cfg.duplicate_threshold))
    if cfg.confident_learning:
        if cv_probs is None:
            cv_probs = compute_cv_probs(embeddings, labels, n_classes, cfg)
        ok = ~np.isnan(cv_probs).any(axis=1) & (labels >= 0) & (labels < n_classes)
        cl = {"cl_label_quality": np.full(len(m), np.nan, np.float32),
              "cl_suggested_label": np.full(len(m), -1, np.int64), "cl_is_issue": np.zeros(len(m), bool)}
        if ok.any():
            for name, values in confident_learning(cv_probs[ok], labels[ok]).items():
                cl[name][ok] = values
        table.update(cl)
    df = pd.DataFrame(table)
    check_columns(df.columns, "signals")
    LOG.info("signals table: %d samples x %d columns", len(df), df.shape[1])
    return df
