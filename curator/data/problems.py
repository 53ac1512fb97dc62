"""Bad-input policy (SPEC §3): every problem is reported with the sample and the reason.

A `ProblemReport` collects problems while an adapter or a stage reads data. What happens to a
bad sample is decided by one flag, `on_bad`:

- ``"skip"``  (default): the sample is excluded from the manifest and listed in the report;
- ``"keep"``: the sample stays (e.g. an image converted from CMYK) and is listed;
- ``"error"``: the first problem stops the run with a `DataError` naming it.

Nothing is dropped silently: every exclusion appears in `ProblemReport.problems`, in the CLI
output of `curator inspect` and in the run directory's `problems.parquet`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import pandas as pd

OnBad = Literal["skip", "keep", "error"]
ON_BAD_CHOICES = ("skip", "keep", "error")


class DataError(Exception):
    """A dataset cannot be read: wrong root, missing file, unknown name, or a bad sample under on_bad='error'."""


@dataclass(frozen=True)
class Problem:
    sample_id: str          # the sample's id, or "" for problems not tied to one sample
    source: str             # file or path the problem was found in
    kind: str               # short machine-readable kind, e.g. "unreadable_image", "label_out_of_range"
    reason: str             # human-readable explanation
    action: str = "skipped"  # "skipped", "kept", "converted", "fatal"


@dataclass
class ProblemReport:
    on_bad: OnBad = "skip"
    problems: list[Problem] = field(default_factory=list)

    def add(self, sample_id: str, source: str, kind: str, reason: str, *, convertible: bool = False) -> bool:
        """Record a problem; return True if the sample should be kept.

        `convertible` problems (grayscale/CMYK/16-bit/alpha images that can be converted to RGB)
        are kept and marked as converted under every policy except "error".
        """
        if self.on_bad == "error":
            self.problems.append(Problem(sample_id, source, kind, reason, "fatal"))
            where = f"sample {sample_id!r}" if sample_id else "dataset"
            raise DataError(f"{where} ({source}): {reason} [{kind}]")
        if convertible:
            action = "converted"
        else:
            action = "kept" if self.on_bad == "keep" else "skipped"
        self.problems.append(Problem(sample_id, source, kind, reason, action))
        return action != "skipped"

    def note(self, kind: str, reason: str, source: str = "") -> None:
        """A dataset-level finding that is not a bad sample (e.g. an empty class); never fatal."""
        self.problems.append(Problem("", source, kind, reason, "noted"))

    def extend(self, other: "ProblemReport") -> None:
        self.problems.extend(other.problems)

    def to_frame(self) -> pd.DataFrame:
        cols = ["sample_id", "source", "kind", "reason", "action"]
        return pd.DataFrame([asdict(p) for p in self.problems], columns=cols)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.kind] = out.get(p.kind, 0) + 1
        return out
