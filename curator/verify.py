"""`curator verify RUN`: check a run directory someone handed you, without running any stage.

Every file is checked against the record of the stage that wrote it (size and checksum, `RunDir.output_mismatch`)
and against its schema, by the same one reader every command uses (JSON records, tables, arrays, the kNN graph and
the heads with the ids digest of the run's training samples, review decisions); where the run pinned image files and
the dataset is present, the pins are checked against it (`curator.audit.export.changed_since_audit`). Each file is:

- ``intact``: matches its record and its schema;
- ``stale``: no longer what its stage wrote (missing, truncated, altered, unreadable) or written for other samples
  or an older format: `curator audit --out RUN` recomputes it;
- ``refused``: not what it claims (not a record, not a table, a FIFO, a symlink out of the run, a review decision
  outside what a decision can be): no command uses it until it is fixed or removed.

Nothing is written: neither a stage record nor the lock.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from curator import runfiles
from curator.data.problems import DataError
from curator.rundir import RunDir, stage_record_problem

#: arrays with one row per training sample, read by position
ROW_ARRAYS = (runfiles.EMBEDDINGS, runfiles.OOF_PROBS, runfiles.FOLDS, runfiles.POSTERIOR)
JSON_FILES = (runfiles.CONFIG, runfiles.PROVENANCE, runfiles.SSL_HISTORY, runfiles.BUDGET, runfiles.IMAGE_CACHE,
              runfiles.HYGIENE_SUMMARY, runfiles.DIAGNOSTICS, runfiles.METRICS)
TABLES = (runfiles.MANIFEST, runfiles.PROBLEMS, runfiles.IMAGE_CHECK, runfiles.IMAGE_PROPERTIES, runfiles.HYGIENE,
          runfiles.LEAKAGE, runfiles.SIGNALS, runfiles.AUDIT, runfiles.CLASSES, runfiles.UMAP)


@dataclass
class Finding:
    file: str
    status: str       # intact | stale | refused
    why: str = ""


def verify_run(path: str | os.PathLike) -> tuple[list[Finding], str]:
    """(one `Finding` per file of run `path` that exists or that a stage recorded, what was done about the image
    pins); `DataError` when `path` is not a run directory at all (missing, a file, no readable manifest)."""
    run_path = Path(path)
    if not run_path.is_dir():
        raise DataError(f"{str(run_path)!r} is not a run directory" + (" (it is a file)" if run_path.exists() else ""))
    run = RunDir(run_path, create=False)
    found: dict[str, Finding] = {}
    outputs: set[str] = set()   # files a stage record names: recomputed by `curator audit` when they fail

    def note(name: str, status: str, why: str = "") -> None:
        old = found.get(name)
        rank = {"intact": 0, "stale": 1, "refused": 2}
        if old is None or rank[status] > rank[old.status]:
            found[name] = Finding(name, status, why)

    # the stage records and the files they name
    stages = run_path / "stages"
    for rec_path in sorted(stages.glob("*.json")) if stages.is_dir() else []:
        name = f"stages/{rec_path.name}"
        try:
            rec = run.read_json(name)
        except DataError as exc:
            note(name, "stale", f"{exc} (the stage runs again)")
            continue
        why = stage_record_problem(rec)
        if why:
            note(name, "stale", f"not a valid stage record ({why}; the stage runs again)")
            continue
        note(name, "intact")
        for out, recorded in (rec.get("files") or {}).items():
            outputs.add(out)
            try:
                mismatch = run.output_mismatch(out, recorded)
            except (DataError, OSError) as exc:
                note(out, "refused", str(exc))
                continue
            if mismatch:
                note(out, "stale", f"{mismatch}; stage {rec_path.stem!r} recomputes it")
            else:
                note(out, "intact")

    # schemas, by each file's one reader
    if not (run_path / runfiles.MANIFEST).exists():
        raise DataError(f"{str(run_path)!r} is not a run directory: it has no {runfiles.MANIFEST}")
    try:
        manifest = run.read_parquet(runfiles.MANIFEST)
        train = manifest[manifest["split"] == "train"] if "split" in manifest.columns else manifest
        ids = [str(s) for s in train["sample_id"]]
    except (DataError, KeyError) as exc:
        note(runfiles.MANIFEST, "refused", str(exc))
        return sorted(found.values(), key=lambda f: f.file), "not checked: the manifest cannot be read"
    from curator.data.cache import ids_digest

    digest, n = ids_digest(ids), len(ids)

    def check(name: str, reader: Callable[[], object], *, stale_if: tuple[str, ...] = ()) -> None:
        if not (run_path / name).exists() and not (run_path / name).is_symlink():
            return
        try:
            reader()
        except DataError as exc:
            text = str(exc)
            stale = any(s in text for s in stale_if) or (name in outputs and "leads out of" not in text
                                                         and "is a FIFO" not in text)
            note(name, "stale" if stale else "refused", text)
            return
        note(name, "intact")

    for name in JSON_FILES:
        check(name, lambda name=name: run.read_json(name))
    for name in TABLES:
        check(name, lambda name=name: run.read_parquet(name))
    for name in ROW_ARRAYS:
        def rows(name=name) -> None:
            a = run.read_npy(name, mmap=True)
            if a.ndim < 1 or len(a) != n:
                raise DataError(f"{name} has {len(a) if a.ndim else 0} rows; the run has {n} training samples "
                                "(written for other samples)")
        check(name, rows, stale_if=("written for other samples",))
    from curator.evidence.graph import read_knn_graph
    from curator.heads.store import read_head, stored_heads

    other = ("other samples", "before curator recorded")
    check(runfiles.KNN, lambda: read_knn_graph(run_path / runfiles.KNN, ids=digest), stale_if=other)
    for head in stored_heads(run_path):
        check(runfiles.head_file(head), lambda head=head: read_head(run_path, head, ids=digest), stale_if=other)
    from curator.review import load_decisions

    check(runfiles.DECISIONS, lambda: load_decisions(run_path))

    # pins against the dataset, when it is present
    from curator.audit.export import changed_since_audit
    from curator.data.pins import describe_changes

    try:
        root = run.read_json(runfiles.CONFIG, {}).get("image_root")
    except DataError:
        root = None
    present = isinstance(root, str) and Path(root).is_dir()
    changed = changed_since_audit(run_path) if present else []
    if changed:
        note(runfiles.MANIFEST, "stale", f"the dataset changed since the run read it: {describe_changes(changed)}")
    pins = (f"checked against {root}" if present else "not checked: the run pinned no image folder" if not root
            else f"not checked: the dataset folder {root} is not present")
    return sorted(found.values(), key=lambda f: f.file), pins


def summary(findings: list[Finding], pins: str) -> dict:
    counts = {s: sum(f.status == s for f in findings) for s in ("intact", "stale", "refused")}
    return {"counts": counts, "pins": pins, "files": [asdict(f) for f in findings]}
