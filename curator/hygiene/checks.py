"""All hygiene checks of the training samples in one table (RUN/hygiene.parquet), plus leak pairs and a summary.

`run_checks` combines, per training sample (rows in manifest order = the order of embeddings.npy and the
kNN graph):

- image properties (`curator.data.properties`, measured in the image pass) and the quality flags of
  `curator.hygiene.thresholds` (``is_quality_issue``, ``quality_issues`` = the names of the checks that
  fired, e.g. "dark,blurry");
- duplicates among the training samples (`curator.hygiene.duplicates`: ``dup_group``, ``dup_conflict``,
  ``duplicate_type``, ``duplicate_similarity``, ``is_duplicate_issue``);
- leakage into the test / validation split (`curator.hygiene.leakage`: ``leak_similarity``,
  ``is_leak_issue``, and the pairs);
- outliers (`curator.hygiene.outliers`: ``outlier_distance``, ``is_outlier_issue``).

What could not be checked (no decoded images under ``--embeddings``, no test embeddings) is skipped with
the reason in the summary, never guessed; the columns are then empty (NaN / False).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curator.columns import check_columns
from curator.evidence import KnnGraph
from curator.hygiene.config import HygieneConfig
from curator.hygiene.duplicates import PIXEL_SIMILARITY, find_duplicates
from curator.hygiene.leakage import combine, confirm_near_leaks, empty_pairs, exact_leaks, leak_columns, near_leaks
from curator.hygiene.outliers import find_outliers
from curator.data.properties import MEASURES, thumbnails_array
from curator.hygiene.thresholds import PROPERTY_CHECKS, flag_properties

LOG = logging.getLogger(__name__)


@dataclass
class HygieneResult:
    table: pd.DataFrame       # RUN/hygiene.parquet: one row per training sample
    pairs: pd.DataFrame       # RUN/leakage.parquet: training <-> val/test pairs
    summary: dict             # RUN/hygiene.json


@dataclass
class TestEmbeddings:
    """The test rows' embeddings (manifest order; all-zero rows could not be embedded) and their ids."""

    embeddings: np.ndarray
    sample_ids: np.ndarray


