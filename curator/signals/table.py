"""The signals table: one row per training sample, one column per signal (SPEC §5, §10).

Columns, in order: ``sample_id``, ``label``, ``true_label`` (−1 unknown); then every head's signal
columns (``<head>_prob_label`` and ``<head>_pred`` derived from the head's probabilities when the head
does not supply them); then the neighbourhood columns from the run's kNN graph
(`curator.signals.agreement`), the confident-learning columns from its out-of-fold probe
(`curator.signals.confident`) and, when the hygiene stage ran, its measurements (image properties,
duplicates, leakage, outliers: the columns of RUN/hygiene.parquet that `curator.columns` declares for
signals). Every column must be declared in `curator.columns` (checked here).
"""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import pandas as pd

from curator.columns import COLUMNS, check_columns
from curator.evidence import KnnGraph
from curator.heads.base import HeadResult
from curator.hygiene import registry
from curator.signals.agreement import knn_agreement
from curator.signals.config import SignalsConfig
from curator.signals.confident import confident_learning

LOG = logging.getLogger(__name__)

ID_COLUMNS = ["sample_id", "label", "true_label"]


def head_columns(head_results: Mapping[str, HeadResult], labels: np.ndarray) -> dict[str, np.ndarray]:
    """All heads' per-sample columns, checked for length and name clashes; in a fixed order (heads by name, then
    each head's columns by name), so a table built from heads reloaded from disk equals one from fresh heads."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    cols: dict[str, np.ndarray] = {}
    for _, hr in sorted(head_results.items()):
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
        for name, values in sorted(own.items()):
            values = np.asarray(values)
            if values.shape != (n,):
                raise ValueError(f"head {hr.name!r}: signal {name!r} has shape {values.shape}, expected ({n},)")
            if name in cols or name in ID_COLUMNS:
                raise ValueError(f"head {hr.name!r}: signal column {name!r} is produced twice")
            cols[name] = values
    return cols


def hygiene_columns(hygiene: pd.DataFrame, sample_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of RUN/hygiene.parquet that are signals (declared for "signals"), checked to list `sample_ids`."""
    hid = hygiene["sample_id"].astype(str).to_numpy()
    if len(hid) != len(sample_ids) or not np.array_equal(hid, np.asarray(sample_ids).astype(str)):
        raise ValueError(f"hygiene.parquet ({len(hid)} rows) does not list the {len(sample_ids)} training samples in "
                         "manifest order; re-run the hygiene stage")
    registry.declare()                  # the hygiene checks' columns are part of the contract
    return {c: hygiene[c].to_numpy() for c in hygiene.columns
            if c not in ID_COLUMNS and c in COLUMNS and "signals" in COLUMNS[c].tables}


def build_signals_table(train_manifest: pd.DataFrame, head_results: Mapping[str, HeadResult], graph: KnnGraph,
                        oof_probs: np.ndarray, n_classes: int, cfg: SignalsConfig | None = None,
                        hygiene: pd.DataFrame | None = None) -> pd.DataFrame:
    """The signals table for the training rows `train_manifest` (manifest order = evidence order)."""
    cfg = cfg or SignalsConfig()
    m = train_manifest.reset_index(drop=True)
    if len(m) != graph.indices.shape[0] or len(m) != len(oof_probs):
        raise ValueError(f"{len(m)} training samples but the evidence has {graph.indices.shape[0]} kNN rows and "
                         f"{len(oof_probs)} probability rows")
    labels = m["label"].to_numpy(dtype=np.int64)
    table = {"sample_id": m["sample_id"].astype(str).to_numpy(), "label": labels,
             "true_label": m["true_label"].to_numpy(dtype=np.int64)}
    table.update(head_columns(head_results, labels))
    table.update(knn_agreement(graph, labels, n_classes, weighting=cfg.knn_weighting, temperature=cfg.knn_temperature))
    table.update(confident_learning(oof_probs, labels))
    if hygiene is not None:
        table.update(hygiene_columns(hygiene, table["sample_id"]))
    df = pd.DataFrame(table)
    check_columns(df.columns, "signals")
    LOG.info("signals table: %d samples x %d columns", len(df), df.shape[1])
    return df
