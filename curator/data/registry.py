"""The adapter registry and `load_dataset`, the one entry point from options to a `Dataset`."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from curator.data.adapters import cifar, cifarn, clothing1m, digits, imagefolder, table
from curator.data.adapters.spec import AdapterSpec
from curator.data.manifest import Dataset, check_manifest
from curator.data.options import DatasetOptions
from curator.data.pins import pin_manifest
from curator.data.problems import DataError, ProblemReport

LOG = logging.getLogger(__name__)


#: every dataset adapter, by name: one module under curator/data/adapters each, listed here (ARCHITECTURE.md)
ADAPTERS: dict[str, AdapterSpec] = {spec.name: spec for module in (digits, cifar, cifarn, clothing1m, imagefolder, table)
                                    for spec in module.ADAPTER_SPECS}


def load_dataset(options: DatasetOptions) -> Dataset:
    """Adapter → subset/limit → corruption → pins; returns the dataset with every problem reported.

    Options are validated first (`DatasetOptions.validate`): a bad value is a `DataError`.
    """
    options.validate()
    if options.dataset not in ADAPTERS:
        known = ", ".join(sorted(ADAPTERS))
        raise DataError(f"unknown dataset {options.dataset!r}; known adapters: {known}")
    spec = ADAPTERS[options.dataset]
    if spec.needs_root:
        if not options.root:
            raise DataError(f"dataset {spec.name!r} needs --root: {spec.root_layout}")
        if not Path(options.root).exists():
            raise DataError(f"root {options.root!r} does not exist; dataset {spec.name!r} expects: {spec.root_layout}")
    report = ProblemReport(on_bad=options.on_bad)  # type: ignore[arg-type]
    ds = spec.loader(options, report)
    ds.problems = report
    ds = apply_subset(ds, options)
    if options.imbalance != "none" or options.noise != "none":
        from curator.data.corruption import corrupt
        ds = corrupt(ds, options)
    check_manifest(ds.manifest)
    ds.manifest = pin_manifest(ds.manifest, ds.images, stat_files=bool(options.extra.get("stat_files", True)))
    return ds


def apply_subset(ds: Dataset, options: DatasetOptions) -> Dataset:
    """Keep only the listed training rows (`--subset-indices`) and/or the first N (`--limit`).

    Indices refer to the training rows in the adapter's original order; other splits are kept.
    """
    m = ds.manifest
    train_pos = np.flatnonzero((m["split"] == "train").to_numpy())
    keep_train = train_pos
    if options.subset_indices:
        idx = read_subset_indices(options.subset_indices, len(train_pos))
        keep_train = train_pos[idx]
        ds.info["subset_indices"] = str(options.subset_indices)
    if options.limit is not None:
        keep_train = keep_train[: options.limit]
    if len(keep_train) == len(train_pos) and not options.subset_indices:
        return ds
    other = np.flatnonzero((m["split"] != "train").to_numpy())
    rows = np.concatenate([keep_train, other])
    return ds.select(rows)


def read_subset_indices(path: str | Path, n_train: int) -> np.ndarray:
    """The `--subset-indices` file as (K,) int64 positions into the `n_train` training rows.

    It must be a plain (non-pickled) 1-D ``.npy`` of integers (or of whole floats), each in
    0..n_train-1, none repeated; anything else is a `DataError` naming the file and what is wrong.
    """
    path = Path(path)
    where = f"--subset-indices {str(path)!r}"
    if not path.is_file():
        raise DataError(f"{where}: file does not exist" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        raw = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{where} holds Python objects (a pickled array), which curator never unpickles; "
                            "save the indices with np.save(path, np.asarray(indices, dtype=np.int64))") from None
        raise DataError(f"{where} is not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{where} is not a readable .npy file ({exc})") from None
    if not isinstance(raw, np.ndarray):
        raise DataError(f"{where} is an .npz archive; save one 1-D integer array with np.save")
    if raw.ndim != 1:
        raise DataError(f"{where}: expected a 1-D array of training indices, got shape {raw.shape}")
    if raw.dtype.kind in "iu":
        idx = raw.astype(np.int64)
    elif raw.dtype.kind == "f" and np.isfinite(raw).all() and (raw == np.round(raw)).all() and np.abs(raw).max(initial=0) < 2**53:
        idx = raw.astype(np.int64)
    else:
        raise DataError(f"{where}: expected integer indices, got dtype {raw.dtype}"
                        + (" with fractional or non-finite values" if raw.dtype.kind == "f" else ""))
    bad = idx[(idx < 0) | (idx >= n_train)]
    if len(bad):
        raise DataError(f"{where}: index {int(bad[0])} out of range for {n_train} training samples "
                        f"(valid: 0..{n_train - 1}; {len(bad)} bad in all)")
    if len(np.unique(idx)) != len(idx):
        raise DataError(f"{where} has repeated indices")
    if len(idx) == 0:
        raise DataError(f"{where} is empty: it selects no training sample")
    return idx


def given_dataset_options(args) -> dict:
    """The dataset options given on a command line (only those given). A `--root` without `--dataset` gets the
    adapter `infer_dataset` finds (a one-line DataError if it cannot tell): never the digits demo instead."""
    if getattr(args, "dataset", None) is None and getattr(args, "root", None):
        args.dataset = infer_dataset(args.root)
        LOG.info("--dataset %s (inferred from --root)", args.dataset)
    return {k: v for k, v in vars(DatasetOptions.from_args(args)).items() if getattr(args, k, None) is not None}


def infer_dataset(root: str | Path) -> str:
    """The adapter for a `--root` given without `--dataset`: ``csv`` / ``parquet`` for a manifest file,
    ``imagefolder`` for a folder of class folders holding images; otherwise a one-line DataError (never the
    demo instead)."""
    from curator.data.adapters.imagefolder import IMAGE_EXTENSIONS, SPLIT_DIRS

    root = Path(root)
    hint = "pass --dataset (see `curator datasets`)"
    if not root.exists():
        raise DataError(f"--root {str(root)!r} does not exist")
    if root.is_file():
        kind = {".csv": "csv", ".parquet": "parquet"}.get(root.suffix.lower())
        if kind is None:
            raise DataError(f"--root {str(root)!r} is a file but not a .csv or .parquet manifest; {hint}")
        return kind
    subdirs = [e for e in sorted(root.iterdir()) if e.is_dir() and not e.name.startswith(".")]
    if any((d / "batches.meta").is_file() or (d / "meta").is_file() for d in [root, *subdirs]):
        raise DataError(f"--root {str(root)!r} looks like a CIFAR download; pass --dataset cifar10, cifar100, "
                        "cifar10n or cifar100n")
    if (root / "noisy_label_kv.txt").is_file() or (root / "clean_label_kv.txt").is_file():
        raise DataError(f"--root {str(root)!r} looks like Clothing1M; pass --dataset clothing1m")
    split = [d for d in subdirs if d.name in SPLIT_DIRS]
    classes = [c for d in (split or subdirs) for c in (d.iterdir() if split else [d]) if c.is_dir()]
    for c in classes[:50]:
        if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in _first_files(c, 20)):
            return "imagefolder"
    manifests = [f.name for f in root.iterdir() if f.suffix.lower() in (".csv", ".parquet")]
    if manifests:
        raise DataError(f"--root {str(root)!r} is a folder holding {', '.join(sorted(manifests)[:3])}: give the "
                        "manifest file itself as --root, or pass --dataset")
    raise DataError(f"cannot tell what dataset --root {str(root)!r} holds (no class folders with images, no "
                    f".csv / .parquet manifest); {hint}")


def _first_files(folder: Path, n: int) -> list[Path]:
    import itertools
    import os

    with os.scandir(folder) as it:
        return [Path(e.path) for e in itertools.islice((e for e in it if e.is_file()), n)]
