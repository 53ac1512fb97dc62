"""scikit-learn's bundled handwritten digits: the embedded default dataset.

1,797 grayscale 8x8 images (values 0..16) in 10 classes. Pixels are scaled to 0..255 and
replicated to RGB so that every downstream stage sees the same kind of image as for real data.
The whole set is the training split (the audit's subject); there is no test split.
"""
from __future__ import annotations

import numpy as np

from curator.data.adapters.spec import AdapterSpec
from curator.data.images import ArrayImages
from curator.data.manifest import Dataset, make_manifest
from curator.data.options import DatasetOptions
from curator.data.problems import ProblemReport


def load(options: DatasetOptions, report: ProblemReport) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)  # (N, 8, 8)
    labels = bunch.target.astype(np.int64)
    n = len(labels)
    ids = [f"digits/{i:04d}" for i in range(n)]
    manifest = make_manifest(ids, labels, source=[f"sklearn.datasets.load_digits[{i}]" for i in range(n)],
                             true_label=labels.copy(), split="train")
    return Dataset("digits", [str(c) for c in range(10)], manifest, ArrayImages(pixels, "digits"), None, report)


ADAPTER_SPECS = [
    AdapterSpec("digits", load, "scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes); the embedded default",
                "no root needed", needs_root=False),
]
