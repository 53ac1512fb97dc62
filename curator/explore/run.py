"""Read a run directory once into one columnar table for the explorer (SPEC §6, §10).

`load_run(path)` joins, for the training split, the manifest, ``signals.parquet`` and
``audit.parquet`` into `ExplorerRun.table`: one row per training sample, in embedding order (row
i = i-th ``split == "train"`` manifest row = row i of embeddings.npy, knn.npz, heads/*.npz and
history/*.npz). Files written by later stages are optional: a run with only a manifest opens too,
and the UI says what is missing. Large per-sample arrays (kNN graph, GDW ω, histories) are loaded
lazily, once, on first use.

Every file is checked before it is parsed (`curator.rundir.RunDir.verify_output`): a truncated or
altered artefact, a run without training samples or an unreadable file is a `DataError` with one
line saying which file and how to recompute it — the explorer shows that line, not a traceback.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.problems import DataError
from curator.evidence.graph import KnnGraph, read_knn_graph
from curator.data.cache import ids_digest
from curator.heads.store import read_head, read_history, stored_heads
from curator.data.stats import SHOT_GROUPS, shot_group

LOG = logging.getLogger(__name__)

MANIFEST_USED = ["sample_id", "label", "true_label", "split", "source", "image_ref"]


def _align(table_ids: pd.Index, other: pd.DataFrame, name: str) -> pd.DataFrame:
    """`other` reordered to the manifest's training order (cheap when already aligned)."""
    ids = other["sample_id"].astype(str)
    if len(ids) == len(table_ids) and np.array_equal(ids.to_numpy(), table_ids.to_numpy()):
        return other.reset_index(drop=True)
    pos = pd.Index(ids).get_indexer(table_ids)
    missing = int((pos < 0).sum())
    if missing:
        LOG.warning("%s lacks %d of %d training samples; their values are empty", name, missing, len(table_ids))
    out = other.iloc[np.where(pos < 0, 0, pos)].reset_index(drop=True)
    if missing:
        out = out.astype({c: "float64" for c in out.columns if out[c].dtype.kind in "iub"})
        out.loc[pos < 0, :] = np.nan
    return out


