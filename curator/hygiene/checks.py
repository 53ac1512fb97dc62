"""All hygiene checks of the training samples in one table (RUN/hygiene.parquet), plus leak pairs and a summary.

`run_checks` measures nothing itself: per training sample (rows in manifest order = the order of embeddings.npy
and the kNN graph) it lays out the image properties (`curator.data.properties`, measured in the image pass) and
runs every check of the registry (`curator.hygiene.registry`: duplicates, leakage, image quality, outliers),
each adding its columns (``is_<kind>_issue`` and its measurements) and its section of the summary.

What could not be checked (no decoded images under ``--embeddings``, no test embeddings) or was switched off
(``hygiene.off``) is skipped with the reason in the summary, never guessed; the columns are then empty
(NaN / False).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curator.columns import check_columns
from curator.data.properties import MEASURES
from curator.evidence import KnnGraph
from curator.hygiene import registry
from curator.hygiene.config import HygieneConfig
from curator.hygiene.leakage import empty_pairs
from curator.hygiene.plugin import CheckInputs, Found, TestEmbeddings

LOG = logging.getLogger(__name__)
PROPERTY_COLUMNS = ["width", "height", "aspect_ratio", *MEASURES]


@dataclass
class HygieneResult:
    table: pd.DataFrame       # RUN/hygiene.parquet: one row per training sample
    pairs: pd.DataFrame       # RUN/leakage.parquet: training <-> val/test pairs
    summary: dict             # RUN/hygiene.json


def _aligned_properties(ids: np.ndarray, props: pd.DataFrame | None) -> pd.DataFrame:
    """The properties of samples `ids` in that order (NaN rows for samples never measured)."""
    if props is None:
        return pd.DataFrame({"sample_id": ids, "content_hash": pd.Series([None] * len(ids), dtype=object),
                             "width": np.nan, "height": np.nan, **{k: np.nan for k in MEASURES}})
    p = props.assign(sample_id=props["sample_id"].astype(str)).drop_duplicates("sample_id", keep="last")
    return p.set_index("sample_id").reindex(pd.Index(ids.astype(str), name="sample_id")).reset_index()


def run_checks(train: pd.DataFrame, others: pd.DataFrame, props: pd.DataFrame | None, graph: KnnGraph | None,
               cfg: HygieneConfig, *, train_features: np.ndarray | None = None,
               train_embeddings: np.ndarray | None = None, test: TestEmbeddings | None = None,
               skipped_properties: str = "", device=None) -> HygieneResult:
    """Every check for the training rows `train` (manifest rows: ``sample_id``, ``label``), with the other
    splits' rows `others` (``sample_id``, ``split``) for leakage. `props` is the image-properties frame of
    any samples (all splits), or None with the reason in `skipped_properties`."""
    on = registry.enabled(cfg)
    ids = train["sample_id"].astype(str).to_numpy()
    n = len(ids)
    summary: dict = {"n_train": n}

    p = _aligned_properties(ids, props)
    table: dict[str, np.ndarray] = {"sample_id": ids}
    for k in MEASURES:
        table[k] = p[k].to_numpy(np.float32)
    table["width"], table["height"] = p["width"].to_numpy(np.float64), p["height"].to_numpy(np.float64)
    table["aspect_ratio"] = (table["width"] / table["height"]).astype(np.float32)

    inputs = CheckInputs(ids=ids, labels=train["label"].to_numpy(np.int64), properties=p,
                         measured=p["darkness"].notna().to_numpy(), all_properties=props, others=others, graph=graph,
                         cfg=cfg, train_features=train_features, train_embeddings=train_embeddings, test=test,
                         skipped_properties=skipped_properties, device=device)
    pairs, counts, extra = empty_pairs(), {}, {}
    for check in registry.checks():
        if check in on:
            found = check.run(inputs)
        else:
            found = Found(check.empty(n), {"skipped": "switched off in the recipe (hygiene.off)"})
        inputs.found[check.kind] = summary[check.key] = found.summary
        table.update(found.columns)
        counts[check.kind] = int(np.asarray(found.columns[check.flag_column]).sum())
        extra.update(found.counts)
        if found.pairs is not None:
            pairs = found.pairs
    df = pd.DataFrame(table)[["sample_id", *PROPERTY_COLUMNS, *registry.table_columns()]]
    check_columns(df.columns, "hygiene")
    summary["counts"] = {**counts, **extra}
    LOG.info("hygiene: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return HygieneResult(df, pairs, summary)
