"""How many training samples have each kind of issue: the numbers the report and the explorer's overview show."""
from __future__ import annotations

import numpy as np
import pandas as pd

from curator.hygiene import registry
from curator.hygiene.thresholds import PROPERTY_CHECKS


def kind_flag(table: pd.DataFrame, kind: str) -> np.ndarray | None:
    """(N,) bool flag of `kind` in an audit table, or None when the table has no such column."""
    col = f"is_{kind}_issue"
    if col not in table.columns:
        return None
    return table[col].fillna(False).to_numpy(bool)


def kind_counts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per issue kind present in `table`: kind, what it means, samples, share of samples, and for the
    hygiene kinds how many of those samples are also label issues (``also_label``)."""
    n = max(len(table), 1)
    label = kind_flag(table, "label")
    rows = []
    for kind in registry.kinds():
        f = kind_flag(table, kind)
        if f is None:
            continue
        row = {"kind": kind, "meaning": registry.words(kind), "samples": int(f.sum()), "share": float(f.sum() / n)}
        if kind != "label" and label is not None:
            row["also_label"] = int((f & label).sum())
        rows.append(row)
    out = pd.DataFrame(rows, columns=["kind", "meaning", "samples", "share", "also_label"])
    return out.astype({"also_label": "Int64"})                      # empty for the label kind itself


def quality_counts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per image-quality check: check, samples it flags (from ``quality_issues``)."""
    if "quality_issues" not in table.columns:
        return pd.DataFrame(columns=["check", "samples"])
    text = table["quality_issues"].fillna("").astype(str)
    some = text[text != ""].str.split(",")
    counts = pd.Series([name for names in some for name in names], dtype=object).value_counts()
    return pd.DataFrame({"check": [c.name for c in PROPERTY_CHECKS],
                         "samples": [int(counts.get(c.name, 0)) for c in PROPERTY_CHECKS]})


def label_issue_split(table: pd.DataFrame) -> dict[str, int]:
    """Label issues split by what else the sample has: on a usable image ("label only") versus on an image
    with a quality issue, a duplicate or an outlier — the distinction the fused audit exists for."""
    label = kind_flag(table, "label")
    if label is None:
        return {}
    out = {"label_issues": int(label.sum())}
    quality = kind_flag(table, "quality")
    if quality is not None:
        out["on_quality_issue"] = int((label & quality).sum())
        others = [kind_flag(table, k) for k in registry.kinds() if k != "label"]
        any_other = np.any([o for o in others if o is not None], axis=0)
        out["label_only"] = int((label & ~any_other).sum())
    return out


def check_sections(summary: dict | None) -> list[dict]:
    """One section per hygiene check for the report and the overview: {kind, title, text, details (rows)}, from
    RUN/hygiene.json in the registry's order (checks with nothing to say are left out)."""
    out = []
    for check in registry.checks():
        s = (summary or {}).get(check.key) or {}
        text, details = (check.describe(s), check.details(s)) if s else ("", [])
        if text or details:
            out.append({"kind": check.kind, "title": check.title, "text": text, "details": details})
    return out
