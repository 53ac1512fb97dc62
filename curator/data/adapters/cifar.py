"""CIFAR-10 and CIFAR-100 in torchvision's python layout (Krizhevsky 2009).

Root layout (``--root`` may be the folder holding it or the batch folder itself):

- CIFAR-10: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta`` (``label_names``);
- CIFAR-100: ``cifar-100-python/`` with ``train``, ``test``, ``meta`` (``fine_label_names``).

Each batch is a pickle of a dict with ``data`` (N x 3072 uint8: 1024 red, 1024 green, 1024 blue
values, row-major 32x32) and ``labels`` / ``fine_labels``. The pickles are read with
`curator.data.safe_pickle.load_pickle`, which refuses anything but containers and numpy arrays.
Images are kept decoded in memory (`ArrayImages`, N x 32 x 32 x 3); sample ids are
``train/000123`` and ``test/004567`` (position in the concatenated batches).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator.data.images import ArrayImages
from curator.data.manifest import UNKNOWN, Dataset, make_manifest
from curator.data.options import DatasetOptions
from curator.data.problems import DataError, ProblemReport
from curator.data.adapters.spec import AdapterSpec
from curator.data.safe_pickle import load_pickle
from curator.data.validate import check_labels, note_empty_classes

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    names_key: str
    labels_key: str
    n_classes: int


CIFAR10 = CifarLayout("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                      "batches.meta", "label_names", "labels", 10)
CIFAR100 = CifarLayout("cifar-100-python", ("train",), ("test",), "meta", "fine_label_names", "fine_labels", 100)


@dataclass
class CifarArrays:
    """The decoded python-layout files: images (N, 32, 32, 3) uint8, labels int64, class names."""

    folder: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]


def find_folder(root: str | Path, layout: CifarLayout) -> Path:
    """The batch folder: ``root/<folder>`` or ``root`` itself; DataError naming what is missing."""
    root = Path(root)
    for cand in (root / layout.folder, root):
        if (cand / layout.meta_file).is_file():
            return cand
    raise DataError(f"no {layout.folder}/ under {str(root)!r}: expected {str(root / layout.folder / layout.meta_file)!r} "
                    f"and the batch files {', '.join(layout.train_files + layout.test_files)}")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _key(d: dict, key: str, path: Path):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise DataError(f"{str(path)!r}: pickle has no {key!r} entry (keys: {sorted(_text(k) for k in d)})")


def _int_labels(values, path: Path, key: str) -> np.ndarray:
    """`values` as a 1-D int64 array; DataError (naming the file) for anything else, e.g. a huge int."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.ndim == 1:
        return values.astype(np.int64)
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise DataError(f"{str(path)!r}: {key!r} must be a list of integer labels, found {type(values).__name__}")
    try:
        arr = np.asarray(values)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"found {arr.dtype} of shape {arr.shape}")
        return arr.astype(np.int64)
    except (OverflowError, ValueError, TypeError) as exc:
        raise DataError(f"{str(path)!r}: {key!r} must be a list of integer labels ({type(exc).__name__}: "
                        f"{str(exc)[:120]})") from None


