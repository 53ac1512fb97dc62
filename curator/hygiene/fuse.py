"""Fusing the hygiene checks with the label audit: one table that says which kinds of issue a sample has.

`fuse_audit` adds to the audit's table (audit.parquet, before it is written):

- the hygiene flags of every registered check (`curator.hygiene.registry`): ``is_duplicate_issue``,
  ``is_leak_issue``, ``is_quality_issue`` (with ``quality_issues``) and ``is_outlier_issue`` (RUN/hygiene.parquet);
- **duplicate conflicts as label issues** (for every check that groups samples, `HygieneCheck.group_column`;
  today the duplicate check): in a group of identical or near-identical images that carry
  different labels, at most one label can be right. The group's label is, of the labels its members
  carry, the one its images support most (the sum of the members' image-only posteriors p(c | x));
  every member with another label is flagged ``is_label_issue`` with the group's label as
  ``suggested_label`` (confidence = its posterior p(c | x, ỹ)). Members the posterior had already flagged
  keep their own suggestion;
- ``duplicate_of`` (the check's `keeper` column): per group, the member a de-duplicated export keeps (not a label issue, not an unusable
  image, lowest label-issue score, first in manifest order) and, for every other member, its id;
- ``issue_kinds``: the kinds present, comma-separated in the registry's order
  ("label", "duplicate", "leak", "quality", "outlier"), e.g. "label,quality" for a label issue on an
  image that is too dark or blurry to judge — a different decision (drop it) from "label" alone (fix it).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curator.columns import check_columns
from curator.hygiene import registry
from curator.hygiene.kinds.quality import unusable_mask

LOG = logging.getLogger(__name__)


def issue_kinds_text(flags: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) object array of comma-separated kinds from {kind: (N,) bool} in the registry's order."""
    n = len(next(iter(flags.values())))
    text = np.full(n, "", dtype=object)
    for kind in registry.kinds():
        f = np.asarray(flags.get(kind, np.zeros(n, bool)), bool)
        if f.any():
            text[f] = [f"{t},{kind}" if t else kind for t in text[f]]
    return text


def conflict_consensus(group: np.ndarray, labels: np.ndarray, class_posterior: np.ndarray) -> np.ndarray:
    """(N,) int64: for members of groups whose labels differ, the group's most probable label: of the labels its
    members carry, the one with the largest summed image-only posterior p(c | x); −1 elsewhere. (Copies of one
    image with two labels say one of *those* labels is wrong; whether both are is the posterior's own question.)"""
    n, c = class_posterior.shape
    out = np.full(n, -1, np.int64)
    member = group >= 0
    if not member.any():
        return out
    g = group[member]
    n_groups = int(g.max()) + 1
    lo = np.full(n_groups, np.iinfo(np.int64).max)
    hi = np.full(n_groups, np.iinfo(np.int64).min)
    np.minimum.at(lo, g, labels[member])
    np.maximum.at(hi, g, labels[member])
    mass = np.zeros((n_groups, c))
    np.add.at(mass, g, class_posterior[member])
    carried = np.zeros((n_groups, c), bool)                      # the labels the group's members carry
    carried[g, labels[member]] = True
    consensus = np.where(carried, mass, -1.0).argmax(axis=1)     # the most probable of the group's own labels
    conflicted = lo[g] != hi[g]
    rows = np.flatnonzero(member)[conflicted]
    out[rows] = consensus[g[conflicted]]
    return out


def representatives(group: np.ndarray, issue: np.ndarray, unusable: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(N,) int64: for each member of a group, the row of the member kept by a de-duplicated export; −1 for
    samples in no group. Preference: not a label issue, not unusable, lowest score, earliest row."""
    n = len(group)
    rep = np.full(n, -1, np.int64)
    member = np.flatnonzero(group >= 0)
    if not len(member):
        return rep
    order = np.lexsort((member, score[member], unusable[member], issue[member], group[member]))   # best first per group
    ranked = member[order]
    g = group[ranked]
    first = np.r_[True, g[1:] != g[:-1]]
    best_of_group = dict(zip(g[first].tolist(), ranked[first].tolist()))
    rep[member] = [best_of_group[x] for x in group[member].tolist()]
    return rep


def fuse_audit(table: pd.DataFrame, hygiene: pd.DataFrame, class_posterior: np.ndarray,
               posterior: np.ndarray) -> pd.DataFrame:
    """The audit table with the hygiene kinds fused in (see the module docstring); rows stay in order.

    `table` and `hygiene` have one row per training sample in the same order (`sample_id` checked);
    `class_posterior` is p(c | x) and `posterior` p(c | x, ỹ), both (N, C) in that order.
    """
    ids, hids = table["sample_id"].astype(str).to_numpy(), hygiene["sample_id"].astype(str).to_numpy()
    if len(ids) != len(hids) or not np.array_equal(ids, hids):
        raise ValueError(f"hygiene.parquet ({len(hids)} rows) does not list the audit's {len(ids)} training samples in "
                         "the same order; re-run the hygiene stage")
    out = table.copy()
    labels = out["label"].to_numpy(np.int64)
    grouping = [c for c in registry.checks() if c.group_column]
    for check in grouping:
        _label_conflicts(out, hygiene[check.group_column].to_numpy(np.int64), labels, class_posterior, posterior,
                         table["suggested_label_confidence"].dtype)
    for col in registry.fused_columns():
        out[col] = hygiene[col].to_numpy()
    unusable = unusable_mask(out["quality_issues"]) if "quality_issues" in out.columns else np.zeros(len(out), bool)
    for check in grouping:
        group = hygiene[check.group_column].to_numpy(np.int64)
        rep = representatives(group, out["is_label_issue"].to_numpy(bool), unusable,
                              out["label_issue_score"].to_numpy(float))
        keep_as = np.full(len(out), "", dtype=object)
        redundant = (rep >= 0) & (rep != np.arange(len(out)))
        keep_as[redundant] = ids[rep[redundant]]
        out[check.keeper.name] = keep_as
    out["issue_kinds"] = issue_kinds_text({k: out[f"is_{k}_issue"].to_numpy(bool) for k in registry.kinds()})
    check_columns(out.columns, "audit")
    return out


def _label_conflicts(out: pd.DataFrame, group: np.ndarray, labels: np.ndarray, class_posterior: np.ndarray,
                     posterior: np.ndarray, conf_dtype) -> None:
    """Flag, in `out`, the group members whose label differs from their group's consensus (module docstring)."""
    consensus = conflict_consensus(group, labels, np.asarray(class_posterior))
    wrong = (consensus >= 0) & (consensus != labels)
    newly = wrong & ~out["is_label_issue"].to_numpy(bool)
    if newly.any():
        rows = np.flatnonzero(newly)
        flag = out["is_label_issue"].to_numpy(bool).copy()
        sugg = out["suggested_label"].to_numpy(np.int64).copy()
        conf = out["suggested_label_confidence"].to_numpy(np.float64).copy()
        flag[rows], sugg[rows] = True, consensus[rows]
        conf[rows] = np.asarray(posterior)[rows, consensus[rows]]
        out["is_label_issue"], out["suggested_label"] = flag, sugg
        out["suggested_label_confidence"] = conf.astype(conf_dtype)
        LOG.info("hygiene: %d duplicates whose copies carry another label are flagged as label issues", len(rows))
