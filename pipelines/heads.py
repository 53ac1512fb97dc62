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

from curator.data.manifest import Dataset
from curator.heads.base import HeadResult
from curator.heads.config import HeadsConfig
from curator.heads.registry import head_settings, head_spec, teacher_of, train_head
from curator.rundir import RunDir, atomic_path
from pipelines.prepare import train_rows


def _array_fingerprint(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(str((a.shape, a.dtype.str)).encode() + a.tobytes()).hexdigest()[:16]


def write_head(run: RunDir, result: HeadResult) -> None:
    """Write RUN/heads/<name>.npz and RUN/history/<name>.npz atomically."""
    arrays = {"probs": np.asarray(result.probs, np.float32),
              "signal_names": np.array(sorted(result.signals), dtype=str), "seconds": np.array(result.seconds)}
    for k, v in {**result.extras, **result.signals}.items():
        if k in ("probs", "signal_names", "seconds"):
            raise ValueError(f"head {result.name}: output name {k!r} is reserved")
        arrays[k] = np.asarray(v)
    for name, payload in ((f"heads/{result.name}.npz", arrays), (f"history/{result.name}.npz", result.history)):
        with atomic_path(run / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in payload.items()})


def load_head(run: RunDir, name: str) -> HeadResult:
    """Reload a head's outputs from the run directory (model = None)."""
    with np.load(run / f"heads/{name}.npz", allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    with np.load(run / f"history/{name}.npz", allow_pickle=False) as z:
        history = {k: z[k] for k in z.files}
    signal_names = [str(s) for s in data.pop("signal_names")]
    probs = data.pop("probs")
    seconds = float(data.pop("seconds", 0.0))
    signals = {k: data.pop(k) for k in signal_names}
    return HeadResult(name, probs, signals, history, data, None, seconds)


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
    base_inputs = {"embeddings": _array_fingerprint(embeddings), "labels": _array_fingerprint(y), "seed": seed,
                   "n_classes": n_classes}
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
            write_head(run, result)
            results[h] = result

        ran = run.run_stage(f"heads_{h}", fn, inputs=inputs, outputs=[f"heads/{h}.npz", f"history/{h}.npz"])
        if not ran:
            results[h] = load_head(run, h)
    return results