@dataclass
class ExplorerRun:
    """One run directory, loaded for browsing. Treat `table` as read-only (it is shared between reruns)."""

    path: Path
    class_names: list[str]
    table: pd.DataFrame                    # (N_train rows) sample_id, label, true_label, image_ref, source, signals…, audit…
    config: dict[str, Any]
    metrics: dict[str, Any] | None = None
    classes: pd.DataFrame | None = None    # RUN/classes.parquet as written by the audit
    warnings: list[str] = field(default_factory=list)  # the audit's RUN/diagnostics.json warnings
    signal_columns: list[str] = field(default_factory=list)
    id_index: pd.Index = field(default_factory=lambda: pd.Index([]))
    sort_cache: dict = field(default_factory=dict, repr=False)  # (column, descending) -> full order, see filter_samples
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_samples(self) -> int:
        return len(self.table)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_truth(self) -> bool:
        return bool((self.table["true_label"].to_numpy() >= 0).any())

    @property
    def has_audit(self) -> bool:
        return "label_issue_score" in self.table.columns

    @property
    def ids_digest(self) -> str:
        """The digest of the training sample ids in table order: what knn.npz and heads/*.npz must carry."""
        if "ids_digest" not in self._cache:   # not through `_once`: the loaders that need it hold its lock
            self._cache["ids_digest"] = ids_digest(self.table["sample_id"].astype(str).tolist())
        return self._cache["ids_digest"]

    def class_name(self, c: int) -> str:
        c = int(c)
        return self.class_names[c] if 0 <= c < len(self.class_names) else f"#{c}"

    def position(self, sample_id: str) -> int:
        """Row of `sample_id` in the table (and in every N_train array); DataError if unknown."""
        pos = self.id_index.get_indexer([str(sample_id)])[0]
        if pos < 0:
            raise DataError(f"sample {sample_id!r} is not a training sample of run {str(self.path)!r}")
        return int(pos)

    # --- lazily loaded per-sample arrays ------------------------------------------------------
    def _once(self, key: str, loader):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = loader()
            return self._cache[key]

    def knn(self) -> KnnGraph | None:
        """The run's kNN graph (RUN/knn.npz, `curator.evidence.graph.read_knn_graph`), or None."""
        def load():
            p = self.path / runfiles.KNN
            return read_knn_graph(p, ids=self.ids_digest) if p.exists() else None
        return self._once("knn", load)

    def head_array(self, head: str, name: str) -> np.ndarray | None:
        """An array a head stored (e.g. ("gdw", "omega") -> (N, C)), or None."""
        def load():
            if head not in stored_heads(self.path):
                return None
            return read_head(self.path, head, history=False, ids=self.ids_digest).extras.get(name)
        return self._once(f"heads/{head}/{name}", load)

    def histories(self) -> dict[str, dict[str, np.ndarray]]:
        """{head: {record: (E, N) array}} of every stored head (empty when absent)."""
        def load():
            out = {h: {k: v for k, v in read_history(self.path, h).items() if v.ndim == 2 and v.shape[1] == self.n_samples}
                   for h in stored_heads(self.path)}
            return {h: recs for h, recs in out.items() if recs}
        return self._once("history", load)

    def leakage(self) -> pd.DataFrame | None:
        """RUN/leakage.parquet (training <-> test / val pairs of identical or near-identical images), or None."""
        def load():
            p = self.path / runfiles.LEAKAGE
            return _read(self.path, runfiles.LEAKAGE, pd.read_parquet) if p.exists() else None
        return self._once("leakage", load)

    def hygiene_summary(self) -> dict:
        """RUN/hygiene.json (thresholds, counts, skipped checks), or {}."""
        def load():
            p = self.path / runfiles.HYGIENE_SUMMARY
            return _read(self.path, runfiles.HYGIENE_SUMMARY, _read_json) if p.exists() else {}
        return self._once("hygiene_summary", load)

    def other_image_refs(self) -> dict[str, int]:
        """{sample_id: image_ref} of the samples outside the training split (test / val), e.g. to show a leak's copy."""
        def load():
            m = _read(self.path, runfiles.MANIFEST, pd.read_parquet, columns=["sample_id", "split", "image_ref"])
            m = m[m["split"] != "train"]
            return dict(zip(m["sample_id"].astype(str), m["image_ref"].astype(np.int64)))
        return self._once("other_image_refs", load)

    def sample_history(self, pos: int) -> pd.DataFrame:
        """Long frame (head, record, epoch, value) of every per-epoch record of sample `pos`."""
        rows = []
        for head, recs in self.histories().items():
            for rec, arr in recs.items():
                col = arr[:, pos].astype(np.float64)
                rows.append(pd.DataFrame({"head": head, "record": rec, "epoch": np.arange(1, len(col) + 1), "value": col}))
        if not rows:
            return pd.DataFrame(columns=["head", "record", "epoch", "value"])
        return pd.concat(rows, ignore_index=True)


