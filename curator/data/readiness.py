"""Can this dataset be audited? Checked before any expensive stage (pre-training, heads, signals).

A dataset that loads fine can still be unusable for a pipeline: every sample was skipped as bad
input, the labels are all one class, or a kept sample has no usable label. Each case is a
`DataError` with one line that says what is wrong, with an example sample, and what to do — raised
in seconds, not after an hour of pre-training. `curator inspect` does not call these: it reports
on any dataset, also an empty or single-class one.
"""
from __future__ import annotations

import numpy as np

from curator.data.manifest import Dataset
from curator.data.problems import DataError


def _skipped_summary(ds: Dataset) -> str:
    skipped = [p for p in ds.problems.problems if p.action == "skipped"]
    if not skipped:
        return ""
    kinds: dict[str, int] = {}
    for p in skipped:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    first = skipped[0]
    return (f"; {len(skipped)} sample(s) were left out as bad input ("
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
            + f"; e.g. {first.sample_id or first.source!r}: {first.reason})")


def check_has_training_samples(ds: Dataset) -> None:
    """DataError if the training split is empty (an empty table, ``--limit`` past the data, all skipped)."""
    if len(ds.train) == 0:
        where = f" in {str(ds.root)!r}" if ds.root is not None else ""
        raise DataError(f"dataset {ds.name!r}{where} has no training samples to work on{_skipped_summary(ds)}; "
                        "check the data with `curator inspect`")


def check_labels_for_audit(ds: Dataset) -> None:
    """DataError unless every training sample has a label 0..C-1 and at least 2 classes are labelled."""
    train = ds.train
    y = train["label"].to_numpy(np.int64)
    C = ds.n_classes
    bad = np.flatnonzero((y < 0) | (y >= C))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{len(bad)} training sample(s) have no usable label (e.g. sample {str(train['sample_id'].iat[i])!r}: "
                        f"label {int(y[i])}, classes are 0..{C - 1}); the audit needs a class for every training sample: "
                        "fix those labels, or use --on-bad skip to leave such samples out")
    present = np.unique(y)
    if len(present) < 2:
        name = ds.class_names[int(present[0])] if len(present) else "-"
        raise DataError(f"all {len(y)} training samples carry the same label ({name!r}); an audit compares classes and "
                        f"needs samples of at least 2 classes (the dataset lists {C}: {', '.join(map(str, ds.class_names[:10]))}"
                        f"{', ...' if C > 10 else ''})")


def check_ready(ds: Dataset, *, needs_labels: bool = True) -> None:
    """Everything a pipeline run needs from the data (see the module docstring)."""
    check_has_training_samples(ds)
    if needs_labels:
        check_labels_for_audit(ds)
