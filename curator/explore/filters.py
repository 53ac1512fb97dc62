"""Columnar filtering and sorting of the explorer table (responsive at 1M rows: docs/explorer.md).

`filter_samples` turns a `SampleFilter` into one boolean mask built from NumPy views of the
table's columns (no row-wise Python, no copies of the table) and sorts only the surviving rows.
On the 1M-row synthetic run of `curator bench explorer` this takes tens of milliseconds (see
docs/explorer.md), so pandas/NumPy is enough; no DuckDB needed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curator.explore.review import REVIEW_STATUSES
from curator.hygiene import registry

FLAG_CHOICES = ("flagged", "not flagged", "all")


@dataclass(frozen=True)
class SampleFilter:
    """What the person asked to see. Empty tuples mean "no restriction"."""

    classes: tuple[int, ...] = ()                 # given label in these classes
    suggested: tuple[int, ...] = ()               # suggested label in these classes
    shot_groups: tuple[str, ...] = ()             # "many" / "medium" / "few"
    score_range: tuple[float, float] = (0.0, 1.0)  # label_issue_score within [lo, hi]
    flagged: str = "flagged"                      # one of FLAG_CHOICES: has (or has not) an issue of `kinds`
    kinds: tuple[str, ...] = ()                   # issue kinds the flag means (registry.kinds()); empty = ("label",)
    review: tuple[str, ...] = ()                  # review statuses (REVIEW_STATUSES)
    thresholds: tuple[tuple[str, float | None, float | None], ...] = field(default=())  # (column, lo, hi)
    sort_by: str = "label_issue_score"
    descending: bool = True


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table.columns:
        raise KeyError(f"no column {name!r} in this run; known: {', '.join(map(str, table.columns))}")
    col = table[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy()
    return col.to_numpy()


def kind_column(kind: str) -> str:
    """The audit column that flags `kind` (``is_label_issue``, ``is_duplicate_issue``, …)."""
    if kind not in registry.kinds():
        raise ValueError(f"unknown issue kind {kind!r}; expected one of {registry.kinds()}")
    return f"is_{kind}_issue"


def available_kinds(table: pd.DataFrame) -> list[str]:
    """The issue kinds this run's table can filter by (a run audited before the hygiene checks has only "label")."""
    return [k for k in registry.kinds() if kind_column(k) in table.columns]


def sortable_columns(table: pd.DataFrame) -> list[str]:
    """Numeric or boolean columns a person can sort by or threshold."""
    return [c for c in table.columns if table[c].dtype.kind in "biuf" and c not in ("image_ref",)]


def filter_mask(table: pd.DataFrame, flt: SampleFilter, status: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: rows that pass every part of `flt`. `status` are review codes (see review_status)."""
    n = len(table)
    mask = np.ones(n, bool)
    if flt.classes:
        mask &= np.isin(_column(table, "label"), np.asarray(flt.classes, np.int64))
    if flt.suggested and "suggested_label" in table.columns:
        mask &= np.isin(_column(table, "suggested_label"), np.asarray(flt.suggested, np.int64))
    if flt.shot_groups:
        cats = list(table["shot_group"].cat.categories)
        codes = [cats.index(g) for g in flt.shot_groups if g in cats]
        mask &= np.isin(_column(table, "shot_group"), np.asarray(codes, np.int8))
    if "label_issue_score" in table.columns:
        lo, hi = flt.score_range
        if lo > 0.0 or hi < 1.0:
            s = _column(table, "label_issue_score")
            mask &= (s >= lo) & (s <= hi)
        if flt.flagged != "all":
            flag = np.zeros(n, bool)
            for kind in flt.kinds or ("label",):
                if kind_column(kind) in table.columns:   # a kind the run does not have flags nothing
                    flag |= _column(table, kind_column(kind)).astype(bool)
            mask &= flag if flt.flagged == "flagged" else ~flag
    elif flt.flagged not in FLAG_CHOICES:
        raise ValueError(f"flagged must be one of {FLAG_CHOICES}, got {flt.flagged!r}")
    if flt.review:
        if status is None:
            status = np.zeros(n, np.int8)
        codes = [REVIEW_STATUSES.index(r) for r in flt.review]
        mask &= np.isin(status, np.asarray(codes, np.int8))
    for name, lo, hi in flt.thresholds:
        v = _column(table, name)
        if lo is not None:
            mask &= v >= lo
        if hi is not None:
            mask &= v <= hi
    return mask


def _sort_key(values: np.ndarray, descending: bool) -> np.ndarray:
    """Values to argsort ascending: negated when descending, NaN last either way."""
    if values.dtype.kind == "b":
        values = values.astype(np.int8)
    if values.dtype.kind == "f":
        values = np.where(np.isnan(values), -np.inf if descending else np.inf, values)
    return -values if descending else values


def sort_order(table: pd.DataFrame, sort_by: str, descending: bool = True) -> np.ndarray:
    """All row positions ordered by `sort_by` (stable: ties keep table order; NaN last)."""
    return np.argsort(_sort_key(_column(table, sort_by), descending), kind="stable")


def filter_samples(table: pd.DataFrame, flt: SampleFilter, status: np.ndarray | None = None, *,
                   sort_cache: dict | None = None) -> np.ndarray:
    """Row positions (int64) that pass `flt`, ordered by `flt.sort_by` (ties keep table order).

    With `sort_cache` (a dict kept alongside the table), the full order of each sort column is
    computed once and re-filtered in O(N) afterwards, instead of sorting on every change.
    """
    mask = filter_mask(table, flt, status)
    if not flt.sort_by:
        return np.flatnonzero(mask)
    if sort_cache is not None:
        key = (flt.sort_by, flt.descending)
        if key not in sort_cache:
            sort_cache[key] = sort_order(table, flt.sort_by, flt.descending)
        order = sort_cache[key]
        return order[mask[order]]
    pos = np.flatnonzero(mask)
    return pos[np.argsort(_sort_key(_column(table, flt.sort_by)[pos], flt.descending), kind="stable")]


def page_of(positions: np.ndarray, page: int, page_size: int) -> np.ndarray:
    """Positions shown on page `page` (0-based), clamped to the last page."""
    n_pages = max(1, -(-len(positions) // page_size))
    page = min(max(page, 0), n_pages - 1)
    return positions[page * page_size:(page + 1) * page_size]
