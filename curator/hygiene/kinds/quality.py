"""The image-quality check: images far outside the dataset's own distribution of image properties (dark, light,
blurry, low information, grayscale, odd size or aspect ratio; `curator.hygiene.thresholds`), measured in the
image pass (`curator.data.properties`)."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curator.columns import Column
from curator.hygiene.plugin import HYGIENE_SOURCE, CheckInputs, Found, HygieneCheck
from curator.hygiene.thresholds import PROPERTY_CHECKS, UNUSABLE, flag_properties

LOG = logging.getLogger(__name__)


def quality_text(flags: dict[str, np.ndarray], n: int) -> np.ndarray:
    """(N,) object array: the names of the checks that fired, comma-separated in `PROPERTY_CHECKS` order."""
    text = np.full(n, "", dtype=object)
    for check in PROPERTY_CHECKS:
        f = flags[check.name]
        if f.any():
            text[f] = [f"{t},{check.name}" if t else check.name for t in text[f]]
    return text


def unusable_mask(quality_issues, unusable=UNUSABLE) -> np.ndarray:
    """(N,) bool: the sample's ``quality_issues`` text names one of the `unusable` checks."""
    text = pd.Series(quality_issues, dtype=object).fillna("").astype(str).to_numpy()
    out = np.zeros(len(text), bool)
    wanted = set(unusable)
    some = np.flatnonzero(text != "")                                  # most samples have no quality issue
    out[some] = [bool(wanted.intersection(t.split(","))) for t in text[some]]
    return out


class QualityCheck(HygieneCheck):
    kind = "quality"
    version = 1
    words = "image quality"
    title = "Image quality"
    flag_explanation = "At least one image-quality check fired (quality_issues says which)."
    flags = (Column("quality_issues", ("hygiene", "audit"), "info", "text",
                    "The image-quality checks that fired, e.g. 'dark,blurry' (dark, light, blurry, low_information, "
                    "grayscale, odd_size, odd_aspect_ratio); each flags values far outside the dataset's own "
                    "distribution.", HYGIENE_SOURCE),)

    def run(self, inputs: CheckInputs) -> Found:
        n, measured = inputs.n, inputs.measured
        if measured.any():
            flags, info = flag_properties(inputs.properties, inputs.cfg.property_z)
            summary = {"n_measured": int(measured.sum()), "z": inputs.cfg.property_z, "checks": info}
            if not measured.all():
                summary["not_measured"] = int((~measured).sum())
        else:
            flags = {c.name: np.zeros(n, bool) for c in PROPERTY_CHECKS}
            summary = {"skipped": inputs.skipped_properties or "no image properties were measured"}
            LOG.info("hygiene: image-quality checks skipped (%s)", summary["skipped"])
        flag = np.any([flags[c.name] for c in PROPERTY_CHECKS], axis=0) if PROPERTY_CHECKS else np.zeros(n, bool)
        return Found({self.flag_column: flag, "quality_issues": quality_text(flags, n)}, summary,
                     counts={f"quality:{c.name}": int(flags[c.name].sum()) for c in PROPERTY_CHECKS})

    def drop_mask(self, table: pd.DataFrame, unusable: tuple[str, ...]) -> np.ndarray:
        return unusable_mask(table["quality_issues"], unusable)      # only unusable images; grayscale etc. stay

    def describe(self, summary: dict) -> str:
        if "checks" in summary:
            return (f"Each check flags values more than {summary.get('z')} robust spreads outside this dataset's own "
                    "distribution (docs/hygiene.md).")
        return f"Image-quality checks skipped: {summary['skipped']}." if summary.get("skipped") else ""

    def details(self, summary: dict) -> list[dict]:
        return [{"check": k, "flagged": v.get("n_flagged"), "median": v.get("median"), "flagged when": v.get("flag_when"),
                 "meaning": v.get("description")} for k, v in summary.get("checks", {}).items()]
