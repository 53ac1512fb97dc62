"""Thumbnails through the dataset's own image accessor, produced on demand and cached.

The explorer never opens a path written in a manifest row. It re-opens the dataset described by
RUN/config.json (``dataset`` options) with `curator.data.registry.load_dataset`, and reads pixels
only through that `ImageSource` by integer ``image_ref``; a ref outside the source is refused and
`FileImages` refuses paths escaping the dataset root. Tiny images (digits 8x8, CIFAR 32x32) are
enlarged with nearest-neighbour interpolation so pixels stay crisp; large images are shrunk.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from curator.data.images import ImageError, ImageSource
from curator.data.options import DatasetOptions
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)


def open_image_source(run_path: str | Path) -> ImageSource:
    """The `ImageSource` of the run's dataset, re-opened from RUN/config.json's dataset options."""
    from curator.data.registry import load_dataset

    cfg_path = Path(run_path) / "config.json"
    if not cfg_path.exists():
        raise DataError(f"run {str(run_path)!r} has no config.json, so its images cannot be found")
    opts = json.loads(cfg_path.read_text()).get("dataset") or {}
    known = set(DatasetOptions.__dataclass_fields__)
    options = DatasetOptions(**{k: v for k, v in opts.items() if k in known})
    # Thumbnails need only the accessor: skip corruption (it changes labels, not images) and subsetting.
    options.imbalance, options.noise, options.limit, options.subset_indices = "none", "none", None, None
    ds = load_dataset(options)
    LOG.info("explorer: images of dataset %s opened (%d images)", ds.name, len(ds.images))
    return ds.images


def to_thumbnail(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> at most (size, size, 3): integer nearest-neighbour enlargement when small."""
    h, w = img.shape[:2]
    longest = max(h, w)
    if longest * 2 <= size:
        f = size // longest
        return np.repeat(np.repeat(img, f, axis=0), f, axis=1)
    if longest <= size:
        return img
    pil = Image.fromarray(img)
    pil.thumbnail((size, size), Image.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


def placeholder(size: int) -> np.ndarray:
    """A grey square with a dark cross, shown for an image that cannot be read."""
    out = np.full((size, size, 3), 200, np.uint8)
    idx = np.arange(size)
    out[idx, idx] = 90
    out[idx, size - 1 - idx] = 90
    return out


class Thumbnails:
    """Least-recently-used cache of thumbnails by image ref; safe to share between sessions."""

    def __init__(self, source: ImageSource, capacity: int = 8192):
        self.source = source
        self.capacity = capacity
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._errors: dict[int, str] = {}
        self._lock = threading.Lock()

    def error(self, ref: int) -> str | None:
        """Why image `ref` could not be shown, if it could not."""
        return self._errors.get(int(ref))

    def get(self, ref: int, size: int = 96) -> np.ndarray:
        """Thumbnail of image `ref` (a placeholder, with the reason in `error(ref)`, if unreadable)."""
        key = (int(ref), int(size))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            if not 0 <= key[0] < len(self.source):
                raise ImageError(f"image_ref {key[0]} is outside the dataset's {len(self.source)} images", "bad_ref")
            thumb = to_thumbnail(self.source.read(key[0]), size)
        except ImageError as exc:
            LOG.warning("explorer: image %s cannot be shown: %s", key[0], exc.reason)
            self._errors[key[0]] = exc.reason
            thumb = placeholder(size)
        with self._lock:
            self._cache[key] = thumb
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return thumb

    def many(self, refs, size: int = 96) -> list[np.ndarray]:
        return [self.get(r, size) for r in refs]
