"""Stage `hygiene`: duplicates, leakage, image quality and outliers of the training samples (curator.hygiene).

Reads the image properties measured in the image pass (RUN/image_properties.parquet, written by the
``check_images`` stage of `pipelines.prepare`; for in-memory datasets measured here from the arrays, stage
``image_properties``), the run's evidence (the kNN graph and the standardised features), the training and
test embeddings; writes RUN/hygiene.parquet, RUN/leakage.parquet and RUN/hygiene.json. The signals stage
copies its measurements into signals.parquet and the audit fuses its flags into audit.parquet
(`curator.hygiene.fuse`).

With ``--embeddings`` on images stored in files, no image is decoded (that is what the option saves), so the
image-quality checks and exact (hash) duplicates are skipped with one log line; duplicates are still found
through the embeddings (an exact copy has an identical embedding), outliers too, and leakage when
``--set hygiene.test_embeddings=FILE`` gives the test rows' embeddings.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.images import ArrayImages
from curator.data.manifest import Dataset, manifest_fingerprint
from curator.evidence import Evidence
from curator.hygiene import registry
from curator.hygiene.checks import run_checks
from curator.hygiene.config import HygieneConfig
from curator.hygiene.plugin import TestEmbeddings
from curator.data.properties import VERSION as PROPERTIES_VERSION, measure_array
from curator.rundir import RunDir, file_fingerprint

LOG = logging.getLogger(__name__)
OUTPUTS = [runfiles.HYGIENE, runfiles.LEAKAGE, runfiles.HYGIENE_SUMMARY]
NOT_DECODED = ("images were not decoded: --embeddings skips the image pass, so image quality and identical "
               "pixels cannot be checked (duplicates and outliers still come from the embeddings)")


def in_memory_properties(run: RunDir, ds: Dataset) -> None:
    """RUN/image_properties.parquet of an in-memory dataset (digits, CIFAR pickles), measured from its arrays in
    batches (stage ``image_properties``); the content hash is the manifest's pixel pin when it has one."""
    m = ds.manifest

    def work() -> None:
        pins = m["pin"].astype(str).to_numpy() if "pin" in m.columns else None
        hashes = pins if pins is not None and all(p.startswith("px:") for p in pins) else None
        run.write_parquet(runfiles.IMAGE_PROPERTIES, measure_array(ds.images.array, m["image_ref"].to_numpy(),
                                                                   m["sample_id"].astype(str).to_numpy(), hashes=hashes))

    run.run_stage("image_properties", work, inputs={"manifest": manifest_fingerprint(m), "properties": PROPERTIES_VERSION},
                  outputs=[runfiles.IMAGE_PROPERTIES])


def _test_embeddings(run: RunDir, ds: Dataset, cfg: HygieneConfig, supplied: bool) -> tuple[TestEmbeddings | None, list]:
    """The test rows' embeddings (and the input files they came from), or None."""
    test = ds.split("test")
    if not len(test):
        return None, []
    if cfg.test_embeddings:
        from curator.embeddings import load_embeddings_file

        emb = load_embeddings_file(cfg.test_embeddings, len(test))
        return TestEmbeddings(emb, test["sample_id"].astype(str).to_numpy()), []
    if supplied or not run.exists(runfiles.EMBEDDINGS_TEST):
        return None, []
    emb = run.read_npy(runfiles.EMBEDDINGS_TEST)
    if len(emb) != len(test):
        LOG.warning("hygiene: %s has %d rows for %d test samples; near leaks are not searched",
                    runfiles.EMBEDDINGS_TEST, len(emb), len(test))
        return None, []
    return TestEmbeddings(emb, test["sample_id"].astype(str).to_numpy()), [runfiles.EMBEDDINGS_TEST]


def hygiene_stage(run: RunDir, ds: Dataset, evidence: Evidence, embeddings: np.ndarray, cfg: HygieneConfig, *,
                  supplied_embeddings: bool = False) -> pd.DataFrame:
    """Run (or reuse) the hygiene checks for the training rows of `ds`; return RUN/hygiene.parquet."""
    decoded = isinstance(ds.images, ArrayImages) or not supplied_embeddings
    if isinstance(ds.images, ArrayImages):
        in_memory_properties(run, ds)
    has_props = decoded and run.exists(runfiles.IMAGE_PROPERTIES)
    test, test_files = _test_embeddings(run, ds, cfg, supplied_embeddings)
    train = ds.train.reset_index(drop=True)
    others = ds.manifest[ds.manifest["split"] != "train"][["sample_id", "split"]]

    def work() -> None:
        props = run.read_parquet(runfiles.IMAGE_PROPERTIES) if has_props else None
        res = run_checks(train, others, props, evidence.graph, cfg, train_features=evidence.features,
                         train_embeddings=embeddings, test=test, device=evidence.device,
                         skipped_properties="" if decoded else NOT_DECODED)
        run.write_parquet(runfiles.HYGIENE, res.table)
        run.write_parquet(runfiles.LEAKAGE, res.pairs)
        run.write_json(runfiles.HYGIENE_SUMMARY, res.summary)

    inputs = {"hygiene": cfg.to_dict(), "checks": registry.versions(), "manifest": manifest_fingerprint(ds.manifest),
              "decoded": decoded,
              "properties": PROPERTIES_VERSION,       # the checks read what this version measures (thumbnails)
              "test_embeddings": file_fingerprint(cfg.test_embeddings) if cfg.test_embeddings else None}
    run.run_stage("hygiene", work, inputs=inputs, outputs=OUTPUTS,
                  input_files=[runfiles.KNN, runfiles.EMBEDDINGS, *test_files]
                  + ([runfiles.IMAGE_PROPERTIES] if has_props else []))
    return run.read_parquet(runfiles.HYGIENE)
