"""Per-dataset thresholds: far outside the dataset's own distribution, on the right side, never on a dataset
without spread unless the difference is meaningful, and the same rule whatever the dataset's level."""
import math

import numpy as np
import pandas as pd

from curator.data.properties import MEASURES
from curator.hygiene.thresholds import PROPERTY_CHECKS, flag_properties, robust_bound, robust_spreads


def test_robust_spreads_match_sigma_on_normal_data():
    x = np.random.default_rng(0).normal(3.0, 2.0, 200_000)
    med, lo, hi = robust_spreads(x)
    assert abs(med - 3.0) < 0.02 and abs(lo - 2.0) < 0.05 and abs(hi - 2.0) < 0.05


def test_bound_flags_planted_extremes_on_the_asked_side_only():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 5000)
    x[:10], x[10:20] = -9.0, 9.0
    low = robust_bound(x, tail="lower", z=4).flags(x)
    assert low[:10].all() and not low[10:20].any() and low[20:].mean() < 0.001
    both = robust_bound(x, tail="both", z=4).flags(x)
    assert both[:20].all()
    assert not robust_bound(x, tail="upper", z=4).flags(np.array([np.nan]))[0]       # NaN is never flagged


def test_the_threshold_follows_the_dataset_not_a_constant():
    rng = np.random.default_rng(2)
    bright = rng.normal(0.8, 0.05, 1000)
    dim = bright - 0.4                                    # a dataset of night photographs: dim as a whole
    assert robust_bound(bright, tail="lower", z=4).flags(bright).mean() < 0.002
    assert robust_bound(dim, tail="lower", z=4).flags(dim).mean() < 0.002
    assert robust_bound(bright, tail="lower", z=4).flags(np.array([0.4]))[0]        # dim in a bright dataset
    assert not robust_bound(dim, tail="lower", z=4).flags(np.array([0.4]))[0]       # ordinary in a dim one


def test_without_spread_only_a_meaningful_difference_is_flagged():
    x = np.zeros(1000)                                    # every value alike (all CIFAR images are 32 x 32)
    x[0], x[1] = 0.1, math.log(3)
    b = robust_bound(x, tail="both", z=4, min_gap=math.log(2))
    assert b.flags(x).tolist()[:2] == [False, True] and b.flags(x).sum() == 1


def test_mirror_takes_the_spread_from_the_other_side():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 5000), rng.normal(-5, 0.3, 600)])    # a heavy lower tail (duplicates)
    plain, mirrored = robust_bound(x, tail="lower", z=3), robust_bound(x, tail="lower", z=3, mirror=True)
    assert mirrored.low > plain.low                        # the tail does not widen its own threshold
    assert mirrored.flags(x)[5000:].mean() > 0.9


def _props(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "content_hash": "", "width": 32, "height": 32,
                       "darkness": rng.uniform(0, 0.3, n), "lightness": rng.uniform(0, 0.3, n),
                       "sharpness": rng.lognormal(np.log(0.5), 0.2, n), "entropy": rng.normal(7, 0.3, n),
                       "colorfulness": rng.lognormal(np.log(0.1), 0.3, n)})
    return df


def test_each_property_check_flags_its_planted_image_and_names_its_rule():
    df = _props()
    df.loc[0, "darkness"] = 0.9
    df.loc[1, "lightness"] = 0.9
    df.loc[2, "sharpness"] = 0.05
    df.loc[3, "entropy"] = 1.0
    df.loc[4, "colorfulness"] = 0.0
    df.loc[5, ["width", "height"]] = [96, 96]
    df.loc[6, ["width", "height"]] = [80, 13]
    flags, info = flag_properties(df, z=4)
    want = {"dark": 0, "light": 1, "blurry": 2, "low_information": 3, "grayscale": 4, "odd_size": 5, "odd_aspect_ratio": 6}
    for check, row in want.items():
        assert np.flatnonzero(flags[check]).tolist() == [row], (check, np.flatnonzero(flags[check]))
        assert info[check]["n_flagged"] == 1 and info[check]["flag_when"]
    assert [c.name for c in PROPERTY_CHECKS] == list(want)
    assert info["dark"]["flag_when"].startswith("darkness >") and info["blurry"]["flag_when"].startswith("sharpness <")


def test_a_grayscale_dataset_has_no_grayscale_issue_and_unmeasured_images_none():
    df = _props()
    df["colorfulness"] = 0.0                              # digits: every image is grey
    flags, _ = flag_properties(df, z=4)
    assert not flags["grayscale"].any()
    df.loc[:9, list(MEASURES)] = np.nan                   # images that could not be measured
    flags, _ = flag_properties(df, z=4)
    assert not any(f[:10].any() for f in flags.values())