def _read(path: Path, name: str, reader, **kwargs):
    """`reader(path/name)` after checking the file against its stage record; DataError naming it."""
    from curator.rundir import RunDir

    RunDir(path, create=False).verify_output(name)
    try:
        return reader(path / name, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a damaged file: one line saying which and what to do
        raise DataError(f"{str(path / name)!r} cannot be read ({type(exc).__name__}: {str(exc)[:160]}); "
                        f"re-run `curator audit --out {path}` to recompute it") from None


def _read_json(p: Path) -> Any:
    """A JSON record (an object); anything else is refused by `_read` with one line."""
    obj = json.loads(p.read_text())
    if not isinstance(obj, dict):
        raise ValueError(f"holds {type(obj).__name__}, not a record")
    return obj


def load_run(path: str | Path) -> ExplorerRun:
    """Load the run directory `path` for the explorer; DataError if it is not a run directory."""
    path = Path(path)
    if not (path / runfiles.MANIFEST).exists():
        raise DataError(f"{str(path)!r} is not a curator run directory: manifest.parquet is missing "
                        "(create one with `curator audit --out DIR`)")
    config = _read(path, runfiles.CONFIG, _read_json) if (path / runfiles.CONFIG).exists() else {}
    manifest = _read(path, runfiles.MANIFEST, pd.read_parquet)
    missing = [c for c in MANIFEST_USED if c not in manifest.columns]
    if missing:
        raise DataError(f"{str(path / 'manifest.parquet')!r} lacks column(s) {missing}; it is not a curator manifest")
    manifest = manifest[MANIFEST_USED]
    train = manifest[manifest["split"] == "train"].drop(columns=["split"]).reset_index(drop=True)
    if len(train) == 0:
        raise DataError(f"run {str(path)!r} has no training samples (manifest.parquet holds {len(manifest)} rows, none "
                        "in the train split): nothing to explore; check the data with `curator inspect`")
    train["sample_id"] = train["sample_id"].astype(str)
    table = train
    id_index = pd.Index(table["sample_id"])
    signal_columns: list[str] = []
    for name in (runfiles.SIGNALS, runfiles.AUDIT):
        p = path / name
        if not p.exists():
            continue
        other = _align(id_index, _read(path, name, pd.read_parquet), name)
        new_cols = [c for c in other.columns if c not in table.columns]
        if name == runfiles.SIGNALS:
            signal_columns = new_cols
        table = pd.concat([table, other[new_cols]], axis=1)
    if not pd.api.types.is_integer_dtype(table["label"]):
        raise DataError(f"{str(path / 'manifest.parquet')!r}: column 'label' holds {table['label'].dtype}, not class "
                        "indices; it is not a curator manifest")
    labels = table["label"].to_numpy()
    class_names = config.get("class_names") or []
    if not isinstance(class_names, list) or not all(isinstance(c, str) for c in class_names):
        raise DataError(f"{str(path / runfiles.CONFIG)!r}: field 'class_names' is not a list of names; "
                        f"re-run `curator audit --out {path}`")
    class_names = list(class_names)
    n_classes = max(len(class_names), int(labels.max()) + 1 if len(labels) else 0)
    class_names += [str(c) for c in range(len(class_names), n_classes)]
    counts = np.bincount(labels[labels >= 0], minlength=n_classes)
    if "shot_group" not in table.columns:
        groups = shot_group(counts)
        table["shot_group"] = np.where(labels >= 0, groups[np.clip(labels, 0, None)], "few")
    table["shot_group"] = pd.Categorical(table["shot_group"].astype(str), categories=list(SHOT_GROUPS))
    for col in [c for c in table.columns if c.startswith("is_") and c.endswith("_issue")]:
        table[col] = table[col].fillna(False).astype(bool)
    metrics = _read(path, runfiles.METRICS, _read_json) if (path / runfiles.METRICS).exists() else None
    classes = _read(path, runfiles.CLASSES, pd.read_parquet) if (path / runfiles.CLASSES).exists() else None
    diagnostics = _read(path, runfiles.DIAGNOSTICS, _read_json) if (path / runfiles.DIAGNOSTICS).exists() else {}
    LOG.info("explorer: loaded %s (%d training samples, %d columns)", path, len(table), table.shape[1])
    return ExplorerRun(path=path, class_names=class_names, table=table, config=config, metrics=metrics,
                       classes=classes, warnings=[str(w) for w in diagnostics.get("warnings", [])
                                                  if isinstance(diagnostics.get("warnings"), list)],
                       signal_columns=signal_columns,
                       id_index=id_index)
