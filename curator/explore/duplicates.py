"""The duplicate-group gallery (ui/views/duplicates.py): every group of identical or near-identical training samples
(the duplicate check's ``dup_group``), most suspicious first, with the member a de-duplicated export keeps, the
group's decision state and what one decision for the whole group saves. Tested without Streamlit.

The member kept is the export's (`curator.audit.export`, ``--drop duplicate``): the audit's choice, the member
whose ``duplicate_of`` is empty (`curator.hygiene.fuse.representatives`: not a label issue, not an unusable
image, lowest score, first row); without that choice the lowest ``label_issue_score``, then the earliest row.
A person's decisions override it in the export, as everywhere: a kept copy stays, a dropped one goes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curator.explore.review import REVIEW_STATUSES

GROUP_ACTIONS = ("keep_one", "keep_all", "drop_all", "relabel_all")
SHOW = ("all groups", "groups with different labels", "groups not decided yet")
_KEEP, _RELABEL, _DROP = (REVIEW_STATUSES.index(s) for s in ("keep", "relabel", "drop"))


@dataclass(frozen=True)
class DuplicateGroups:
    """The run's duplicate groups in gallery order: groups whose members carry different labels first (more labels
    first), then larger groups, then the higher top label_issue_score, then the group id. Group i's member rows are
    ``rows[start[i]:start[i + 1]]``, the kept member first."""

    group: np.ndarray       # (G,) dup_group id
    size: np.ndarray        # (G,) members
    n_labels: np.ndarray    # (G,) distinct given labels among the members
    max_score: np.ndarray   # (G,) highest label_issue_score of a member (NaN without an audit)
    keeper: np.ndarray      # (G,) table row of the member the export keeps
    start: np.ndarray       # (G + 1,) offsets into rows
    rows: np.ndarray        # table rows of the members, group by group, kept member first

    def __len__(self) -> int:
        return len(self.group)

    def members(self, i: int) -> np.ndarray:
        return self.rows[self.start[i]:self.start[i + 1]]


def duplicate_groups(table) -> DuplicateGroups | None:
    """The groups of `table` (an `ExplorerRun.table`), or None when it has no ``dup_group`` column."""
    if "dup_group" not in table.columns:
        return None
    g = table["dup_group"].to_numpy(np.float64)               # float: an aligned table may hold NaN
    rows = np.flatnonzero(np.isfinite(g) & (g >= 0))
    gid = g[rows].astype(np.int64)
    ids, inv = np.unique(gid, return_inverse=True)
    n = len(ids)
    score = (table["label_issue_score"].to_numpy(np.float64)[rows] if "label_issue_score" in table.columns
             else np.full(len(rows), np.nan))
    chosen = np.zeros(len(rows), bool)
    if "duplicate_of" in table.columns:
        chosen = table["duplicate_of"].fillna("").astype(str).to_numpy()[rows] == ""
    # per group: the audit's chosen member, else the lowest score (NaN last), else the earliest row
    order = np.lexsort((rows, np.nan_to_num(score, nan=np.inf), ~chosen, inv))
    rows, inv, score = rows[order], inv[order], score[order]
    size = np.bincount(inv, minlength=n)
    start = np.r_[0, np.cumsum(size)]
    labels = table["label"].to_numpy(np.int64)[rows]
    pairs = np.unique(np.stack([inv, labels], 1), axis=0) if len(rows) else np.zeros((0, 2), np.int64)
    n_labels = np.bincount(pairs[:, 0], minlength=n)
    max_score = np.full(n, -np.inf)
    np.maximum.at(max_score, inv, np.nan_to_num(score, nan=-np.inf))
    max_score[~np.isfinite(max_score)] = np.nan
    keeper = rows[start[:-1]]
    rank = np.lexsort((ids, -np.nan_to_num(max_score, nan=-1.0), -size, -n_labels))
    place = np.empty(n, np.int64)
    place[rank] = np.arange(n)
    new_rows = rows[np.argsort(place[inv], kind="stable")]     # stable: the kept member stays first in its group
    new_start = np.r_[0, np.cumsum(size[rank])]
    return DuplicateGroups(group=ids[rank], size=size[rank], n_labels=n_labels[rank], max_score=max_score[rank],
                           keeper=keeper[rank], start=new_start, rows=new_rows)


def select_groups(groups: DuplicateGroups, show: str, status: np.ndarray) -> np.ndarray:
    """Indices of the groups that `show` (one of SHOW) lists, in gallery order; `status` is the review status per
    table row (`curator.explore.review.review_status`). Not decided yet = no member has a decision."""
    if show == SHOW[0]:
        return np.arange(len(groups))
    if show == SHOW[1]:
        return np.flatnonzero(groups.n_labels > 1)
    if show == SHOW[2]:
        if not len(groups):
            return np.zeros(0, np.int64)
        decided = np.add.reduceat((status[groups.rows] != 0).astype(np.int64), groups.start[:-1]) > 0
        return np.flatnonzero(~decided)
    raise ValueError(f"unknown choice {show!r}; expected one of {SHOW}")


def group_plan(groups: DuplicateGroups, i: int, labels: np.ndarray, action: str,
               new_label: int | None = None) -> tuple[np.ndarray, list[str], list[int | None]]:
    """(member rows, action per member, new label per member) of one decision for group `i`:

    - ``keep_one``: the member the export keeps is kept (its label confirmed), every other member dropped;
    - ``keep_all``: they are not duplicates: every member kept;
    - ``drop_all``: every member dropped;
    - ``relabel_all``: every member ends up labelled `new_label`: relabelled, or kept when it already carries it.
    """
    rows = groups.members(i)
    if action == "keep_one":
        acts = ["keep" if r == groups.keeper[i] else "drop" for r in rows]
        return rows, acts, [None] * len(rows)
    if action in ("keep_all", "drop_all"):
        return rows, [action.split("_")[0]] * len(rows), [None] * len(rows)
    if action == "relabel_all":
        if new_label is None:
            raise ValueError("relabel_all needs new_label")
        acts = ["keep" if labels[r] == new_label else "relabel" for r in rows]
        return rows, acts, [int(new_label) if a == "relabel" else None for a in acts]
    raise ValueError(f"unknown group decision {action!r}; expected one of {GROUP_ACTIONS}")


def group_state(groups: DuplicateGroups, i: int, labels: np.ndarray, status: np.ndarray, new_label: np.ndarray,
                class_name) -> str:
    """The group's current decisions in words: "not decided", one of the group decisions ("keep one, drop the
    others", "keep all", "drop all", "relabel all to <class>") when the members' decisions are exactly that, else
    "mixed" with counts."""
    rows = groups.members(i)
    s = status[rows]
    if (s == 0).all():
        return "not decided"
    if (s == _KEEP).all():
        return "keep all"
    if (s == _DROP).all():
        return "drop all"
    is_keeper = rows == groups.keeper[i]
    if (s[is_keeper] == _KEEP).all() and (s[~is_keeper] == _DROP).all():
        return "keep one, drop the others"
    final = np.where(s == _RELABEL, new_label[rows], labels[rows])
    if (s == _RELABEL).any() and np.isin(s, (_KEEP, _RELABEL)).all() and (final == final[0]).all():
        return f"relabel all to {class_name(int(final[0]))}"
    counts = np.bincount(s, minlength=len(REVIEW_STATUSES))
    words = {"unreviewed": "not reviewed", "keep": "kept", "relabel": "relabelled", "drop": "dropped"}
    return "mixed: " + ", ".join(f"{int(c)} {words[n]}" for n, c in zip(REVIEW_STATUSES, counts) if c)


def n_candidates(table) -> int | None:
    """How many samples have an unconfirmed near-duplicate candidate (``duplicate_candidate_of``: close embeddings,
    no pixels to confirm; never flagged, not in the gallery), or None when the column is missing."""
    if "duplicate_candidate_of" not in table.columns:
        return None
    return int((table["duplicate_candidate_of"].fillna("").astype(str) != "").sum())


def no_groups_reason(table, hygiene_summary: dict) -> str:
    """Why the gallery is empty, in one sentence."""
    if "dup_group" not in table.columns:
        return ("This run has no duplicate check (no dup_group column: it was audited without the hygiene checks or "
                "before they existed); re-run `curator audit` to find duplicates.")
    skipped = (hygiene_summary.get("duplicates") or {}).get("skipped")
    if skipped:
        return f"The duplicate check was skipped in this run: {skipped}."
    return "The duplicate check found no identical or near-identical training images in this run."
