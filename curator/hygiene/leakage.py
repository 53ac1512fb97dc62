"""Leakage between splits: training images that are also (or almost) in the test or validation split.

A test image that duplicates a training image inflates the test score: the model was graded on what it
was shown. Two matches:

- **exact**: same ``content_hash`` (decoded pixels), any split that was decoded (val and test);
- **near**: a test image whose embedding is at least the run's near-duplicate similarity
  (`curator.hygiene.duplicates`) to a training image's. The test embeddings (RUN/embeddings_test.npy)
  are standardised with the *training* rows' statistics, exactly as the kNN graph's features
  (`standardise_like`), and searched among the training features through the one kNN engine
  (`curator.evidence.knn.build_index(...).search`). The validation split has no embeddings, so only
  its exact copies are found. As for duplicates, close embeddings are only a candidate
  (`confirm_near_leaks`): a pair is a leak when both images' thumbnails agree
  (`curator.hygiene.duplicates.pixel_similarity`), is dropped when they differ, and stays an unconfirmed
  ``candidate`` (listed, never flagged) when either image was not decoded.

The pairs: one row per (training sample, other sample) pair: ``sample_id`` (training), ``other_id``,
``other_split``, ``match`` ("exact" / "near" / "candidate") and ``similarity`` (1 for exact).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curator.data.properties import thumbnails_array
from curator.evidence.knn import build_index
from curator.hygiene.duplicates import PIXEL_SIMILARITY, judge_pairs

LOG = logging.getLogger(__name__)


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({"sample_id": pd.Series([], dtype=str), "other_id": pd.Series([], dtype=str),
                         "other_split": pd.Series([], dtype=str), "match": pd.Series([], dtype=str),
                         "similarity": pd.Series([], dtype=np.float32)})


def standardise_like(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`queries` (Q, d) normalised the way `curator.evidence.probe.standardise` normalises `reference` (N, d):
    rows L2-normalised, then every dimension shifted and scaled by the *reference's* mean and std."""
    def rows(x):
        x = np.asarray(x, dtype=np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    r = rows(reference)
    mean, std = r.mean(0, keepdims=True), r.std(0, keepdims=True)
    return (rows(queries) - mean) / (std + 1e-6)


def exact_leaks(train: pd.DataFrame, others: pd.DataFrame) -> pd.DataFrame:
    """Pairs of a training and a val/test sample with the same non-empty ``content_hash`` (columns
    ``sample_id``, ``content_hash`` in both frames, plus ``split`` in `others`)."""
    t = train[["sample_id", "content_hash"]].dropna()
    o = others[["sample_id", "content_hash", "split"]].dropna()
    t, o = t[t["content_hash"].astype(str) != ""], o[o["content_hash"].astype(str) != ""]
    m = t.merge(o.rename(columns={"sample_id": "other_id", "split": "other_split"}), on="content_hash")
    if not len(m):
        return empty_pairs()
    return pd.DataFrame({"sample_id": m["sample_id"].astype(str), "other_id": m["other_id"].astype(str),
                         "other_split": m["other_split"].astype(str), "match": "exact",
                         "similarity": np.ones(len(m), np.float32)})


def near_leaks(train_features: np.ndarray, train_ids: np.ndarray, test_embeddings: np.ndarray,
               train_embeddings: np.ndarray, test_ids: np.ndarray, threshold: float, k: int,
               device=None) -> pd.DataFrame:
    """Pairs of a training and a test sample whose cosine similarity (standardised features) ≥ `threshold`.

    `train_features` are the run's standardised training features (the kNN graph's); `train_embeddings` the
    raw ones they came from (for the statistics); test rows that are all zero (images that could not be
    embedded) are left out.
    """
    test = np.asarray(test_embeddings, dtype=np.float32)
    usable = np.linalg.norm(test, axis=1) > 0
    if not usable.any() or len(train_features) == 0:
        return empty_pairs()
    queries = standardise_like(test[usable], train_embeddings)
    index = build_index(train_features, device=device)
    sims, idx = index.search(queries, min(k, len(train_features)))          # (Q, k) best first
    hit_q, hit_k = np.nonzero(sims >= threshold)
    qid = np.asarray(test_ids)[np.flatnonzero(usable)]
    LOG.info("leakage: %d test images searched among %d training images (%s), %d pairs at cosine ≥ %.4f",
             int(usable.sum()), len(train_features), index.backend, len(hit_q), threshold)
    return pd.DataFrame({"sample_id": np.asarray(train_ids)[idx[hit_q, hit_k]].astype(str),
                         "other_id": qid[hit_q].astype(str), "other_split": "test", "match": "near",
                         "similarity": sims[hit_q, hit_k].astype(np.float32)})


def confirm_near_leaks(pairs: pd.DataFrame, props: pd.DataFrame | None, similarity: float = -1.0,
                       threshold: float = PIXEL_SIMILARITY) -> pd.DataFrame:
    """The near pairs whose thumbnails (`props`: the image-properties frame of all splits) agree, with ``match``
    "near"; pairs at or above the embedding `similarity` where either image has no thumbnail stay, as ``match``
    "candidate" (those below it are dropped: nothing speaks for them); pairs whose thumbnails differ are dropped."""
    if not len(pairs):
        return pairs
    close = pairs["similarity"].to_numpy(np.float64) >= similarity
    if props is None or "thumbnail" not in props.columns:
        return pairs.assign(match="candidate")[close].reset_index(drop=True)
    p = props.assign(sample_id=props["sample_id"].astype(str)).drop_duplicates("sample_id", keep="last")
    thumb = p.set_index("sample_id")["thumbnail"]
    a, ok_a = thumbnails_array(thumb.reindex(pairs["sample_id"].astype(str)).to_numpy(object))
    b, ok_b = thumbnails_array(thumb.reindex(pairs["other_id"].astype(str)).to_numpy(object))
    both = ok_a & ok_b
    keep = ~both & close
    keep[both] = judge_pairs(a[both], b[both], threshold)[1]   # the training set's calibrated bound (`threshold`)
    LOG.info("leakage: %d of %d near pairs confirmed by the pixels, %d unconfirmed (no decoded image)",
             int((both & keep).sum()), len(pairs), int((~both & close).sum()))
    return pairs.assign(match=np.where(both, "near", "candidate"))[keep].reset_index(drop=True)


def combine(exact: pd.DataFrame, near: pd.DataFrame) -> pd.DataFrame:
    """One row per pair, exact matches first (a near match of an exact pair is dropped), sorted."""
    both = pd.concat([exact, near], ignore_index=True)
    if not len(both):
        return empty_pairs()
    both = both.drop_duplicates(subset=["sample_id", "other_id"], keep="first")
    return both.sort_values(["sample_id", "similarity"], ascending=[True, False], kind="stable").reset_index(drop=True)


def leak_columns(train_ids: np.ndarray, pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per training sample: ``leak_similarity`` (the best match's similarity, NaN without any) and the
    ``is_leak_issue`` flag; unconfirmed candidates are neither."""
    pairs = pairs[pairs["match"] != "candidate"] if len(pairs) else pairs
    best = pairs.groupby("sample_id")["similarity"].max() if len(pairs) else pd.Series(dtype=np.float32)
    sim = pd.Series(np.asarray(train_ids).astype(str)).map(best).to_numpy(np.float32)
    return {"leak_similarity": sim, "is_leak_issue": np.isfinite(sim)}
