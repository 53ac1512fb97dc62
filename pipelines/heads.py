"""Stage: train the robust heads on the embeddings and store their outputs in the run directory.

Writes, per head h in ``cfg.heads``:
- RUN/heads/<h>.npz: ``probs`` (N_train x C float32), the head's signal columns under their
  contract names (e.g. ``lasl_sigma``), its extras (e.g. GDW ``omega``), and ``signal_names``
  (which keys are signals);
- RUN/history/<h>.npz: per-epoch records, name -> (E, N_train) (``loss``, ``margin``, ``pred``, ...).

Each head is its own stage (``heads_<h>``) fingerprinted by what changes that head: the embeddings'
content, the training labels, the seed, the settings the head reads (`curator.heads.registry.head_settings`:
changing ``focal_gamma`` retrains only ``focal``), the trusted rows for heads that learn from a meta
set, and the teacher's fingerprint for ``semi``. An unchanged head is skipped and reloaded from disk
(its ``model`` is then None: models are not persisted).

Probabilities written here are in-sample (each head was trained on these samples and labels).
"""
from __future__ import annotations

import hashlib

import numpy as np

from curator.data.cache import ids_digest
from curator.data.manifest import Dataset
from curator.heads.base import HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.registry import head_settings, head_spec, teacher_of, train_head
from curator import runfiles
from curator.heads.store import read_head, write_head
from curator.rundir import RunDir
from pipelines.prepare import train_rows


def _array_fingerprint(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str((a.shape, a.dtype.str)).encode() + a.tobytes()).hexdigest()[:16]


def train_heads_stage(run: RunDir, ds: Dataset, embeddings: np.ndarray, cfg: HeadsConfig | None = None, *,
                      seed: int, device=None) -> dict[str, HeadResult]:
    """Train every head of ``cfg.heads`` on `embeddings` (N_train x d, or V x N_train x d views, rows
    in `train_rows(ds)` order) with `seed` (the run's seed); skip heads whose inputs are unchanged.
    Returns name -> HeadResult."""
    cfg = cfg or HeadsConfig()
    for h in cfg.heads:  # name every unknown head before training any
        head_spec(h)
    rows = train_rows(ds)
    train = ds.manifest.iloc[rows]
    y = train["label"].to_numpy(np.int64)
    trusted = train["trusted"].to_numpy(bool) & (y >= 0)
    meta_mask = trusted if trusted.any() else None
    n_emb = embeddings.shape[-2]
    if n_emb != len(y):
        raise ValueError(f"embeddings have {n_emb} rows but the dataset has {len(y)} training samples")
    n_classes = len(ds.class_names)
    ids = ids_digest(train["sample_id"].astype(str).tolist())
    base_inputs = {"embeddings": _array_fingerprint(embeddings), "labels": _array_fingerprint(y), "seed": seed,
                   "n_classes": n_classes, "ids": ids}   # ids: heads/*.npz carry them (runs before recompute once)
    # a head that learns from another (semi) trains after it
    order = sorted(cfg.heads, key=lambda h: teacher_of(h, cfg) is not None)
    results: dict[str, HeadResult] = {}
    for h in order:
        inputs = {**base_inputs, "head": h, "settings": head_settings(h, cfg)}
        if head_spec(h).meta_set:
            inputs["trusted"] = _array_fingerprint(trusted)
        teacher = teacher_of(h, cfg)
        if teacher is not None:  # the teacher's own fingerprint, or its settings when train_head trains it inside
            rec = run.stage_record(f"heads_{teacher}") if teacher in results else None
            inputs["teacher"] = (rec or {}).get("inputs") or {"head": teacher, "settings": head_settings(teacher, cfg)}

        def fn(h=h) -> None:
            result = train_head(h, embeddings, y, n_classes, cfg, seed=seed, meta_mask=meta_mask, device=device,
                                results=results)
            write_head(run.path, result, ids=ids)
            results[h] = result

        ran = run.run_stage(f"heads_{h}", fn, inputs=inputs, outputs=[runfiles.head_file(h), runfiles.history_file(h)])
        if not ran:
            results[h] = read_head(run.path, h, ids=ids)
    return results
