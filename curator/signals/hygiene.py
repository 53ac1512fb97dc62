"""The hygiene stage's measurements as signals: the columns of RUN/hygiene.parquet declared for "signals" (image
properties, duplicates, leakage, outliers; each hygiene check declares its own, `curator.hygiene.registry`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from curator.columns import COLUMNS
from curator.hygiene import registry  # noqa: F401 - importing it declares the hygiene checks' columns
from curator.signals.heads import ID_COLUMNS
from curator.signals.plugin import Signal


def hygiene_columns(hygiene: pd.DataFrame, sample_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of RUN/hygiene.parquet that are signals (declared for "signals"), checked to list `sample_ids`."""
    hid = hygiene["sample_id"].astype(str).to_numpy()
    if len(hid) != len(sample_ids) or not np.array_equal(hid, np.asarray(sample_ids).astype(str)):
        raise ValueError(f"hygiene.parquet ({len(hid)} rows) does not list the {len(sample_ids)} training samples in "
                         "manifest order; re-run the hygiene stage")
    return {c: hygiene[c].to_numpy() for c in hygiene.columns
            if c not in ID_COLUMNS and c in COLUMNS and "signals" in COLUMNS[c].tables}


SIGNAL = Signal("hygiene", ("hygiene",), (), lambda i: hygiene_columns(i.hygiene, i.sample_ids))
