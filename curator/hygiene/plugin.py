"""What a hygiene check is: one issue kind a training sample can have, declared once (`HygieneCheck`).

A check says which kind it flags (its flag column ``is_<kind>_issue`` is derived from the name), the columns it
writes into RUN/hygiene.parquet (declared into the column contract, `curator.columns`), its version (part of the
hygiene stage's fingerprint: a changed check re-runs), its words for the report and the explorer, whether
``curator export --drop`` may drop it and, for checks that group samples, how a group keeps one member. Its
settings live in the recipe's ``[hygiene]`` section; ``hygiene.off = ["<kind>"]`` switches it off (its columns
are then empty and hygiene.json says why). The registry of checks is `curator.hygiene.registry`; how to add
one is in ARCHITECTURE.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curator.columns import Column, Direction
from curator.evidence import KnnGraph
from curator.hygiene.config import HygieneConfig

HYGIENE_SOURCE = "hygiene checks (curator.hygiene)"


@dataclass(frozen=True)
class IssueKind:
    """A kind of issue (``issue_kinds`` of audit.parquet), with its words for people."""

    kind: str
    words: str


@dataclass
class TestEmbeddings:
    """The test rows' embeddings (manifest order; all-zero rows could not be embedded) and their ids."""

    embeddings: np.ndarray
    sample_ids: np.ndarray


@dataclass
class CheckInputs:
    """Everything a check may read, for the training rows in manifest order (= the kNN graph's order)."""

    ids: np.ndarray                      # (N,) training sample ids
    labels: np.ndarray                   # (N,) given labels
    properties: pd.DataFrame             # image properties aligned to `ids` (NaN rows where not measured)
    measured: np.ndarray                 # (N,) bool: the image was measured
    all_properties: pd.DataFrame | None  # image properties of every split (None: images not decoded)
    others: pd.DataFrame                 # the other splits' rows: sample_id, split
    graph: KnnGraph | None
    cfg: HygieneConfig
    train_features: np.ndarray | None = None
    train_embeddings: np.ndarray | None = None
    test: TestEmbeddings | None = None
    skipped_properties: str = ""         # why there are no image properties, when there are none
    device: object = None
    found: dict = field(default_factory=dict)   # summaries of the checks run so far, by kind (a check may read one)

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass
class Found:
    """What a check found: its columns (N,) each, its summary (RUN/hygiene.json) and extra counts."""

    columns: dict[str, np.ndarray]
    summary: dict
    counts: dict[str, int] = field(default_factory=dict)     # e.g. {"quality:dark": 3}
    pairs: pd.DataFrame | None = None                        # the leak check's pairs (RUN/leakage.parquet)


class HygieneCheck:
    """Base of every hygiene check; a subclass sets the class attributes and implements `run` and `empty`."""

    kind: str = ""                       # the issue kind: flag column is_<kind>_issue
    version: int = 1                     # bump when the check's results change
    words: str = ""                      # what the kind means, for the report and the explorer's overview
    flag_explanation: str = ""           # one sentence for the is_<kind>_issue column
    title: str = ""                      # heading of its section in the report and the overview
    summary_key: str = ""                # its section of RUN/hygiene.json (default: the kind)
    values: tuple[Column, ...] = ()      # measurement columns (hygiene.parquet, usually also signals.parquet)
    flags: tuple[Column, ...] = ()       # further columns fused into audit.parquet beside is_<kind>_issue
    droppable: bool = True               # `curator export --drop <kind>` may remove the flagged samples
    group_column: str = ""               # a check that groups samples: the group column (−1 = none) ...
    keeper: Column | None = None         # ... and the audit column naming the member a de-duplicated export keeps

    @property
    def key(self) -> str:
        return self.summary_key or self.kind

    @property
    def flag_column(self) -> str:
        return f"is_{self.kind}_issue"

    def score(self, direction: Direction, range: str, explanation: str) -> Column:
        """The ``<kind>_score`` column of a check that measures one number per sample."""
        return Column(f"{self.kind}_score", ("hygiene", "signals"), direction, range, explanation,
                      f"{self.kind} check ({type(self).__module__})")

    def columns(self) -> tuple[Column, ...]:
        """Every column the check declares, in table order: values, the flag, further flags, the keeper."""
        flag = Column(self.flag_column, ("hygiene", "audit"), "higher_is_worse", "bool", self.flag_explanation,
                      HYGIENE_SOURCE)
        return (*self.values, flag, *self.flags, *((self.keeper,) if self.keeper else ()))

    def run(self, inputs: CheckInputs) -> Found:
        raise NotImplementedError

    def empty(self, n: int) -> dict[str, np.ndarray]:
        """The check's columns when it did not run (switched off or nothing to check): NaN values, no flags."""
        out = {c.name: np.full(n, np.nan, np.float32) for c in self.values}
        out[self.flag_column] = np.zeros(n, bool)
        out.update({c.name: np.full(n, "", dtype=object) for c in self.flags})
        return out

    def drop_mask(self, table: pd.DataFrame, unusable: tuple[str, ...]) -> np.ndarray:
        """(N,) bool: the rows ``export --drop <kind>`` removes (the flagged ones unless the check says otherwise)."""
        return table[self.flag_column].fillna(False).to_numpy(bool)

    def describe(self, summary: dict) -> str:
        """One sentence on what the check found and its threshold (report, overview); "" when nothing to say."""
        return f"skipped: {summary['skipped']}" if summary.get("skipped") else ""

    def details(self, summary: dict) -> list[dict]:
        """Rows of a table of details for the report and the overview (e.g. one per image-quality test)."""
        return []
