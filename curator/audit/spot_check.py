"""Spot check: the measured precision of the audit's flags from a person's answers on a random sample.

Without known truth (every real dataset) nobody knows how many flags are real. The spot check draws a
random sample of the flagged samples, stratified by label_issue_score band, asks a person for each
whether the given label is wrong (a drop or relabel decision) or right (keep), and estimates the
precision of the flags — the share of flagged samples whose given label is wrong — overall and per band.

Method (docs/spot_check.md):
- Bands: the flagged samples are cut at the quantiles of their label_issue_score into `n_bands` bands of
  about equal size (band 0 the lowest scores).
- Draw: `n` samples split across bands in proportion to their sizes (at least `MIN_PER_BAND` each), drawn
  without replacement, uniformly within a band. The default n follows the normal-approximation size for
  a ±10 % interval at 95 % (n = 1.96² p(1-p) / 0.1², 96 at p = 0.5, 62 at p = 0.8; `sample_size`); the
  quick mode draws `QUICK_N` and says its interval is about twice as wide.
- Per band: the Wilson score interval of x_h wrong out of n_h answered.
- Overall: the stratified estimate p = Σ W_h p_h with W_h = N_h / N (N_h flagged samples in band h). Its
  variance is Σ W_h² (1 - n_h/N_h) p̃_h(1 - p̃_h) / n_h, with p̃_h = (x_h + 0.5) / (n_h + 1) so that a band
  answered all-wrong or all-right still carries sampling variance; the interval is the Wilson interval at
  p with the effective sample size n_eff = p̃(1 - p̃) / variance (the design-effect-adjusted Wilson
  interval for stratified proportions, as in Kish's effective sample size). Bands nobody answered yet
  are left out, and the estimate then covers only the answered bands (said in `covers`).
- Threshold for a requested precision: for each band's lower score edge e, the flags with score ≥ e have
  estimated precision Σ_{h: lo_h ≥ e} W_h p_h / Σ W_h; `threshold_for` returns the lowest edge whose
  estimate reaches the target (with its interval), or None.

`RUN/spot_check.json` (runfiles.SPOT_CHECK; `read_spot_check` is its one reader) holds the draw (ids,
bands, band edges and sizes), the mode and seed, and the newest estimate. The answers themselves are review
decisions (curator.review): the estimate is always recomputed from the current decisions on the drawn
samples, so an undo or a later change on the sample page is counted, and the export uses them.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.problems import DataError

Z95 = 1.959963984540054
MIN_PER_BAND = 5
QUICK_N = 30
N_BANDS = 3
WRONG_ACTIONS = ("drop", "relabel")  # a decision that says "the given label is wrong"
FORMAT = 1


def sample_size(precision: float = 0.5, half_width: float = 0.10, z: float = Z95) -> int:
    """Samples for a ±`half_width` normal-approximation interval at `precision` (96 at 0.5, ±10 %, 95 %)."""
    p = min(max(float(precision), 0.05), 0.95)
    return int(math.ceil(z * z * p * (1 - p) / half_width ** 2))


def wilson(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for x successes out of n (n may be an effective, non-integer size)."""
    if n <= 0:
        return 0.0, 1.0
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def band_edges(scores: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """(n_bands + 1,) increasing score edges cutting `scores` into bands of about equal size (fewer bands
    when scores repeat)."""
    scores = np.asarray(scores, np.float64)
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, n_bands + 1)))
    if len(edges) < 2:
        edges = np.array([scores.min(), scores.max()])
    edges[-1] = np.nextafter(edges[-1], np.inf)  # the top score falls in the last band
    return edges