def read_batch(path: Path, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (images (N, 32, 32, 3) uint8, labels (N,) int64)."""
    if not path.is_file():
        raise DataError(f"missing CIFAR batch file {str(path)!r}")
    d = load_pickle(path)
    if not isinstance(d, dict):
        raise DataError(f"{str(path)!r}: expected a pickled dict, found {type(d).__name__}")
    data, labels = _key(d, "data", path), _key(d, labels_key, path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        found = f"{data.shape} {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{str(path)!r}: 'data' must be an N x 3072 uint8 array, found {found}")
    labels = _int_labels(labels, path, labels_key)
    if len(labels) != len(data):
        raise DataError(f"{str(path)!r}: {len(data)} images but {len(labels)} labels")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 3072) -> (N, 32, 32, 3)
    return images, labels


def read_cifar(root: str | Path, layout: CifarLayout) -> CifarArrays:
    """Read all batches of `layout` under `root` with the restricted unpickler."""
    folder = find_folder(root, layout)
    missing = [f for f in layout.train_files + layout.test_files if not (folder / f).is_file()]
    if missing:  # every missing file at once, not one per attempt
        raise DataError(f"{str(folder)!r} is missing {len(missing)} CIFAR batch file{'s' if len(missing) > 1 else ''}: "
                        f"{', '.join(missing)} (the python version from https://www.cs.toronto.edu/~kriz/cifar.html, "
                        "unpacked as it comes)")
    meta_path = folder / layout.meta_file
    meta = load_pickle(meta_path)
    if not isinstance(meta, dict):
        raise DataError(f"{str(meta_path)!r}: expected a pickled dict, found {type(meta).__name__}")
    raw_names = _key(meta, layout.names_key, meta_path)
    if not isinstance(raw_names, (list, tuple)) or not all(isinstance(n, (str, bytes)) for n in raw_names):
        raise DataError(f"{str(meta_path)!r}: {layout.names_key!r} must be a list of class names")
    names = [_text(n) for n in raw_names]
    parts = {split: [read_batch(folder / f, layout.labels_key) for f in files]
             for split, files in (("train", layout.train_files), ("test", layout.test_files))}
    train_x = np.ascontiguousarray(np.concatenate([p[0] for p in parts["train"]]))
    test_x = np.ascontiguousarray(np.concatenate([p[0] for p in parts["test"]]))
    train_y = np.concatenate([p[1] for p in parts["train"]])
    test_y = np.concatenate([p[1] for p in parts["test"]])
    return CifarArrays(folder, train_x, train_y, test_x, test_y, names)


def build_dataset(name: str, arrays: CifarArrays, train_labels: np.ndarray, train_truth: np.ndarray | None,
                  report: ProblemReport) -> Dataset:
    """Manifest over train + test; test labels are the clean CIFAR labels (true_label = label)."""
    n_tr, n_te = len(arrays.train_images), len(arrays.test_images)
    ids = [f"train/{i:06d}" for i in range(n_tr)] + [f"test/{i:06d}" for i in range(n_te)]
    files = [f"{arrays.folder.name}/train[{i}]" for i in range(n_tr)] + [f"{arrays.folder.name}/test[{i}]" for i in range(n_te)]
    true_tr = np.full(n_tr, UNKNOWN, np.int64) if train_truth is None else train_truth
    manifest = make_manifest(ids, np.concatenate([train_labels, arrays.test_labels]), source=files,
                             true_label=np.concatenate([true_tr, arrays.test_labels]),
                             split=np.array(["train"] * n_tr + ["test"] * n_te, dtype=object))
    images = ArrayImages(np.concatenate([arrays.train_images, arrays.test_images]), name)
    manifest = check_labels(manifest, len(arrays.class_names), report)
    note_empty_classes(manifest, arrays.class_names, report)
    LOG.info("%s: %d train + %d test images from %s", name, n_tr, n_te, arrays.folder)
    return Dataset(name, arrays.class_names, manifest, images, arrays.folder.parent, report)


def _load(name: str, layout: CifarLayout, options: DatasetOptions, report: ProblemReport) -> Dataset:
    if options.label_set not in (None, "clean"):
        raise DataError(f"dataset {name!r} has no label sets (got --label-set {options.label_set!r}); use {name}n for CIFAR-N labels")
    arrays = read_cifar(options.root, layout)
    ds = build_dataset(name, arrays, arrays.train_labels, None, report)
    ds.info["label_set"] = "clean"
    return ds


def load_cifar10(options: DatasetOptions, report: ProblemReport) -> Dataset:
    return _load("cifar10", CIFAR10, options, report)


def load_cifar100(options: DatasetOptions, report: ProblemReport) -> Dataset:
    return _load("cifar100", CIFAR100, options, report)


ADAPTER_SPECS = [
    AdapterSpec("cifar10", load_cifar10, "CIFAR-10 (50,000 train + 10,000 test 32x32 images, 10 classes), torchvision python layout",
                "cifar-10-batches-py/ with data_batch_1..5, test_batch, batches.meta (pickles; read with a restricted unpickler)"),
    AdapterSpec("cifar100", load_cifar100, "CIFAR-100 (50,000 train + 10,000 test 32x32 images, 100 fine classes), torchvision python layout",
                "cifar-100-python/ with train, test, meta (pickles; read with a restricted unpickler)"),
]
