"""Stage `signals`: head results + the run's evidence -> RUN/signals.parquet (curator.signals.table).

Skipped when its inputs (settings, training manifest, head outputs, the evidence files, RUN/hygiene.parquet)
are unchanged;
the stored table is then reloaded.
"""
from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.evidence import Evidence
from curator.heads.base import HeadResult
from curator.rundir import RunDir
from curator.signals import registry
from curator.signals.config import SignalsConfig
from curator.signals.table import build_signals_table
from pipelines.evidence import OUTPUTS as EVIDENCE_FILES
from pipelines.prepare import train_rows


def _heads_fingerprint(head_results: Mapping[str, HeadResult]) -> dict[str, str]:
    out = {}
    for name, hr in sorted(head_results.items()):
        h = hashlib.sha256()
        for a in [np.asarray(hr.probs)] + [np.asarray(hr.signals[k]) for k in sorted(hr.signals)]:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        out[name] = h.hexdigest()[:16] + ":" + ",".join(sorted(hr.signals))
    return out


def signals_stage(run: RunDir, ds: Dataset, evidence: Evidence, head_results: Mapping[str, HeadResult],
                  cfg: SignalsConfig, *, hygiene: pd.DataFrame | None = None) -> pd.DataFrame:
    """Build (or reload) RUN/signals.parquet for the training rows of `ds`; `hygiene` is RUN/hygiene.parquet
    when the hygiene stage ran (its measurements become signal columns)."""
    train = ds.manifest.iloc[train_rows(ds)].reset_index(drop=True)

    def work() -> None:
        table = build_signals_table(train, head_results, evidence.graph, evidence.oof_probs, ds.n_classes, cfg,
                                    hygiene=hygiene)
        run.write_parquet(runfiles.SIGNALS, table)

    run.run_stage("signals", work, outputs=[runfiles.SIGNALS],
                  input_files=EVIDENCE_FILES + ([runfiles.HYGIENE] if hygiene is not None else []),
                  inputs={"signals": cfg.to_dict(), "registry": registry.versions(), "manifest": manifest_fingerprint(train),
                          "heads": _heads_fingerprint(head_results)})
    return run.read_parquet(runfiles.SIGNALS)
