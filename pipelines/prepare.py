"""The first stage: read the dataset, check it can be worked on, and write config, manifest,
problems and provenance.

`prepare_run` is where a run directory is opened for writing, so it takes the run's writer lock
(`curator.rundir.RunDir.lock_for_writing`; a second process on the same ``--out`` exits with
code 2 naming the first). Everything that would make a later, expensive stage fail is checked
here, before pre-training: an empty training split, unusable or single-class labels
(`curator.data.readiness`) and the ``--embeddings`` file (`curator.embeddings.check_embeddings_file`).
A dataset whose samples changed since the run last read them (a file's size or mtime differs from
its pin) is reported by sample id; the stages that depend on them then run again.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.images import ArrayImages, FileImages
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.data.options import DatasetOptions
from curator.data.pins import ChangedSample, describe_changes
from curator.data.problems import DataError, Problem, ProblemReport
from curator.data.readiness import check_ready
from curator.data.registry import load_dataset
from curator.data.validate import check_images
from curator.data.properties import VERSION as PROPERTIES_VERSION, Measurer
from curator.rundir import RunDir

LOG = logging.getLogger(__name__)


def _is_main_process() -> bool:
    """False on the non-zero ranks of a torchrun job (rank 0 holds the run's writer lock for the job)."""
    return os.environ.get("RANK", "0") in ("", "0")


def prepare_run(out: str | Path, options: DatasetOptions, recipe: dict[str, Any] | None = None, *,
                needs_labels: bool = True) -> tuple[RunDir, Dataset]:
    """Load the dataset described by `options` and record it in the run directory `out`.

    Raises `DataError` (exit code 2) before anything expensive when another process writes `out`,
    when the data cannot be worked on (`curator.data.readiness.check_ready`; `needs_labels=False`
    for pre-training / embedding only) or when the ``--embeddings`` file is unusable.
    """
    check_out_outside_root(out, options.root)
    fresh = not Path(out).exists()
    run = RunDir(out)
    if _is_main_process():
        run.lock_for_writing()
    try:
        return _prepare(run, options, recipe, needs_labels)
    except BaseException:
        if fresh and _is_main_process():
            _remove_unfinished(run)
        raise


def _remove_unfinished(run: RunDir) -> None:
    """A run directory this command created and could not prepare (e.g. the dataset root was wrong, or the
    --pred-probs rows do not match the images that could be read) is removed, so a failed command leaves nothing
    behind but its one-line error. The image check is the one stage that can have finished by then; its results
    go too (a run directory is whole or absent)."""
    from curator.rundir import release_writer_lock

    if any(p.stem != "check_images" for p in (run.path / "stages").glob("*.json")):
        return
    release_writer_lock(run.path)
    shutil.rmtree(run.path, ignore_errors=True)
    LOG.debug("removed the unfinished run directory %s", run.path)


def _prepare(run: RunDir, options: DatasetOptions, recipe: dict[str, Any] | None, needs_labels: bool
             ) -> tuple[RunDir, Dataset]:
    ds = load_dataset(options)
    check_ready(ds, needs_labels=needs_labels)
    if options.pred_probs:   # the file's own faults, before the images are decoded (a large folder takes minutes)
        check_pred_probs(ds, options, match_rows=False)
    if options.embeddings:
        from curator.embeddings import check_embeddings_file

        n_skipped = sum(1 for p in ds.problems.problems if p.action == "skipped" and p.sample_id)
        check_embeddings_file(options.embeddings, len(ds.train), n_skipped=n_skipped)
    else:  # pre-training will read every image: find the broken ones first
        ds = checked_images(run, ds)
        check_ready(ds, needs_labels=needs_labels)
    if options.pred_probs:
        check_pred_probs(ds, options)
    report_changes(run, ds)
    config = {"dataset": options.to_dict(), "recipe": recipe or {}, "class_names": ds.class_names,
              "dataset_info": ds.info}
    if isinstance(ds.images, FileImages):  # where the pinned `file` paths of the manifest are relative to
        config["image_root"] = str(ds.images.root.resolve())
    run.write_json(runfiles.CONFIG, config)
    run.write_parquet(runfiles.MANIFEST, ds.manifest)
    run.record_files("prepare", [runfiles.MANIFEST])
    run.write_parquet(runfiles.PROBLEMS, ds.problems.to_frame())
    run.write_provenance(seed=options.seed, data_fingerprint=manifest_fingerprint(ds.manifest))
    n_train = int((ds.manifest["split"] == "train").sum())
    LOG.info("dataset %s: %d training samples, %d classes, %d problems reported (%d notes)", ds.name, n_train,
             ds.n_classes, len(ds.problems.bad), len(ds.problems.notes))
    return run, ds


def check_pred_probs(ds: Dataset, options: DatasetOptions, *, match_rows: bool = True) -> None:
    """Read and check the ``--pred-probs`` file against the training samples before any stage runs: the file itself
    before the images are decoded (``match_rows=False``), its rows against the training samples after unreadable
    images left the dataset (rows for them must not be in a .npy file). A `DataError` here leaves no run directory
    behind (`prepare_run` removes one it created)."""
    from curator.evidence.pred_probs import read_pred_probs

    left = [p.sample_id for p in ds.problems.problems if p.action == "skipped" and p.sample_id]
    read_pred_probs(options.pred_probs, ds.train["sample_id"].astype(str).to_numpy(), ds.class_names,
                    kind=options.pred_probs_kind, match_rows=match_rows, left_out=left)


def check_out_outside_root(out: str | Path, root: str | None) -> None:
    """Refuse (`DataError`) a run directory inside the dataset's root folder: the next read of the root would take
    the run's own folders (heads/, stages/, ...) for classes or images."""
    if not root or not Path(root).expanduser().is_dir():
        return
    r, o = Path(root).expanduser().resolve(), Path(out).expanduser().resolve()
    if o == r or o.is_relative_to(r):
        raise DataError(f"--out {str(out)!r} lies inside the dataset root {str(root)!r}: its folders would be read as "
                        "data; choose a run directory outside the root")


def train_rows(ds: Dataset) -> np.ndarray:
    """Positions (in the manifest) of the training rows, in the order embeddings are stored."""
    return np.flatnonzero((ds.manifest["split"] == "train").to_numpy())


def checked_images(run: RunDir, ds: Dataset) -> Dataset:
    """Decode every image once (cached per manifest) so a broken file is reported, not fatal later.

    Files and encoded bytes are decoded with `curator.data.validate.check_images`; what it finds is
    kept in ``RUN/image_check.parquet`` (recomputed only when the manifest or the policy changes).
    Samples it skipped (under ``--on-bad skip``) leave the dataset; conversions (CMYK, 16-bit, alpha,
    grayscale) are noted and kept. The same pass measures every image's properties and content hash
    for the hygiene checks (``RUN/image_properties.parquet``, `curator.data.properties`). In-memory
    arrays need no check (their properties are measured from the arrays by the hygiene stage).
    """
    if isinstance(ds.images, ArrayImages):
        return ds
    report = ProblemReport(on_bad=ds.problems.on_bad)

    def check() -> None:
        measure = Measurer()
        check_images(ds, report, measure=measure)
        run.write_parquet(runfiles.IMAGE_CHECK, report.to_frame())
        run.write_parquet(runfiles.IMAGE_PROPERTIES, measure.frame())

    run.run_stage("check_images", check, inputs={"manifest": manifest_fingerprint(ds.manifest),
                                                  "on_bad": ds.problems.on_bad, "properties": PROPERTIES_VERSION},
                  outputs=[runfiles.IMAGE_CHECK, runfiles.IMAGE_PROPERTIES])
    found = run.read_parquet(runfiles.IMAGE_CHECK)
    ds.problems.problems.extend(Problem(**row) for row in found.to_dict("records"))
    skipped = set(found.loc[found["action"] == "skipped", "sample_id"].astype(str))
    if not skipped:
        return ds
    LOG.warning("%d images could not be decoded and are left out (see problems.parquet)", len(skipped))
    return ds.select(~ds.manifest["sample_id"].isin(skipped).to_numpy())


def dataset_changes(old: pd.DataFrame, new: pd.DataFrame) -> list[ChangedSample]:
    """Samples present in both manifests whose content pin differs (the image changed in between)."""
    if "pin" not in old.columns or "pin" not in new.columns:
        return []
    a = old[["sample_id", "pin"] + (["file"] if "file" in old.columns else [])].astype(str).set_index("sample_id")
    b = new[["sample_id", "pin"]].astype(str).set_index("sample_id")
    both = a.index.intersection(b.index)
    if len(both) == 0:
        return []
    was, now = a.loc[both, "pin"], b.loc[both, "pin"]
    differ = (was != now) & (was != "") & (now != "")
    out = []
    for sid in both[differ.to_numpy()]:
        old_pin, new_pin = was[sid], now[sid]
        same_size = old_pin.split(":")[:2] == new_pin.split(":")[:2]
        reason = ("changed since the run last read it (same size, modification time differs)" if same_size
                  else "changed since the run last read it")
        out.append(ChangedSample(str(sid), str(a.loc[sid, "file"]) if "file" in a.columns else "", reason))
    return out


def report_changes(run: RunDir, ds: Dataset) -> list[ChangedSample]:
    """Warn (by sample id) about samples whose image changed since this run directory last read the data."""
    if not run.exists(runfiles.MANIFEST):
        return []
    try:
        old = pd.read_parquet(run / runfiles.MANIFEST, columns=None)
    except Exception as exc:  # noqa: BLE001 - an unreadable old manifest is simply replaced
        LOG.warning("the run's previous manifest.parquet cannot be read (%s); it is replaced", exc)
        return []
    changed = dataset_changes(old, ds.manifest)
    if changed:
        LOG.warning("the dataset changed since this run last read it: %s; the stages that depend on the data run again",
                    describe_changes(changed))
    return changed