def quality_text(flags: dict[str, np.ndarray], n: int) -> np.ndarray:
    """(N,) object array: the names of the checks that fired, comma-separated in `PROPERTY_CHECKS` order."""
    text = np.full(n, "", dtype=object)
    for check in PROPERTY_CHECKS:
        f = flags[check.name]
        if f.any():
            text[f] = [f"{t},{check.name}" if t else check.name for t in text[f]]
    return text


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
    ids = train["sample_id"].astype(str).to_numpy()
    labels = train["label"].to_numpy(np.int64)
    n = len(ids)
    summary: dict = {"n_train": n}

    # image properties and quality flags
    p = _aligned_properties(ids, props)
    measured = p["darkness"].notna().to_numpy()
    table: dict[str, np.ndarray] = {"sample_id": ids}
    for k in MEASURES:
        table[k] = p[k].to_numpy(np.float32)
    table["width"], table["height"] = p["width"].to_numpy(np.float64), p["height"].to_numpy(np.float64)
    table["aspect_ratio"] = (table["width"] / table["height"]).astype(np.float32)
    if measured.any():
        flags, info = flag_properties(p, cfg.property_z)
        summary["quality"] = {"n_measured": int(measured.sum()), "z": cfg.property_z, "checks": info}
        if not measured.all():
            summary["quality"]["not_measured"] = int((~measured).sum())
    else:
        flags = {c.name: np.zeros(n, bool) for c in PROPERTY_CHECKS}
        summary["quality"] = {"skipped": skipped_properties or "no image properties were measured"}
        LOG.info("hygiene: image-quality checks skipped (%s)", summary["quality"]["skipped"])
    quality = np.any([flags[c.name] for c in PROPERTY_CHECKS], axis=0) if PROPERTY_CHECKS else np.zeros(n, bool)

    # duplicates among the training samples
    hashes = p["content_hash"].to_numpy(dtype=object) if measured.any() else None
    thumbs, has_thumb = (thumbnails_array(p["thumbnail"]) if measured.any() and "thumbnail" in p.columns
                         else (None, None))
    dup, summary["duplicates"] = find_duplicates(graph, hashes, labels, z=cfg.duplicate_z,
                                                 fixed_similarity=cfg.near_duplicate_similarity,
                                                 thumbnails=thumbs, has_thumbnail=has_thumb, ids=ids)
    table.update(dup)

    # leakage into val / test
    pairs_exact = empty_pairs()
    leak_info: dict = {}
    if props is not None and len(others):
        o = others[["sample_id", "split"]].astype(str).merge(props[["sample_id", "content_hash"]].astype(str), on="sample_id", how="inner")
        pairs_exact = exact_leaks(p[["sample_id", "content_hash"]].astype({"content_hash": object}), o)
        leak_info["exact"] = f"{len(pairs_exact)} pairs (content hash, splits {sorted(set(others['split']))})"
    else:
        leak_info["exact"] = ("skipped: no val/test samples" if not len(others)
                              else f"skipped: {skipped_properties or 'images were not decoded'}")
    pairs_near = empty_pairs()
    threshold = summary["duplicates"].get("near_duplicate_similarity")
    if test is not None and graph is not None and train_features is not None and threshold is not None:
        # with pixels, every test image's nearest training images are compared, whatever their similarity
        search = -1.0 if props is not None and "thumbnail" in props.columns else threshold
        pairs_near = confirm_near_leaks(near_leaks(train_features, ids, test.embeddings, train_embeddings,
                                                   test.sample_ids, search, cfg.leak_neighbours, device=device),
                                        props, similarity=threshold,
                                        threshold=summary["duplicates"].get("pixel_similarity") or PIXEL_SIMILARITY)
        n_cand = int((pairs_near["match"] == "candidate").sum()) if len(pairs_near) else 0
        leak_info["near"] = (f"{len(pairs_near) - n_cand} pairs confirmed by the pixels (test embeddings: the "
                             f"{cfg.leak_neighbours} nearest training images, or cosine ≥ {threshold:.4f} without pixels), "
                             f"{n_cand} unconfirmed candidates (no decoded pixels: listed, not flagged)")
    else:
        if not (len(others) and (others["split"] == "test").any()):
            why = "no test split"
        elif graph is None or train_features is None:
            why = "no kNN graph"
        else:
            why = "no test embeddings (RUN/embeddings_test.npy; with --embeddings give --set hygiene.test_embeddings=FILE)"
        leak_info["near"] = f"skipped: {why}"
    pairs = combine(pairs_exact, pairs_near)
    table.update(leak_columns(ids, pairs))
    leaks = pairs[pairs["match"] != "candidate"] if len(pairs) else pairs
    leak_info.update({"n_pairs": int(len(leaks)), "n_candidate_pairs": int(len(pairs) - len(leaks)),
                      "n_train_leaked": int(table["is_leak_issue"].sum()),
                      "n_other_leaked": int(leaks["other_id"].nunique()) if len(leaks) else 0,
                      "by_split": {str(k): int(v) for k, v in leaks.groupby("other_split")["other_id"].nunique().items()}
                      if len(leaks) else {}})
    summary["leakage"] = leak_info

    # outliers
    if graph is not None:
        out, summary["outliers"] = find_outliers(graph, neighbours=cfg.outlier_neighbours, z=cfg.outlier_z)
    else:
        out = {"outlier_distance": np.full(n, np.nan, np.float32), "is_outlier_issue": np.zeros(n, bool)}
        summary["outliers"] = {"skipped": "no kNN graph"}
    table["outlier_distance"] = out["outlier_distance"]

    table.update({"is_duplicate_issue": table["dup_group"] >= 0, "is_quality_issue": quality,
                  "quality_issues": quality_text(flags, n), "is_outlier_issue": out["is_outlier_issue"]})
    df = pd.DataFrame(table)
    df = df[[c for c in TABLE_ORDER]]
    check_columns(df.columns, "hygiene")
    summary["counts"] = {"duplicate": int(df["is_duplicate_issue"].sum()), "leak": int(df["is_leak_issue"].sum()),
                         "quality": int(quality.sum()), "outlier": int(df["is_outlier_issue"].sum()),
                         **{f"quality:{c.name}": int(flags[c.name].sum()) for c in PROPERTY_CHECKS}}
    LOG.info("hygiene: %s", ", ".join(f"{k} {v}" for k, v in summary["counts"].items() if ":" not in k))
    return HygieneResult(df, pairs, summary)


TABLE_ORDER = ["sample_id", "width", "height", "aspect_ratio", *MEASURES, "dup_group", "dup_conflict",
               "duplicate_type", "duplicate_similarity", "duplicate_pixel_similarity", "duplicate_candidate_of", "leak_similarity", "outlier_distance", "is_duplicate_issue",
               "is_leak_issue", "is_quality_issue", "quality_issues", "is_outlier_issue"]