def assign_bands(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Band of each score: edges[h] <= score < edges[h + 1]."""
    return np.clip(np.searchsorted(edges, np.asarray(scores, np.float64), side="right") - 1, 0, len(edges) - 2)


def draw_spot_check(sample_ids, scores, n: int, *, n_bands: int = N_BANDS, seed: int = 0) -> dict:
    """A stratified random sample of the flagged samples given (`sample_ids`, their label_issue_score).

    Returns the draw as stored in spot_check.json: edges, band sizes, and the drawn ids with band and score
    (shuffled, so the person does not see the bands in order)."""
    ids = np.asarray([str(s) for s in sample_ids])
    scores = np.asarray(scores, np.float64)
    if len(ids) == 0:
        raise DataError("no flagged samples to spot-check")
    edges = band_edges(scores, n_bands)
    band = assign_bands(scores, edges)
    sizes = np.bincount(band, minlength=len(edges) - 1)
    n = min(int(n), len(ids))
    floor = min(MIN_PER_BAND, n // len(sizes))
    alloc = np.minimum(sizes, np.maximum(floor, np.floor(n * sizes / sizes.sum()).astype(int)))
    rng = np.random.default_rng(seed)
    while alloc.sum() < n:  # hand out the rounding remainder to bands with room, largest first
        room = np.flatnonzero(alloc < sizes)
        alloc[room[np.argmax(sizes[room] - alloc[room])]] += 1
    picked = np.concatenate([rng.choice(np.flatnonzero(band == h), alloc[h], replace=False)
                             for h in range(len(sizes)) if alloc[h] > 0])
    picked = rng.permutation(picked)
    return {"format": FORMAT, "edges": edges.tolist(), "band_sizes": sizes.astype(int).tolist(),
            "sample": [{"sample_id": str(ids[i]), "band": int(band[i]), "score": float(scores[i])} for i in picked],
            "seed": int(seed), "n_requested": int(n), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def estimate_precision(band_sizes, answered, wrong, z: float = Z95) -> dict:
    """Per band and overall precision of the flags from `wrong` of `answered` per band (module docstring)."""
    N = np.asarray(band_sizes, np.float64)
    n = np.asarray(answered, np.float64)
    x = np.asarray(wrong, np.float64)
    bands = []
    for h in range(len(N)):
        lo, hi = wilson(x[h], n[h], z)
        bands.append({"band": h, "n_flagged": int(N[h]), "n_answered": int(n[h]), "n_wrong": int(x[h]),
                      "precision": float(x[h] / n[h]) if n[h] else None, "low": lo if n[h] else None,
                      "high": hi if n[h] else None})
    ok = n > 0
    if not ok.any():
        return {"bands": bands, "overall": None}
    W = N[ok] / N[ok].sum()
    p_h = x[ok] / n[ok]
    p_s = (x[ok] + 0.5) / (n[ok] + 1)
    fpc = np.clip(1 - n[ok] / N[ok], 0.0, 1.0)
    var = float(np.sum(W ** 2 * fpc * p_s * (1 - p_s) / n[ok]))
    p = float(np.sum(W * p_h))
    p_smooth = float(np.sum(W * p_s))
    if var <= 0:  # every band answered in full: the precision is known
        lo = hi = p
        n_eff = float(n[ok].sum())
    else:
        n_eff = p_smooth * (1 - p_smooth) / var
        lo, hi = wilson(p * n_eff, n_eff, z)
    overall = {"precision": p, "low": lo, "high": hi, "n_answered": int(n[ok].sum()), "effective_n": n_eff,
               "covers": float(N[ok].sum() / N.sum())}
    return {"bands": bands, "overall": overall}


def answers_from_decisions(draw: dict, decisions: pd.DataFrame) -> pd.DataFrame:
    """The drawn samples with their answer: "wrong" (drop / relabel), "right" (keep) or "" (not answered)."""
    sample = pd.DataFrame(draw["sample"], columns=["sample_id", "band", "score"])
    act = dict(zip(decisions["sample_id"].astype(str), decisions["action"].astype(str))) if len(decisions) else {}
    a = pd.Series([act.get(s, "") for s in sample["sample_id"]], dtype=object)
    sample["answer"] = np.where(a.isin(WRONG_ACTIONS), "wrong", np.where(a == "keep", "right", ""))
    return sample


def summarise(draw: dict, decisions: pd.DataFrame) -> dict:
    """The estimate for a draw given the current review decisions."""
    ans = answers_from_decisions(draw, decisions)
    k = len(draw["band_sizes"])
    done = ans[ans["answer"] != ""]
    answered = np.bincount(done["band"], minlength=k)
    wrong = np.bincount(done.loc[done["answer"] == "wrong", "band"], minlength=k)
    est = estimate_precision(draw["band_sizes"], answered, wrong)
    for b in est["bands"]:
        b["score_from"], b["score_to"] = float(draw["edges"][b["band"]]), float(draw["edges"][b["band"] + 1])
    est["n_drawn"], est["n_answered"] = len(ans), len(done)
    return est


def threshold_for(estimate: dict, target: float) -> dict | None:
    """The lowest band edge e such that the estimated precision of the flags with score ≥ e reaches `target`
    (score_from, precision, low, high, n_flagged), or None. Uses only answered bands."""
    bands = [b for b in estimate["bands"] if b["n_answered"]]
    for i in range(len(bands)):
        part = bands[i:]
        est = estimate_precision([b["n_flagged"] for b in part], [b["n_answered"] for b in part],
                                 [b["n_wrong"] for b in part])["overall"]
        if est and est["precision"] >= target:
            return {"score_from": part[0].get("score_from"), "precision": est["precision"], "low": est["low"],
                    "high": est["high"], "n_flagged": int(sum(b["n_flagged"] for b in part))}
    return None


def write_spot_check(run_dir: str | os.PathLike, draw: dict, decisions: pd.DataFrame | None = None) -> dict:
    """Save the draw (and, given the decisions, its current estimate) as RUN/spot_check.json."""
    from curator.rundir import write_json_atomic

    record = dict(draw)
    if decisions is not None:
        record["estimate"] = summarise(draw, decisions)
        record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json_atomic(Path(run_dir) / runfiles.SPOT_CHECK, record)
    return record


def read_spot_check(run_dir: str | os.PathLike) -> dict | None:
    """RUN/spot_check.json, or None when no spot check was started; DataError if it is damaged."""
    import json

    path = Path(run_dir) / runfiles.SPOT_CHECK
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')!r}, expected {FORMAT}")
        for key in ("edges", "band_sizes", "sample"):
            if not isinstance(record.get(key), list):
                raise ValueError(f"no list {key!r}")
        if len(record["edges"]) != len(record["band_sizes"]) + 1:
            raise ValueError("edges and band_sizes do not match")
        for s in record["sample"]:
            if not (isinstance(s.get("sample_id"), str) and isinstance(s.get("band"), int)
                    and 0 <= s["band"] < len(record["band_sizes"])):
                raise ValueError(f"bad sample entry {s!r}"[:200])
    except (ValueError, AttributeError, TypeError) as exc:
        raise DataError(f"{path} is damaged ({exc}); delete it to start a new spot check") from None
    return record
