"""The spot check's estimate against an independent reference and a simulated reviewer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from curator.audit.spot_check import (band_edges, draw_spot_check, estimate_precision, read_spot_check, sample_size,
                                      summarise, threshold_for, wilson, write_spot_check)
from curator.data.problems import DataError


def test_wilson_matches_statsmodels_formula_and_sample_size():
    # reference: the closed form of Wilson (1927), written out independently with scipy's normal quantile
    for x, n in [(0, 10), (7, 10), (50, 80), (80, 80)]:
        z = stats.norm.ppf(0.975)
        p = x / n
        c = (p + z * z / (2 * n)) / (1 + z * z / n)
        h = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert np.allclose(wilson(x, n), (max(0, c - h), min(1, c + h)))
    assert sample_size(0.5) == 97 and sample_size(0.8) == 62   # 1.96^2 * p(1-p) / 0.01, rounded up


def test_draw_is_stratified_without_repeats():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.5, 1.0, 1000)
    draw = draw_spot_check([f"s{i}" for i in range(1000)], scores, 90, seed=1)
    ids = [s["sample_id"] for s in draw["sample"]]
    assert len(ids) == len(set(ids)) == 90
    per_band = np.bincount([s["band"] for s in draw["sample"]], minlength=3)
    assert sum(draw["band_sizes"]) == 1000 and (per_band >= 29).all()        # about equal bands, about equal shares
    edges = np.asarray(draw["edges"])
    for s in draw["sample"]:
        assert edges[s["band"]] <= s["score"] < edges[s["band"] + 1]
    with pytest.raises(DataError):
        draw_spot_check([], [], 10)


def _simulated_dataset(seed: int):
    """Flagged samples whose chance of truly being mislabelled rises with the score (as a real audit's)."""
    rng = np.random.default_rng(1000 + seed)
    n = 2000
    scores = rng.beta(5, 2, n)
    truly_wrong = rng.random(n) < 0.25 + 0.7 * scores ** 2
    return np.array([f"s{i}" for i in range(n)]), scores, truly_wrong


def test_interval_covers_the_true_precision_with_a_simulated_reviewer():
    """A reviewer answers from the true labels of a generated dataset; the 95 % interval must cover the flags'
    true precision in >= 90 % of 50 seeded repetitions (and per band too)."""
    covered, band_covered, band_total, widths = 0, 0, 0, []
    for seed in range(50):
        ids, scores, wrong = _simulated_dataset(seed)
        draw = draw_spot_check(ids, scores, sample_size(0.7), seed=seed)
        truth = dict(zip(ids, wrong))
        decisions = pd.DataFrame({"sample_id": [s["sample_id"] for s in draw["sample"]],
                                  "action": ["drop" if truth[s["sample_id"]] else "keep" for s in draw["sample"]]})
        est = summarise(draw, decisions)
        o = est["overall"]
        covered += o["low"] <= wrong.mean() <= o["high"]
        widths.append(o["high"] - o["low"])
        band = np.clip(np.searchsorted(draw["edges"], scores, side="right") - 1, 0, len(draw["band_sizes"]) - 1)
        for b in est["bands"]:
            band_total += 1
            band_covered += b["low"] <= wrong[band == b["band"]].mean() <= b["high"]
    print(f"overall covered {covered}/50, bands {band_covered}/{band_total}, median width {np.median(widths):.3f}")
    assert covered >= 45, covered
    assert band_covered >= 0.9 * band_total, (band_covered, band_total)
    assert np.median(widths) <= 0.22, np.median(widths)                    # about ±10 %


def test_stratified_estimate_weights_bands_by_size():
    est = estimate_precision([900, 100], [10, 10], [5, 10])
    assert est["overall"]["precision"] == pytest.approx(0.9 * 0.5 + 0.1 * 1.0)
    assert est["overall"]["low"] < 0.55 < est["overall"]["high"]
    assert est["bands"][1]["precision"] == 1.0 and est["bands"][1]["high"] == pytest.approx(1.0)
    partial = estimate_precision([500, 500], [0, 20], [0, 18])
    assert partial["overall"]["covers"] == 0.5 and partial["bands"][0]["precision"] is None
    assert estimate_precision([10], [0], [0])["overall"] is None


def test_threshold_for_a_requested_precision():
    est = estimate_precision([400, 300, 300], [30, 30, 30], [12, 24, 29])
    for b, lo in zip(est["bands"], (0.5, 0.7, 0.9)):
        b["score_from"] = lo
    t = threshold_for(est, 0.85)
    assert t["score_from"] == 0.7 and t["precision"] == pytest.approx((24 / 30 + 29 / 30) / 2)
    assert threshold_for(est, 0.5)["score_from"] == 0.5
    assert threshold_for(est, 0.99) is None


def test_spot_check_file_round_trip_and_damage(tmp_path):
    draw = draw_spot_check(["a", "b", "c", "d"], [0.6, 0.7, 0.8, 0.9], 4, n_bands=2)
    write_spot_check(tmp_path, draw, pd.DataFrame({"sample_id": ["a"], "action": ["relabel"]}))
    back = read_spot_check(tmp_path)
    assert back["sample"] == draw["sample"] and back["estimate"]["n_answered"] == 1
    assert read_spot_check(tmp_path / "nothing") is None
    (tmp_path / "spot_check.json").write_text('{"format": 1, "edges": [0, 1], "band_sizes": [4], "sample": [{"band": 7}]}')
    with pytest.raises(DataError, match="damaged"):
        read_spot_check(tmp_path)
    assert len(band_edges(np.full(10, 0.7))) == 2                             # identical scores: one band


def test_report_shows_the_spot_check():
    from curator.audit.report import spot_check_section

    rng = np.random.default_rng(0)
    draw = draw_spot_check([f"s{i}" for i in range(100)], rng.uniform(0.5, 1, 100), 12, seed=0)
    dec = pd.DataFrame({"sample_id": [s["sample_id"] for s in draw["sample"][:6]], "action": ["drop"] * 4 + ["keep"] * 2})
    html = "".join(spot_check_section({**summarise(draw, dec), "mode": "quick"}))
    assert "Measured precision of the flags (spot check)" in html and "answered 6 of 12" in html and "quick" in html
    assert spot_check_section(None) == [] and spot_check_section(summarise(draw, dec.iloc[:0])) == []
