"""Bad-input policy (docs/datasets.md): every problem is reported with the sample and the reason.

A `ProblemReport` collects problems while an adapter or a stage reads data. What happens to a
bad sample is decided by one flag, `on_bad`:

- ``"skip"``  (default): the sample is excluded from the manifest and listed in the report;
- ``"keep"``: the sample stays (e.g. an image converted from CMYK) and is listed;
- ``"error"``: the first problem stops the run with a `DataError` naming it.

Two kinds of entries are *notes*, not problems, and never stop a run under any policy: dataset-level
findings (``note``: an empty class, an ignored file, a hidden file) and images converted to RGB
(``converted``: grayscale, CMYK, 16-bit, alpha). They are listed (action ``"noted"`` /
``"converted"``) but not counted as problems, so a folder of ordinary grayscale PNGs reports none.

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
    action: str = "skipped"  # "skipped", "kept", "fatal"; notes: "converted", "noted"

    @property
    def is_note(self) -> bool:
        """A finding that is not a bad sample (a conversion or a dataset-level note)."""
        return self.action in NOTE_ACTIONS


NOTE_ACTIONS = ("converted", "noted")


@dataclass
class ProblemReport:
    on_bad: OnBad = "skip"
    problems: list[Problem] = field(default_factory=list)

    def add(self, sample_id: str, source: str, kind: str, reason: str, *, convertible: bool = False) -> bool:
        """Record a problem; return True if the sample should be kept.

        `convertible` findings (grayscale/CMYK/16-bit/alpha images that can be converted to RGB)
        are notes: kept and marked as converted under every policy, "error" included.
        """
        if convertible:
            self.converted(sample_id, source, kind, reason)
            return True
        if self.on_bad == "error":
            self.problems.append(Problem(sample_id, source, kind, reason, "fatal"))
            where = f"sample {sample_id!r}" if sample_id else "dataset"
            raise DataError(f"{where} ({source}): {reason} [{kind}]")
        action = "kept" if self.on_bad == "keep" else "skipped"
        self.problems.append(Problem(sample_id, source, kind, reason, action))
        return action != "skipped"

    def note(self, kind: str, reason: str, source: str = "", sample_id: str = "") -> None:
        """A finding that is not a bad sample (e.g. an empty class, an ignored file); never fatal."""
        self.problems.append(Problem(sample_id, source, kind, reason, "noted"))

    def converted(self, sample_id: str, source: str, kind: str, reason: str) -> None:
        """An image converted to RGB (grayscale, CMYK, 16-bit, alpha): kept, noted, never fatal."""
        self.problems.append(Problem(sample_id, source, kind, reason, "converted"))

    @property
    def bad(self) -> list[Problem]:
        """The entries that are real problems (bad samples or fatal errors), without the notes."""
        return [p for p in self.problems if not p.is_note]

    @property
    def notes(self) -> list[Problem]:
        return [p for p in self.problems if p.is_note]

    def extend(self, other: "ProblemReport") -> None:
        self.problems.extend(other.problems)

    def to_frame(self) -> pd.DataFrame:
        cols = ["sample_id", "source", "kind", "reason", "action"]
        return pd.DataFrame([asdict(p) for p in self.problems], columns=cols)

    def summary(self, *, notes: bool | None = False) -> dict[str, int]:
        """Count by kind: of the problems (default), of the notes (``notes=True``) or of all (None)."""
        out: dict[str, int] = {}
        for p in self.problems:
            if notes is not None and p.is_note != notes:
                continue
            out[p.kind] = out.get(p.kind, 0) + 1
        return out
