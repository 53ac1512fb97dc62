"""Duplicates among the training samples: exact copies by content hash, near copies by the kNN graph confirmed by
the pixels.

- **Exact**: samples whose decoded pixels hash the same (`curator.data.properties`, ``content_hash``)
  are one image, whatever the file name or format.
- **Near**: pairs of the run's kNN graph (`curator.evidence.KnnGraph`, cosine similarity on the standardised
  embeddings) at or above a similarity threshold. The graph's similarities are relative to the dataset
  (every dimension is z-scored), so no fixed cosine means "near-identical" for every dataset; the
  threshold is **calibrated** on the dataset's own distances to the nearest neighbour
  (`calibrate_near_duplicates`): a pair is a near duplicate when its distance, 1 − cosine, lies more than
  ``z`` robust spreads below the median nearest-neighbour distance on a log scale
  (`curator.hygiene.thresholds.robust_bound`, spread from the upper side). Measured on CIFAR-10's 50,000
  training images (the shared SimSiam embeddings, docs/hygiene.md) z = 4 gives cosine ≈ 0.974, where pairs are
  still copies of one photograph (crops, colour shifts, re-encodings) and below which different photographs of
  one scene start to appear.

Close embeddings are not evidence a person accepts: weak embeddings (the CPU's patch k-means) put an aeroplane and a
ship on the same blue sky next to each other, and the calibration then called 26 images of plainly different CIFAR
pictures duplicates (docs/hygiene.md). So a near pair of the graph (at or above the calibrated similarity, and, when
pixels exist, also each sample's `PIXEL_NEIGHBOURS` nearest neighbours: weak embeddings put copies close but not always
above the threshold) is only a **candidate**:

- **confirmed** when both images' 16 x 16 luma thumbnails (`curator.data.properties.thumbnail`, measured in the image
  pass) correlate at `PIXEL_SIMILARITY` or more *and* their fine detail (each less its 3 x 3 local mean) at
  `DETAIL_SIMILARITY` or more (`pixel_similarity`: Pearson correlations, the best over the horizontal mirror and
  shifts of up to `SHIFT` thumbnail pixels, so re-encodings, brightness / contrast changes, mirror images and small
  crops of one photograph pass; the detail keeps most look-alike scenes apart, not all: docs/hygiene.md). Only confirmed pairs form
  duplicate groups, are flagged and dropped by ``export --drop duplicate``;
- **rejected** (not reported) when both thumbnails exist and differ: close in the embeddings, different pictures;
- an **unconfirmed candidate** when an image has no thumbnail (``--embeddings`` on image files: no image was decoded):
  listed (``duplicate_type`` = "candidate", ``duplicate_candidate_of``), never flagged, never grouped, never dropped.

Groups are the connected components of the exact and the confirmed pairs (`duplicate_groups`); a group whose members
carry more than one label is a **conflict**, a label error in plain sight.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curator.evidence import KnnGraph
from curator.hygiene.thresholds import robust_bound

#: a distance this small is an identical embedding (an exact copy seen through the embeddings)
IDENTICAL = 1e-6
#: a near duplicate is at least this many times closer than the dataset's median nearest neighbour: in a dataset
#: without copies (random high-dimensional points) the nearest-neighbour distances hardly vary, and a purely
#: relative threshold would then call chance neighbours duplicates
MIN_CLOSER = 4.0
#: thumbnail correlation at or above which two images are one picture. Measured on CIFAR-10 (docs/hygiene.md): pairs
#: of one photograph (re-encoded, shifted, mirrored) mostly lie above 0.9, plainly different pictures that the
#: embeddings put close (SimSiam cosine 0.85-0.97) mostly below; random pairs reach at most 0.77 of 500
PIXEL_SIMILARITY = 0.90
#: with pixels, every sample's this many nearest neighbours are compared too, whatever their similarity: weak
#: embeddings (the CPU's patch k-means) leave re-encoded copies below the calibrated similarity (the bench: 20 of 40),
#: and the pixels, not the embeddings, decide (docs/hygiene.md)
PIXEL_NEIGHBOURS = 3
#: largest shift (thumbnail pixels, each way) tried when comparing thumbnails: 2 of 16 = 1/8 of the image
SHIFT = 2
#: the correlation of the thumbnails' fine detail (less their 3 x 3 local mean) a confirmed pair also needs. Measured
#: on CIFAR-10 (docs/hygiene.md): ships on a horizon that are different photographs reach a layout correlation of
#: 0.95-0.97 but a detail correlation of 0.52; re-encoded copies 0.95 or more; pairs of one photograph with a layout
#: ≥ 0.9 mostly 0.6 or more
DETAIL_SIMILARITY = 0.60
#: least standard deviation (grey levels) a thumbnail is normalised by: nearly flat thumbnails must not have their
#: noise stretched into a pattern that correlates (`FLAT_DETAIL`: the same for the detail)
FLAT = 4.0
FLAT_DETAIL = 1.0


def _best_correlation(a: np.ndarray, b: np.ndarray, side: int, shift: int, floor: float) -> np.ndarray:
    """(P,) the largest Pearson correlation of a[i] with b[i] or its mirror image, (P, side, side) float32, shifted by up to
    `shift` pixels each way, measured on the part both cover; each side's spread is at least `floor`. Sums over the
    overlap come from `np.einsum` on views (no centred copies per shift); each thumbnail's own mean is taken out first
    so the float32 sums keep their precision."""
    a = a - a.mean(axis=(1, 2), keepdims=True)
    b = b - b.mean(axis=(1, 2), keepdims=True)
    best = np.full(len(a), -1.0, np.float32)
    for bb in (b, b[:, :, ::-1]):
        for dy in range(-shift, shift + 1):
            for dx in range(-shift, shift + 1):
                x = a[:, max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)]
                y = bb[:, max(-dy, 0):side + min(-dy, 0), max(-dx, 0):side + min(-dx, 0)]
                m = float(x.shape[1] * x.shape[2])
                mx, my = x.sum(axis=(1, 2)) / m, y.sum(axis=(1, 2)) / m
                vx = np.maximum(np.einsum("pij,pij->p", x, x) / m - mx * mx, 0.0)
                vy = np.maximum(np.einsum("pij,pij->p", y, y) / m - my * my, 0.0)
                cov = np.einsum("pij,pij->p", x, y) / m - mx * my
                np.maximum(best, cov / (np.maximum(np.sqrt(vx), floor) * np.maximum(np.sqrt(vy), floor)), out=best)
    return best


def _detail(t: np.ndarray) -> np.ndarray:
    """(P, side, side) thumbnails less their 3 x 3 local mean: the fine structure without the layout."""
    return t - ndimage.uniform_filter(t, size=(1, 3, 3), mode="reflect")


def pixel_similarity(a: np.ndarray, b: np.ndarray, *, side: int = 16, shift: int = SHIFT,
                     chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """((P,) layout, (P,) detail) float32 correlations of the thumbnail pairs a[i], b[i] ((P, side²) uint8, row-major).

    layout: the largest Pearson correlation of a[i] with b[i] or its mirror image shifted by up to `shift` pixels each
    way, on the part both cover, each side's spread at least `FLAT` grey levels. detail: the same on the thumbnails
    less their 3 x 3 local mean (`_detail`; spread at least `FLAT_DETAIL`). Look-alike scenes (a ship on a horizon,
    an aeroplane on blue sky) share the layout, not the detail."""
    a = np.asarray(a, np.float32).reshape(-1, side, side)
    b = np.asarray(b, np.float32).reshape(-1, side, side)
    layout = np.empty(len(a), np.float32)
    detail = np.empty(len(a), np.float32)
    for s0 in range(0, len(a), chunk):
        A, B = a[s0:s0 + chunk], b[s0:s0 + chunk]
        layout[s0:s0 + chunk] = _best_correlation(A, B, side, shift, FLAT)
        detail[s0:s0 + chunk] = _best_correlation(_detail(A), _detail(B), side, shift, FLAT_DETAIL)
    return layout, detail


def confirmed(layout: np.ndarray, detail: np.ndarray, threshold: float = PIXEL_SIMILARITY) -> np.ndarray:
    """(P,) bool: the pixels say one picture (layout ≥ `threshold` and detail ≥ `DETAIL_SIMILARITY`)."""
    return (np.asarray(layout) >= threshold) & (np.asarray(detail) >= DETAIL_SIMILARITY)


def calibrate_pixel_similarity(layout: np.ndarray, z: float, floor: float = PIXEL_SIMILARITY) -> tuple[float, dict]:
    """The layout correlation a confirmed pair needs on this dataset: at least `floor`, and far above what the compared
    neighbour pairs (mostly not copies) reach — the rule of `calibrate_near_duplicates` on d = 1 − layout: exp(median(log
    d) − max(z · spread, log `MIN_CLOSER`)), the spread from the upper side. Where pictures are simple and alike (8 x 8
    digits: a digit's nearest neighbours correlate 0.94 in the median) the fixed 0.9 would call most of a class one
    picture; there the bound rises (≈ 0.985); on photographs it stays at `floor`."""
    d = 1.0 - np.asarray(layout, np.float64)
    d = d[np.isfinite(d) & (d > IDENTICAL)]
    if len(d) < 10:
        return float(floor), {"method": "fixed (too few pairs to calibrate)", "n_pairs": int(len(d))}
    bound = robust_bound(np.log(d), tail="lower", z=z, mirror=True, min_gap=math.log(MIN_CLOSER))
    calibrated = 1.0 - math.exp(bound.low)
    return float(max(floor, calibrated)), {"floor": floor, "calibrated": float(calibrated), "n_pairs": int(len(d)),
                                           "median_neighbour_layout": float(1.0 - math.exp(bound.centre))}


def judge_pairs(a: np.ndarray, b: np.ndarray, threshold: float | None = PIXEL_SIMILARITY, *, z: float = 4.0,
                side: int = 16, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray, float]:
    """((P,) layout, (P,) bool confirmed, the layout threshold used) of thumbnail pairs, as `pixel_similarity` and
    `confirmed`, computing the detail only for the pairs whose layout passes (most compared pairs are not copies;
    this halves the work). `threshold` None: calibrated on these pairs (`calibrate_pixel_similarity`, `z`)."""
    a = np.asarray(a, np.float32).reshape(-1, side, side)
    b = np.asarray(b, np.float32).reshape(-1, side, side)
    layout = np.empty(len(a), np.float32)
    for s0 in range(0, len(a), chunk):
        layout[s0:s0 + chunk] = _best_correlation(a[s0:s0 + chunk], b[s0:s0 + chunk], side, SHIFT, FLAT)
    if threshold is None:
        threshold = calibrate_pixel_similarity(layout, z)[0]
    ok = layout >= threshold
    if ok.any():
        rows = np.flatnonzero(ok)
        detail = np.concatenate([_best_correlation(_detail(a[r]), _detail(b[r]), side, SHIFT, FLAT_DETAIL)
                                 for r in np.array_split(rows, max(1, -(-len(rows) // chunk)))])
        ok[rows] = detail >= DETAIL_SIMILARITY
    return layout, ok, float(threshold)


def exact_pairs(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) pairs linking every sample to the first sample with the same non-empty hash."""
    h = pd.Series(np.asarray(hashes, dtype=object)).fillna("").astype(str).to_numpy()
    codes, _ = pd.factorize(h)                                          # (N,) one code per distinct hash
    _, first = np.unique(codes, return_index=True)                      # first row of every code
    cols = first[codes]
    keep = (cols != np.arange(len(h))) & (h != "")
    return np.flatnonzero(keep).astype(np.int64), cols[keep].astype(np.int64)


def calibrate_near_duplicates(graph: KnnGraph, z: float) -> tuple[float, dict]:
    """The cosine similarity at or above which two samples are near duplicates, and how it was found.

    Distances d = 1 − (cosine to the nearest neighbour) of every sample; identical embeddings (d ≈ 0) are
    left out of the calibration (they are duplicates whatever the threshold). The threshold distance is
    exp(median(log d) − max(z · spread, log `MIN_CLOSER`)), the spread measured on the upper side of log d (the
    ordinary samples; the lower side holds the duplicates themselves, `robust_bound(mirror=True)`).
    """
    d = 1.0 - np.asarray(graph.similarities[:, 0], dtype=np.float64)
    d = d[d > IDENTICAL]
    if len(d) < 10:
        return 1.0 - IDENTICAL, {"method": "identical only (too few samples to calibrate)", "n": int(len(d))}
    bound = robust_bound(np.log(d), tail="lower", z=z, mirror=True, min_gap=math.log(MIN_CLOSER))
    threshold = 1.0 - math.exp(bound.low)
    return float(threshold), {"method": "calibrated", "z": z, "median_nearest_similarity": float(1.0 - math.exp(bound.centre)),
                              "log_distance_median": bound.centre, "log_distance_spread": bound.spread_low,
                              "n_samples": int(len(d))}


def near_pairs(graph: KnnGraph, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, similarities) of graph pairs with cosine ≥ `threshold` (or identical embeddings)."""
    sims = np.asarray(graph.similarities)
    hit = (sims >= threshold) | (sims >= 1.0 - IDENTICAL)
    rows, k = np.nonzero(hit)
    return rows.astype(np.int64), np.asarray(graph.indices)[rows, k].astype(np.int64), sims[rows, k].astype(np.float32)


def duplicate_groups(n: int, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Connected components of the pairs (rows[i], cols[i]) among n samples.

    ``dup_group`` (N,) int64: 0, 1, ... for members of groups of two or more (numbered by their first
    member), −1 otherwise; ``dup_conflict`` (N,) bool: the member's group carries more than one label.
    """
    labels = np.asarray(labels, dtype=np.int64)
    pairs = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, comp = connected_components(pairs, directed=True, connection="weak")     # (N,) component ids
    in_group = np.bincount(comp)[comp] >= 2
    group = np.full(n, -1, np.int64)
    conflict = np.zeros(n, bool)
    if in_group.any():
        members = comp[in_group]
        uniq, first_pos, inverse = np.unique(members, return_index=True, return_inverse=True)
        rank = np.empty(len(uniq), np.int64)
        rank[np.argsort(first_pos, kind="stable")] = np.arange(len(uniq))
        group[in_group] = rank[inverse]
        g, lab = group[in_group], labels[in_group]
        n_groups = int(g.max()) + 1
        lo = np.full(n_groups, np.iinfo(np.int64).max)
        hi = np.full(n_groups, np.iinfo(np.int64).min)
        np.minimum.at(lo, g, lab)
        np.maximum.at(hi, g, lab)
        conflict[in_group] = lo[g] != hi[g]
    return {"dup_group": group, "dup_conflict": conflict}


def find_duplicates(graph: KnnGraph | None, hashes: np.ndarray | None, labels: np.ndarray, *, z: float,
                    fixed_similarity: float = 0.0, thumbnails: np.ndarray | None = None,
                    has_thumbnail: np.ndarray | None = None, ids: np.ndarray | None = None,
                    pixel_threshold: float | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Every duplicate column of the training samples and a summary.

    Columns: ``dup_group``, ``dup_conflict`` (see `duplicate_groups`: exact and pixel-confirmed pairs only),
    ``duplicate_type`` ("exact" when the sample has an identical copy by hash, "near" when only confirmed near copies,
    "candidate" when only unconfirmed candidates, "" otherwise), ``duplicate_similarity`` (cosine to the nearest other
    sample; 1 for an exact copy; NaN without a graph), ``duplicate_pixel_similarity`` (the best `pixel_similarity` to a
    partner of a near pair, 1 for an exact copy, NaN when not compared) and ``duplicate_candidate_of`` (the id, from
    `ids`, of the closest unconfirmed candidate; "" for none). `thumbnails` ((N, 256) uint8) with `has_thumbnail`
    ((N,) bool) are the pixel evidence; without them every near pair is a candidate. `fixed_similarity` > 0 replaces
    the calibrated threshold; `pixel_threshold` (None: calibrated, `calibrate_pixel_similarity`) the layout bound.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    r_e, c_e = exact_pairs(hashes) if hashes is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    summary: dict = {"exact_by_hash": hashes is not None}
    nearest = np.full(n, np.nan, np.float32)
    pixel = np.full(n, np.nan, np.float32)
    candidate_of = np.full(n, -1, np.int64)
    r_n = c_n = np.zeros(0, np.int64)
    if graph is not None:
        if fixed_similarity > 0:
            threshold, calib = fixed_similarity, {"method": "fixed (hygiene.near_duplicate_similarity)"}
        else:
            threshold, calib = calibrate_near_duplicates(graph, z)
        rows, cols, sims = near_pairs(graph, threshold)
        ok = (np.zeros(n, bool) if thumbnails is None
              else np.ones(n, bool) if has_thumbnail is None else np.asarray(has_thumbnail, bool))
        if thumbnails is not None:                       # the pixels judge every sample's nearest neighbours too
            m = int(min(PIXEL_NEIGHBOURS, graph.k))
            idx = np.asarray(graph.indices)[:, :m]
            rows = np.concatenate([rows, np.repeat(np.arange(n, dtype=np.int64), m)])
            cols = np.concatenate([cols, idx.ravel().astype(np.int64)])
            sims = np.concatenate([sims, np.asarray(graph.similarities)[:, :m].ravel().astype(np.float32)])
        keep = (rows != cols) & (cols >= 0)
        rows, cols, sims = rows[keep], cols[keep], sims[keep]
        order = np.argsort(-sims, kind="stable")                           # one row per unordered pair
        _, first = np.unique(np.minimum(rows, cols)[order] * n + np.maximum(rows, cols)[order], return_index=True)
        pick = np.sort(order[first])
        rows, cols, sims = rows[pick], cols[pick], sims[pick]
        close = (sims >= threshold) | (sims >= 1.0 - IDENTICAL)            # close in the embeddings
        nearest = np.asarray(graph.similarities[:, 0], np.float32).copy()
        both = ok[rows] & ok[cols]
        px = np.full(len(rows), np.nan, np.float32)
        same = np.zeros(len(rows), bool)
        used, pixel_calib = None, None
        if both.any():
            px[both], same[both], used = judge_pairs(thumbnails[rows[both]], thumbnails[cols[both]], pixel_threshold, z=z)
            if pixel_threshold is None:
                pixel_calib = calibrate_pixel_similarity(px[both], z)[1]
        cand = ~both & close
        r_n, c_n = rows[same], cols[same]
        for end in (rows, cols):                                           # best pixel evidence per sample
            np.fmax.at(pixel, end[both & (close | same)], px[both & (close | same)])
        order = np.argsort(-sims[cand], kind="stable")                     # closest candidate per sample wins
        cr, cc = rows[cand][order], cols[cand][order]
        for a, b in ((cr, cc), (cc, cr)):
            first = np.unique(a, return_index=True)[1]
            unset = candidate_of[a[first]] < 0
            candidate_of[a[first][unset]] = b[first][unset]
        summary.update({"near_duplicate_similarity": threshold, "calibration": calib,
                        "pixel_similarity": used, "pixel_calibration": pixel_calib,
                        "detail_similarity": DETAIL_SIMILARITY if thumbnails is not None else None,
                        "near_pairs": int(close.sum()), "pixel_checked_pairs": int(both.sum()),
                        "near_confirmed_pairs": int(same.sum()),
                        "near_confirmed_below_similarity": int((same & ~close).sum()),
                        "near_rejected_pairs": int((both & ~same & close).sum()),
                        "near_candidate_pairs": int(cand.sum()),
                        "near": ("confirmed by the pixels (16 x 16 thumbnails)" if not cand.any() else
                                 "unconfirmed candidates: no decoded pixels (--embeddings), never flagged")})
    else:
        summary["near"] = "skipped: no kNN graph"
    exact = np.zeros(n, bool)
    exact[r_e] = exact[c_e] = True
    nearest[exact] = 1.0
    pixel[exact] = 1.0
    cols_out = duplicate_groups(n, np.concatenate([r_e, r_n]), np.concatenate([c_e, c_n]), labels)
    in_group = cols_out["dup_group"] >= 0
    candidate_of[in_group] = -1                                            # a confirmed duplicate is no candidate
    is_cand = candidate_of >= 0
    dtype = np.where(exact, "exact", np.where(in_group, "near", np.where(is_cand, "candidate", "")))
    names = np.asarray(ids, dtype=object) if ids is not None else np.arange(n).astype(str).astype(object)
    cand_text = np.full(n, "", dtype=object)
    cand_text[is_cand] = names[candidate_of[is_cand]]
    cols_out.update({"duplicate_type": dtype.astype(object), "duplicate_similarity": nearest,
                     "duplicate_pixel_similarity": pixel, "duplicate_candidate_of": cand_text})
    g = cols_out["dup_group"][in_group]
    summary.update({"n_groups": int(len(np.unique(g))), "n_in_groups": int(in_group.sum()),
                    "n_exact": int(exact.sum()), "n_redundant": int(in_group.sum() - len(np.unique(g))),
                    "n_candidates": int(is_cand.sum()),
                    "n_conflicting_groups": int(len(np.unique(cols_out["dup_group"][cols_out["dup_conflict"]])))})
    return cols_out, summary
