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

**The run's image cache.** When the SSL stage decoded the images once into a cache and recorded it in
RUN/image_cache.json, and that cache is still there and matches the run's manifest
(`curator.data.cache.open_run_caches`: key, sample ids digest, row count), thumbnails are read from it by
memory map: the pixels the run trained on, resized whole to the cache's square size. The rule, per sample
and per thumbnail size:

- the cache, when its size is at least the thumbnail's (no file is decoded), or the sample's file is gone or
  changed since the run read it (the cache still holds what the run read: a run directory shared with its
  cache but without its images shows every image), or the run predates pins (a file's content cannot be
  checked, the cache's can);
- otherwise (a cache smaller than the thumbnail, e.g. 32 px on a CPU) the pinned file, which the pin check
  has found unchanged, so a larger view is not limited to the training resolution;
- a row the cache could not decode is the placeholder with the cache's reason, whatever the size.

A recorded cache that is missing or does not match is not used: one warning says why, and thumbnails come
from the files as above. Samples no cache holds (a split without one) are read from the files too.

Tiny images (digits 8x8, CIFAR 32x32, a 32-px cache) are enlarged with nearest-neighbour interpolation so
pixels stay crisp; large images are shrunk.
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
from curator.data.cache import ImageCache, open_run_caches
from curator.data.images import FileImages, ImageError, ImageSource
from curator.data.options import DatasetOptions
from curator.data.pins import ChangedSample, PinnedFileImages, changed_samples
from curator.data.problems import DataError

LOG = logging.getLogger(__name__)


@dataclass
class CachedImages:
    """The run's image caches addressed by image_ref: which cache and row hold each sample's pixels."""

    caches: list[ImageCache]
    which: np.ndarray                  # image_ref -> index in `caches`; -1 where no cache holds the image
    row: np.ndarray                    # image_ref -> row in that cache
    bad: dict[int, tuple[str, str]]    # image_ref -> (kind, reason) of an image the cache could not decode

    @classmethod
    def of(cls, caches: dict[str, ImageCache], manifest: pd.DataFrame) -> "CachedImages":
        """`caches` by split (row i = the split's i-th manifest row) turned into lookups by image_ref."""
        all_refs = manifest["image_ref"].to_numpy(np.int64)
        n = int(all_refs.max()) + 1 if len(all_refs) else 0
        which, row = np.full(n, -1, np.int16), np.zeros(n, np.int64)
        bad: dict[int, tuple[str, str]] = {}
        for i, (split, cache) in enumerate(caches.items()):
            refs = manifest.loc[manifest["split"] == split, "image_ref"].to_numpy(np.int64)
            rows = np.flatnonzero(refs >= 0)
            which[refs[rows]], row[refs[rows]] = i, rows
            bad.update({int(refs[int(b["row"])]): (str(b["kind"]), str(b["reason"])) for b in cache.bad})
        return cls(list(caches.values()), which, row, bad)

    def holds(self, ref: int) -> bool:
        return 0 <= ref < len(self.which) and self.which[ref] >= 0

    def size(self, ref: int) -> int:
        return self.caches[self.which[ref]].size

    def read(self, ref: int) -> np.ndarray:
        """The (S, S, 3) pixels the run read for image `ref`; `ImageError` if the cache could not decode it."""
        if ref in self.bad:
            kind, reason = self.bad[ref]
            raise ImageError(reason, kind)
        return self.caches[self.which[ref]].read(self.row[ref])

    def describe(self) -> str:
        return ", ".join(f"{len(c):,} images at {c.size} px" for c in self.caches)


@dataclass
class RunImages:
    """Where the run's pixels come from, and which samples no longer match what the run read."""

    source: ImageSource
    changed: list[ChangedSample] = field(default_factory=list)   # not shown: changed since the run, and not cached
    changed_refs: dict[int, str] = field(default_factory=dict)    # image_ref -> reason (shown instead of the image)
    unpinned: bool = False                                       # the run predates pins: content not checked
    cache: CachedImages | None = None                            # the run's image cache, when recorded and matching
    cached_only: frozenset[int] = frozenset()                    # refs changed since the run, shown from the cache

    def from_cache(self, ref: int, size: int) -> bool:
        """Whether a `size`-px thumbnail of image `ref` is read from the run's cache (module docstring)."""
        if self.cache is None or not self.cache.holds(ref):
            return False
        if ref in self.cache.bad or ref in self.cached_only or self.unpinned:
            return True
        return self.cache.size(ref) >= size


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
    images.cache = _run_cache(run_path, manifest)
    ref_of = {c.sample_id: int(refs[c.sample_id]) for c in changed if c.sample_id in refs}
    cached = [c for c in changed if images.cache is not None and images.cache.holds(ref_of.get(c.sample_id, -1))]
    if cached:
        LOG.info("explorer: %d samples changed since the run read them (e.g. %s: %s); shown from the run's image cache",
                 len(cached), cached[0].sample_id, cached[0].reason)
    images.cached_only = frozenset(ref_of[c.sample_id] for c in cached)
    images.changed = [c for c in changed if ref_of.get(c.sample_id) not in images.cached_only]
    images.changed_refs = {ref_of[c.sample_id]: c.reason for c in images.changed if c.sample_id in ref_of}
    if images.changed:
        LOG.warning("explorer: %d samples changed since the run read them (e.g. %s: %s); they are shown as placeholders",
                    len(images.changed), images.changed[0].sample_id, images.changed[0].reason)
    LOG.info("explorer: images of run %s opened (%d images, %d changed%s%s)", run_path, len(images.source),
             len(changed), ", not pinned" if images.unpinned else "",
             f"; image cache: {images.cache.describe()}" if images.cache is not None else "")
    return images


def _run_cache(run_path: Path, manifest: pd.DataFrame) -> CachedImages | None:
    """The image caches the run recorded and that still match it; one warning for those that do not."""
    caches, unused = open_run_caches(run_path, manifest)
    if unused:
        LOG.warning("explorer: the run's image cache is not used (%s); those images are read from the dataset's files",
                    "; ".join(f"{split}: {why}" for split, why in unused.items()))
    return CachedImages.of(caches, manifest) if caches else None


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

    Built from a `RunImages`, pixels come from the run's image cache or the pinned files (module docstring),
    and a file that changed since the run read it is never shown: its cached image is, or, without one, `get`
    returns the placeholder and `error` the reason."""

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
            thumb = to_thumbnail(self._pixels(*key), size)
        except ImageError as exc:
            LOG.warning("explorer: image %s cannot be shown: %s", key[0], exc.reason)
            self._errors[key[0]] = exc.reason
            thumb = placeholder(size)
        with self._lock:
            self._cache[key] = thumb
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return thumb

    def _pixels(self, ref: int, size: int) -> np.ndarray:
        """The pixels of a `size`-px thumbnail of image `ref`: the run's cache or the file (module docstring)."""
        if self.run_images.from_cache(ref, size):
            return self.run_images.cache.read(ref)
        if ref in self.run_images.changed_refs:
            raise ImageError(f"not shown: {self.run_images.changed_refs[ref]}", "changed_since_run")
        if not 0 <= ref < len(self.source):
            raise ImageError(f"image_ref {ref} is outside the dataset's {len(self.source)} images", "bad_ref")
        return self.source.read(ref)
