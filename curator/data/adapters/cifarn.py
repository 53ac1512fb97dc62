"""CIFAR-10N / CIFAR-100N: CIFAR images with real human label sets (Wei et al., ICLR 2022).

Same images as `curator.data.adapters.cifar`; the training labels come from the CIFAR-N label
file in the root (or the root's parent): ``CIFAR-10_human.pt`` (``clean_label``, ``worse_label``,
``aggre_label``, ``random_label1..3``) or ``CIFAR-100_human.pt`` (``clean_label``,
``noisy_label``), indexed in the order of the python-layout training batches. ``--label-set``
picks the given label; ``true_label`` is always ``clean_label`` (real noise with known truth).
The test split keeps the clean CIFAR test labels.

The label file is a ``torch.save``'d dict of numpy arrays; it is loaded with
``torch.load(weights_only=True)`` allowing only numpy's array reconstruction (never unrestricted).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from curator.data.adapters.cifar import CIFAR10, CIFAR100, CifarLayout, build_dataset, read_cifar
from curator.data.manifest import Dataset
from curator.data.options import DatasetOptions
from curator.data.problems import DataError, ProblemReport
from curator.data.adapters.spec import AdapterSpec

LOG = logging.getLogger(__name__)

CIFAR10N_SETS = {"worse": "worse_label", "aggre": "aggre_label", "random1": "random_label1",
                 "random2": "random_label2", "random3": "random_label3", "clean": "clean_label"}
CIFAR100N_SETS = {"noisy100": "noisy_label", "noisy": "noisy_label", "clean": "clean_label"}


def _numpy_safe_globals() -> list:
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    dtype_classes = [type(np.dtype(t)) for t in ("int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "bool")]
    # the file names numpy 1.x's path; numpy 2 defines the function under numpy._core
    return [(reconstruct, "numpy.core.multiarray._reconstruct"), reconstruct, np.ndarray, np.dtype, *dtype_classes]


def load_label_file(path: Path) -> dict[str, np.ndarray]:
    """Load a CIFAR-N ``*_human.pt`` file safely: ``weights_only=True`` plus numpy's array globals."""
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{str(path)!r}: refused to load (weights_only): {first}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{str(path)!r}: not a readable torch label file ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{str(path)!r}: expected a dict of label arrays, found {type(data).__name__}")
    out = {}
    for key, value in data.items():
        arr = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        out[str(key)] = arr.astype(np.int64).ravel()
    return out


def find_label_file(folders: list[Path], filename: str) -> Path:
    """The first ``folder/filename`` that exists; DataError listing where it was looked for."""
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    raise DataError(f"CIFAR-N label file {filename!r} not found in {', '.join(repr(str(f)) for f in dict.fromkeys(folders))}")


def _load(name: str, layout: CifarLayout, filename: str, sets: dict[str, str], default: str,
          options: DatasetOptions, report: ProblemReport) -> Dataset:
    label_set = options.label_set or default
    if label_set not in sets:
        raise DataError(f"unknown --label-set {label_set!r} for {name}; choose from {', '.join(sets)}")
    root = Path(options.root)
    arrays = read_cifar(root, layout)
    path = find_label_file([root, arrays.folder.parent, root.parent], filename)
    labels = load_label_file(path)
    for key in ("clean_label", sets[label_set]):
        if key not in labels:
            raise DataError(f"{str(path)!r} has no {key!r} array (found {sorted(labels)})")
        if len(labels[key]) != len(arrays.train_labels):
            raise DataError(f"{str(path)!r}: {key!r} has {len(labels[key])} entries but the training batches hold "
                            f"{len(arrays.train_labels)} images")
    clean = labels["clean_label"]
    mismatch = int((clean != arrays.train_labels).sum())
    if mismatch:
        report.note("clean_label_mismatch", f"{mismatch} of {len(clean)} clean labels differ from the batch labels; "
                    "the label file may not match the images' order", str(path))
    ds = build_dataset(name, arrays, labels[sets[label_set]], clean, report)
    noisy = float((labels[sets[label_set]] != clean).mean())
    ds.info.update({"label_set": label_set, "label_file": str(path), "label_key": sets[label_set],
                    "label_file_noise_rate": noisy})
    LOG.info("%s: label set %s (%s), %.2f%% disagree with clean_label", name, label_set, sets[label_set], 100 * noisy)
    return ds


def load_cifar10n(options: DatasetOptions, report: ProblemReport) -> Dataset:
    return _load("cifar10n", CIFAR10, "CIFAR-10_human.pt", CIFAR10N_SETS, "worse", options, report)


def load_cifar100n(options: DatasetOptions, report: ProblemReport) -> Dataset:
    return _load("cifar100n", CIFAR100, "CIFAR-100_human.pt", CIFAR100N_SETS, "noisy100", options, report)


ADAPTER_SPECS = [
    AdapterSpec("cifar10n", load_cifar10n, "CIFAR-10 images with CIFAR-10N human labels (--label-set worse|aggre|random1|random2|random3|clean)",
                "cifar-10-batches-py/ (as cifar10) and CIFAR-10_human.pt in the root or its parent"),
    AdapterSpec("cifar100n", load_cifar100n, "CIFAR-100 images with CIFAR-100N human labels (--label-set noisy100|clean)",
                "cifar-100-python/ (as cifar100) and CIFAR-100_human.pt in the root or its parent"),
]
