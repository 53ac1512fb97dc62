"""The first stage: read the dataset and write config, manifest, problems and provenance."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from curator.data.manifest import Dataset, manifest_fingerprint
from curator.data.options import DatasetOptions
from curator.data.registry import load_dataset
from curator.rundir import RunDir

LOG = logging.getLogger(__name__)


def prepare_run(out: str | Path, options: DatasetOptions, recipe: dict[str, Any] | None = None) -> tuple[RunDir, Dataset]:
    """Load the dataset described by `options` and record it in the run directory `out`."""
    run = RunDir(out)
    ds = load_dataset(options)
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
