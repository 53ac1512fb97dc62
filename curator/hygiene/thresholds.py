"""Per-dataset thresholds: a value is flagged when it lies far outside the dataset's own distribution.

No check uses a fixed cut-off such as "brightness below 0.2": a folder of night photographs or X-rays is
dark as a whole, and only images much darker than *its* images are a problem. `robust_bound` therefore
measures the centre and the spread of the dataset's values and flags values more than ``z`` spreads
beyond the centre, on the side that matters:

- centre = the median;
- spread of a side = the widest of three robust estimates of a standard deviation from that side's
  quantiles: 1.4826 · MAD, (median − Q25) / 0.6745 and (median − Q10) / 1.2816 (mirrored for the upper
  side). Each equals σ for normal data; using the side's own quantiles follows skewed distributions
  (image entropy has a long lower tail of legitimately plain images), and the deciles keep a minority
  of, say, portrait photographs in a landscape dataset from looking "odd" just because the quartiles
  coincide;
- a minimum gap (`Check.min_gap`, in the check's own units) is the one constant: when the dataset has
  no spread at all (every CIFAR image is 32 x 32, every digit's brightest pixel is white), a value must
  still differ by a meaningful amount (half or double the area, half the brightest luma) to be flagged.

The checks work on a transformed value (`Check.transform`) on which natural images are closer to
symmetric: logarithms of ratios and positive quantities (sharpness, colourfulness, area, aspect ratio),
the logarithm of the 99th-percentile luma for "dark" (log(1 − darkness)) and of the distance of the 5th
percentile from white for "light" (log(1 − lightness)), and entropy itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Tail = Literal["upper", "lower", "both"]
_Z_Q25, _Z_Q10 = 0.6745, 1.2816    # standard-normal quantiles of 0.75 and 0.90


@dataclass(frozen=True)
class Bound:
    """The flagged region of one check: values (after the transform) below `low` or above `high`."""

    centre: float
    low: float | None       # None: the lower side is not checked
    high: float | None
    spread_low: float
    spread_high: float

    def flags(self, t: np.ndarray) -> np.ndarray:
        """(N,) bool for transformed values `t`; NaN (not measured) is never flagged."""
        t = np.asarray(t, dtype=np.float64)
        out = np.zeros(t.shape, bool)
        with np.errstate(invalid="ignore"):
            if self.low is not None:
                out |= t < self.low
            if self.high is not None:
                out |= t > self.high
        return out


def robust_spreads(t: np.ndarray) -> tuple[float, float, float]:
    """(median, lower spread, upper spread) of the finite values of `t` (see the module docstring)."""
    t = np.asarray(t, dtype=np.float64)
    t = t[np.isfinite(t)]
    if len(t) == 0:
        return math.nan, 0.0, 0.0
    q10, q25, med, q75, q90 = np.quantile(t, [0.10, 0.25, 0.5, 0.75, 0.90])
    mad = 1.4826 * float(np.median(np.abs(t - med)))
    low = max(mad, (med - q25) / _Z_Q25, (med - q10) / _Z_Q10)
    high = max(mad, (q75 - med) / _Z_Q25, (q90 - med) / _Z_Q10)
    return float(med), float(low), float(high)


def robust_bound(t: np.ndarray, *, tail: Tail, z: float, min_gap: float = 0.0, mirror: bool = False) -> Bound:
    """The region more than `z` robust spreads (and at least `min_gap`) beyond the median of `t`.

    `mirror`: measure the spread on the *other* side of the median — for a tail that holds what is looked for
    in numbers large enough to widen its own spread (near duplicates: CIFAR-10 has hundreds, and they stretch
    the lower quantiles of the nearest-neighbour distance); the other side then stands for the ordinary samples.
    """
    med, lo, hi = robust_spreads(t)
    if mirror:
        lo, hi = hi, lo
    if not math.isfinite(med):
        return Bound(med, None, None, lo, hi)
    low = med - max(z * lo, min_gap) if tail in ("lower", "both") else None
    high = med + max(z * hi, min_gap) if tail in ("upper", "both") else None
    return Bound(med, low, high, lo, hi)


_EPS_LUMA = 1.0 / 255.0     # one grey level: log(1 − darkness + this) keeps an all-black image finite
_EPS_COLOUR = 1e-4          # far below one grey level of colour (1/255): exact greys sit apart from tinted images


@dataclass(frozen=True)
class Check:
    """One image-property check: which measure, on which scale, which side is a problem."""

    name: str                     # the issue name, e.g. "dark" (listed in audit.parquet `quality_issues`)
    column: str                   # the property column it reads (curator.data.properties)
    tail: Tail
    min_gap: float                # least distance from the median to flag, in transformed units
    description: str              # what a flagged image is, for people

    def transform(self, props: pd.DataFrame) -> np.ndarray:
        """The values the bound is computed on (N,) float64, NaN where the image was not measured."""
        if self.column == "area":
            return np.log(props["width"].to_numpy(np.float64) * props["height"].to_numpy(np.float64))
        if self.column == "aspect_ratio":
            return np.log(props["width"].to_numpy(np.float64) / props["height"].to_numpy(np.float64))
        v = props[self.column].to_numpy(np.float64)
        if self.column in ("darkness", "lightness"):   # log of the distance from the extreme: 1 − darkness = p99 luma
            return np.log(1.0 - v + _EPS_LUMA)
        if self.column == "sharpness":
            return np.log(v + 1e-4)
        if self.column == "colorfulness":
            return np.log(v + _EPS_COLOUR)
        return v


#: The image-quality checks, in the order they are listed. "Unusable" ones (`UNUSABLE`) are what the
#: export's ``--drop quality`` removes; grayscale, odd sizes and odd aspect ratios are listed, not dropped.
PROPERTY_CHECKS: tuple[Check, ...] = (
    Check("dark", "darkness", "lower", math.log(2.0), "much darker than the dataset's images (even its brightest "
                                                      "pixels are dark)"),
    Check("light", "lightness", "lower", math.log(2.0), "much lighter than the dataset's images (washed out: even its "
                                                        "darkest pixels are bright)"),
    Check("blurry", "sharpness", "lower", math.log(2.0), "much less fine detail than the dataset's images (blurred)"),
    Check("low_information", "entropy", "lower", 1.0, "far fewer distinct grey levels than the dataset's images "
                                                      "(blank or nearly empty)"),
    Check("grayscale", "colorfulness", "lower", math.log(4.0), "without colour in a dataset of colour images"),
    Check("odd_size", "area", "both", math.log(2.0), "far smaller or larger (in pixels) than the dataset's images"),
    Check("odd_aspect_ratio", "aspect_ratio", "both", math.log(1.5), "far narrower or wider than the dataset's images"),
)
UNUSABLE = ("dark", "light", "blurry", "low_information")


def flag_properties(props: pd.DataFrame, z: float) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Flags of every property check for the rows of `props` (a properties frame, NaN where not measured)
    and what each threshold was: ({check: (N,) bool}, {check: {column, flag_when, flag_below, flag_above, ...}}),
    the bounds given in the property's own units (``area`` in pixels, ``aspect_ratio`` = width / height)."""
    flags, info = {}, {}
    for check in PROPERTY_CHECKS:
        t = check.transform(props)
        bound = robust_bound(t, tail=check.tail, z=z, min_gap=check.min_gap)
        flags[check.name] = bound.flags(t)
        below, above = _back(check, bound.low), _back(check, bound.high)
        if check.column in ("darkness", "lightness"):     # checked on log(1 − value): its lower side is the upper one
            below, above = None, below
        rule = " or ".join(([f"{check.column} < {below:.4g}"] if below is not None else [])
                           + ([f"{check.column} > {above:.4g}"] if above is not None else []))
        info[check.name] = {"column": check.column, "scale": _scale_name(check), "median": _back(check, bound.centre),
                            "flag_below": below, "flag_above": above, "flag_when": rule,
                            "n_flagged": int(flags[check.name].sum()), "description": check.description}
    return flags, info


def _scale_name(check: Check) -> str:
    if check.column in ("darkness", "lightness"):
        return "log(1 - value)"
    return "log" if check.column in ("sharpness", "colorfulness", "area", "aspect_ratio") else "linear"


def _back(check: Check, t: float | None) -> float | None:
    """A transformed value in the property's own units (pixels, width / height, …), for people and hygiene.json."""
    if t is None or not math.isfinite(t):
        return None
    if check.column in ("area", "aspect_ratio"):
        return float(math.exp(t))
    if check.column in ("darkness", "lightness"):
        return float(min(max(1.0 - (math.exp(t) - _EPS_LUMA), 0.0), 1.0))
    if check.column == "sharpness":
        return float(max(math.exp(t) - 1e-4, 0.0))
    if check.column == "colorfulness":
        return float(max(math.exp(t) - _EPS_COLOUR, 0.0))
    return float(t)
