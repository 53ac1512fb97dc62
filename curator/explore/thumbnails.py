"""Thumbnails of the images the run actually audited, produced on demand and cached.

`open_run_images(run)` decides where each sample's pixels come from, so that sample i always shows
the image the run read for sample i — never the image now at the same *position* of a folder that
was re-listed after files were added or removed:

- **image files** (imagefolder, csv/parquet, Clothing1M): the run's manifest pins each sample's
  ``file`` (relative to RUN/config.json ``image_root``) and a ``pin`` (size + mtime). Pixels are
  read from exactly that file (`curator.data.pins.PinnedFileImages`; paths escaping the root are
  still refused), and every file is checked against its pin: a missing or changed file is listed
  in `RunImages.changed` by sample id and shown as a placeholder with the reason, never as a
  different image.
- **in-memory images** (digits, CIFAR pickles): the dataset is re-opened from RUN/config.json's
  ``dataset`` options (`curator.data.registry.load_dataset`, without corruption or subsetting) and
  read by ``image_ref``; each sample's pixels are checked against the hash pinned in the manifest.
- a run written before pins existed: files are found by the manifest's ``source`` path (not by
  position); their content cannot be checked (`RunImages.unpinned`).

Tiny images (digits 8x8, CIFAR 32x32) are enlarged with nearest-neighbour interpolation so pixels
stay crisp; large images are shrunk.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curator import runfiles
from curator.data.images import FileImages, ImageError, ImageSource
from curator.data.options import DatasetOptions
from curator.data.pins import ChangedSample, PinnedFileImages, changed_samples
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)


@dataclass
class RunImages:
    """Where the run's pixels come from, and which samples no longer match what the run read."""

    source: ImageSource
    changed: list[ChangedSample] = field(default_factory=list)   # by sample id, with the reason
    changed_refs: dict[int, str] = field(default_factory=dict)    # image_ref -> reason (shown instead of the image)
    unpinned: bool = False                                       # the run predates pins: content not checked


def _reopen_dataset(run_path: Path, config: dict):
    """The run's dataset re-opened from RUN/config.json (no corruption, no subsetting: images only)."""
    from curator.data.registry import load_dataset

    opts = config.get("dataset") or {}
    known = set(DatasetOptions.__dataclass_fields__)
    options = DatasetOptions(**{k: v for k, v in opts.items() if k in known})
    # Thumbnails need only the accessor: skip corruption (it changes labels, not images) and subsetting.
    options.imbalance, options.noise, options.limit, options.subset_indices = "none", "none", None, None
    options.embeddings = None
    return load_dataset(options)


def open_run_images(run_path: str | Path) -> RunImages:
    """Open the images of run `run_path` and check them against the manifest's pins (module docstring)."""
    run_path = Path(run_path)
    cfg_path = run_path / runfiles.CONFIG
    if not cfg_path.exists():
        raise DataError(f"run {str(run_path)!r} has no config.json, so its images cannot be found")
    try:
        config = json.loads(cfg_path.read_text())
        manifest = pd.read_parquet(run_path / runfiles.MANIFEST)
    except Exception as exc:  # noqa: BLE001 - a damaged run file: one line, not a traceback
        raise DataError(f"run {str(run_path)!r}: config.json or manifest.parquet cannot be read ({exc})") from None
    pinned_files = ("file" in manifest.columns and config.get("image_root")
                    and (manifest["file"].astype(str) != "").any())
    if pinned_files:
        root = Path(config["image_root"])
        images = RunImages(PinnedFileImages(root, manifest))
        changed = changed_samples(manifest, root=root)
    else:
        ds = _reopen_dataset(run_path, config)
        if "pin" in manifest.columns:
            images = RunImages(ds.images)
            changed = changed_samples(manifest, images=ds.images)
        elif isinstance(ds.images, FileImages):  # legacy run: by path, never by position
            images = RunImages(PinnedFileImages(ds.images.root, manifest, column="source"), unpinned=True)
            changed = []
        else:
            images = RunImages(ds.images, unpinned=True)
            changed = []
    refs = dict(zip(manifest["sample_id"].astype(str), manifest["image_ref"].to_numpy(np.int64)))
    images.changed = changed
    images.changed_refs = {int(refs[c.sample_id]): c.reason for c in changed if c.sample_id in refs}
    if changed:
        LOG.warning("explorer: %d samples changed since the run read them (e.g. %s: %s); they are shown as placeholders",
                    len(changed), changed[0].sample_id, changed[0].reason)
    LOG.info("explorer: images of run %s opened (%d images, %d changed%s)", run_path, len(images.source), len(changed),
             ", not pinned" if images.unpinned else "")
    return images


def open_image_source(run_path: str | Path) -> ImageSource:
    """The `ImageSource` holding the run's images (see `open_run_images`, which also says what changed)."""
    return open_run_images(run_path).source


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
    """Least-recently-used cache of thumbnails by image ref; safe to share between sessions.

    Built from a `RunImages`, images whose sample changed since the run read it are never shown:
    `get` returns the placeholder and `error` the reason."""

    def __init__(self, source: ImageSource | RunImages, capacity: int = 8192):
        self.run_images = source if isinstance(source, RunImages) else RunImages(source)
        self.source = self.run_images.source
        self.capacity = capacity
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._errors: dict[int, str] = {int(r): f"not shown: {why}" for r, why in self.run_images.changed_refs.items()}
        self._lock = threading.Lock()

    @property
    def changed(self) -> list[ChangedSample]:
        return self.run_images.changed

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
            if key[0] in self.run_images.changed_refs:
                raise ImageError(f"not shown: {self.run_images.changed_refs[key[0]]}", "changed_since_run")
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
