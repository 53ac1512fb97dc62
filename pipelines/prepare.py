"""The first stage: read the dataset and write config, manifest, problems and provenance."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from curator.data.images import ArrayImages
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.data.options import DatasetOptions
from curator.data.problems import Problem, ProblemReport
from curator.data.registry import load_dataset
from curator.data.validate import check_images
from curator.rundir import RunDir

LOG = logging.getLogger(__name__)


def prepare_run(out: str | Path, options: DatasetOptions, recipe: dict[str, Any] | None = None) -> tuple[RunDir, Dataset]:
    """Load the dataset described by `options` and record it in the run directory `out`."""
    run = RunDir(out)
    ds = load_dataset(options)
    if not options.embeddings:  # pre-training will read every image: find the broken ones first
        ds = checked_images(run, ds)
    run.write_json("config.json", {"dataset": options.to_dict(), "recipe": recipe or {}, "class_names": ds.class_names,
                                   "dataset_info": ds.info})
    run.write_parquet("manifest.parquet", ds.manifest)
    run.write_parquet("problems.parquet", ds.problems.to_frame())
    run.write_provenance(seed=options.seed, data_fingerprint=manifest_fingerprint(ds.manifest))
    n_train = int((ds.manifest["split"] == "train").sum())
    LOG.info("dataset %s: %d training samples, %d classes, %d problems reported", ds.name, n_train,
             ds.n_classes, len(ds.problems.problems))
    return run, ds


def train_rows(ds: Dataset) -> np.ndarray:
    """Positions (in the manifest) of the training rows, in the order embeddings are stored."""
    return np.flatnonzero((ds.manifest["split"] == "train").to_numpy())


def checked_images(run: RunDir, ds: Dataset) -> Dataset:
    """Decode every image once (cached per manifest) so a broken file is reported, not fatal later.

    Files and encoded bytes are decoded with `curator.data.validate.check_images`; what it finds is
    kept in ``RUN/image_check.parquet`` (recomputed only when the manifest or the policy changes).
    Samples it skipped (under ``--on-bad skip``) leave the dataset; conversions (CMYK, 16-bit, alpha,
    grayscale) are noted and kept. In-memory arrays need no check.
    """
    if isinstance(ds.images, ArrayImages):
        return ds
    report = ProblemReport(on_bad=ds.problems.on_bad)

    def check() -> None:
        check_images(ds, report)
        run.write_parquet("image_check.parquet", report.to_frame())

    run.run_stage("check_images", check, inputs={"manifest": manifest_fingerprint(ds.manifest),
                                                  "on_bad": ds.problems.on_bad}, outputs=["image_check.parquet"])
    found = run.read_parquet("image_check.parquet")
    ds.problems.problems.extend(Problem(**row) for row in found.to_dict("records"))
    skipped = set(found.loc[found["action"] == "skipped", "sample_id"].astype(str))
    if not skipped:
        return ds
    LOG.warning("%d images could not be decoded and are left out (see problems.parquet)", len(skipped))
    return ds.select(~ds.manifest["sample_id"].isin(skipped).to_numpy())
