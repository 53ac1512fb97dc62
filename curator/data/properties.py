"""Image properties and an exact-content hash, measured from decoded pixels (docs/hygiene.md).

Every property is measured once per image, in the pass that already decodes every image
(`curator.data.validate.check_images`), or from the arrays of an in-memory dataset
(`measure_array`); nothing decodes an image a second time for them. The values are stored in
``RUN/image_properties.parquet`` (one row per sample) and thresholded per dataset by
`curator.hygiene.thresholds`.

| column         | range        | meaning                                                                        |
|----------------|--------------|--------------------------------------------------------------------------------|
| content_hash   | text         | ``px:`` + blake2b of the decoded pixels and their shape (`curator.data.pins.pixels_pin`): equal hashes = identical images, whatever the file format |
| width, height  | pixels       | size of the decoded image                                                      |
| darkness       | [0, 1]       | 1 − the 99th percentile of the pixels' luma: 1 = even the brightest pixels are black (CleanVision's "dark" uses the same percentile) |
| lightness      | [0, 1]       | the 5th percentile of the luma: 1 = even the darkest pixels are white (washed out) |
| sharpness      | [0, ~4]      | variance of the Laplacian of the luma divided by that of the luma reduced 2 x 2: the energy of the finest octave of detail relative to the next coarser one. Natural photographs have about the same ratio whatever they show (their spectra fall off alike across scales) and it does not change when an image is darker or flatter, so it isolates blur, which removes the finest octave first; NaN for images under 4 x 4 pixels |
| entropy        | [0, 8] bits  | Shannon entropy of the 256-bin luma histogram: near 0 for blank images          |
| colorfulness   | [0, ~1]      | Hasler & Süsstrunk (2003) colourfulness / 255: 0 for grayscale images           |
| thumbnail      | 256 bytes    | the luma reduced to `THUMB_SIDE` x `THUMB_SIDE` (16 x 16, PIL box filter), row-major uint8: the pixel evidence that confirms a near duplicate (`curator.hygiene.duplicates.pixel_similarity`) |

Luma is ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B). Images larger than `MAX_SIDE` pixels on their
longer side are measured after a box-filter reduction to at most that size (PIL ``Image.reduce``), so a large
photograph costs little more than a small one; the hash and the size are always of the full image.
**Sharpness is the exception**: it is measured at the image's own pixel scale, on its central crop of at most
`NATIVE_SIDE` x `NATIVE_SIDE` pixels (the whole image when smaller). Blur is a loss of detail at the scale of the
image's pixels; reducing a large image first hides it (a Gaussian blur of radius 4 on a 1,024-pixel image is a radius
of 0.5 after the reduction to 128 px: sharp again), so a heavily blurred image much larger than the rest of its folder
was not found (docs/hygiene.md, "Blur across image sizes").

Cost. The pass's worker threads hash and reduce each image (`prepare_image`: hashlib and PIL release the GIL);
`Measurer` then measures equal-shape images in batches with one NumPy call per statistic. Measured on the busy
development machine (docs/hygiene.md): one call per image cost 0.8 ms for a 32 x 32 image, more than decoding the
JPEG (0.35 ms), batches 0.2-0.3 ms; a per-image path through PIL's C filters (luma, Laplacian and YCbCr in C) was
slower still (0.8 ms at 32 px, 4 ms at 128 px) because of its per-call overhead, so it was not kept.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from curator.data.pins import pixels_pin

MAX_SIDE = 128
NATIVE_SIDE = 256    # sharpness: the central crop measured at the image's own resolution
THUMB_SIDE = 16      # the luma thumbnail that confirms near duplicates
VERSION = 4   # bump when a definition changes: cached image checks are then recomputed (4: thumbnail, native sharpness)
MEASURES = ("darkness", "lightness", "sharpness", "entropy", "colorfulness")
COLUMNS = ("sample_id", "content_hash", "width", "height", *MEASURES, "thumbnail")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _reduced(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 reduced by an integer box filter until the longer side is ≤ MAX_SIDE."""
    side = max(pixels.shape[0], pixels.shape[1])
    if side <= MAX_SIDE:
        return pixels
    from PIL import Image

    factor = -(-side // MAX_SIDE)
    return np.asarray(Image.fromarray(pixels).reduce(factor), dtype=np.uint8)


def _luma(pixels: np.ndarray) -> np.ndarray:
    """(..., H, W) float32 BT.601 luma in [0, 255] of (..., H, W, 3) uint8 RGB."""
    return np.tensordot(np.asarray(pixels, np.float32), _LUMA, axes=([-1], [0]))


def thumbnail(pixels: np.ndarray) -> bytes:
    """The `THUMB_SIDE` x `THUMB_SIDE` luma thumbnail of one (H, W, 3) uint8 RGB image (PIL box filter), as 256 bytes
    (row-major uint8). The image may already be reduced (`_reduced`): a box filter of a box filter is one."""
    from PIL import Image

    luma = np.clip(_luma(pixels) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(luma).resize((THUMB_SIDE, THUMB_SIDE), Image.BOX), np.uint8).tobytes()


def native_sharpness(pixels: np.ndarray) -> float:
    """Sharpness (`_octave_ratio`) of one (H, W, 3) uint8 image at its own resolution, on its central crop of at most
    `NATIVE_SIDE` x `NATIVE_SIDE` pixels."""
    h, w = pixels.shape[:2]
    ch, cw = min(h, NATIVE_SIDE), min(w, NATIVE_SIDE)
    top, left = (h - ch) // 2, (w - cw) // 2
    return float(_octave_ratio(_luma(pixels[None, top:top + ch, left:left + cw]))[0])


#: variance of the 5-point Laplacian of the rounding noise of 8-bit pixels (20 x 1/12): the fine detail an image shows
#: even when it has none. Heavily blurred images at their own resolution have less real detail than that, and without
#: removing it their finest octave is pure rounding noise, which looks sharp (docs/hygiene.md, "Blur across sizes")
ROUNDING_LAPLACIAN_VAR = 20.0 / 12.0


def _octave_ratio(luma: np.ndarray) -> np.ndarray:
    """(N,) var(Laplacian(luma)) / var(Laplacian(luma reduced 2 x 2)) of (N, H, W) luma, each less the part 8-bit
    rounding noise contributes (`ROUNDING_LAPLACIAN_VAR`; a quarter of it after the 2 x 2 mean); NaN under 4 x 4
    pixels, 0 for an image without any detail at the coarser scale either."""
    n, h, w = luma.shape
    if h < 4 or w < 4:
        return np.full(n, np.nan)
    fine = ndimage.laplace(luma, mode="reflect", axes=(1, 2)).reshape(n, -1).var(axis=1)
    half = luma[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))   # 2 x 2 box reduction
    coarse = ndimage.laplace(half, mode="reflect", axes=(1, 2)).reshape(n, -1).var(axis=1)
    fine = np.maximum(fine - ROUNDING_LAPLACIAN_VAR, 0.0)
    coarse = np.maximum(coarse - ROUNDING_LAPLACIAN_VAR / 4.0, 0.0)
    return np.where(coarse > 1e-6, fine / np.maximum(coarse, 1e-6), 0.0)


def measure_batch(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The five measures of a stack of same-size RGB images (N, H, W, 3) uint8 -> {name: (N,) float32}."""
    px = np.asarray(pixels)
    if px.ndim != 4 or px.shape[3] != 3 or px.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 RGB pixels, got {px.shape} {px.dtype}")
    n = px.shape[0]
    f = px.astype(np.float32)                                          # (N, H, W, 3)
    luma = _luma(f)                                                    # (N, H, W) in [0, 255]
    levels = (luma + 0.5).astype(np.uint8).reshape(n, -1)              # rounded 0..255 (luma ≤ 255 by construction)
    hist = np.bincount((levels + (256 * np.arange(n))[:, None]).ravel(), minlength=256 * n).reshape(n, 256)
    cdf = np.cumsum(hist, axis=1) / max(levels.shape[1], 1)            # (N, 256)
    p99 = (cdf < 0.99).sum(axis=1) / 255.0                             # first level whose cdf reaches 0.99
    p05 = (cdf < 0.05).sum(axis=1) / 255.0
    p = hist / max(levels.shape[1], 1)
    entropy = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1)      # (N,) bits
    sharpness = _octave_ratio(luma)
    rg = (f[..., 0] - f[..., 1]).reshape(n, -1)
    yb = (0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]).reshape(n, -1)
    colorfulness = (np.sqrt(rg.var(axis=1) + yb.var(axis=1))
                    + 0.3 * np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)) / 255.0
    return {"darkness": (1.0 - p99).astype(np.float32), "lightness": p05.astype(np.float32),
            "sharpness": sharpness.astype(np.float32), "entropy": entropy.astype(np.float32),
            "colorfulness": colorfulness.astype(np.float32)}


def prepare_image(pixels: np.ndarray) -> tuple[str, int, int, np.ndarray, bytes, float]:
    """(content_hash, width, height, pixels reduced for measuring, thumbnail, sharpness at the image's own resolution
    or NaN when the reduced pixels are the image itself) of one (H, W, 3) uint8 RGB image.

    The part of the work that runs where the image was decoded (a worker thread of the image pass: PIL's
    reduction and hashlib release the GIL); the measures themselves are taken in batches by `Measurer`."""
    small = _reduced(pixels)
    native = native_sharpness(pixels) if small.shape != pixels.shape else float("nan")
    return pixels_pin(pixels), int(pixels.shape[1]), int(pixels.shape[0]), small, thumbnail(small), native


class Measurer:
    """Collects prepared images and measures them in batches of equal shape (one NumPy call per batch
    instead of one per image: per-image calls cost several times the decode of a 32 x 32 JPEG).

    Pending images are measured when a shape's batch reaches `batch` images or all pending pixels pass
    `max_pending_bytes`, and at `frame()`.
    """

    def __init__(self, batch: int = 256, max_pending_bytes: int = 64 << 20):
        self.batch, self.max_pending_bytes = batch, max_pending_bytes
        self._pending: dict[tuple, list] = {}
        self._pending_bytes = 0
        self._rows: list[tuple] = []

    def add(self, sample_id: str, prepared: tuple[str, int, int, np.ndarray, bytes, float]) -> None:
        content_hash, width, height, small, thumb, native = prepared
        group = self._pending.setdefault(small.shape, [])
        group.append((sample_id, content_hash, width, height, small, thumb, native))
        self._pending_bytes += small.nbytes
        if len(group) >= self.batch:
            self._flush(small.shape)
        elif self._pending_bytes > self.max_pending_bytes:
            for shape in list(self._pending):
                self._flush(shape)

    def _flush(self, shape: tuple) -> None:
        group = self._pending.pop(shape, [])
        if not group:
            return
        stack = np.stack([g[4] for g in group])
        self._pending_bytes -= stack.nbytes
        m = measure_batch(stack)
        for i, (sid, h, w, hh, _, thumb, native) in enumerate(group):
            if native == native:                                        # measured at full resolution (a large image)
                m["sharpness"][i] = native
            self._rows.append((sid, h, w, hh, *(float(m[k][i]) for k in MEASURES), thumb))

    def add_frame(self, df: pd.DataFrame) -> None:
        """Rows already measured (e.g. by `measure_array`), with `COLUMNS`."""
        self._rows.extend(df[list(COLUMNS)].itertuples(index=False, name=None))

    def frame(self) -> pd.DataFrame:
        for shape in list(self._pending):
            self._flush(shape)
        return frame_from_rows(self._rows)


def measure_image(pixels: np.ndarray) -> tuple:
    """(content_hash, width, height, darkness, lightness, sharpness, entropy, colorfulness, thumbnail) of one
    (H, W, 3) uint8 RGB image (the order of `COLUMNS` after ``sample_id``)."""
    h, w, hh, small, thumb, native = prepare_image(pixels)
    m = measure_batch(small[None])
    if native == native:
        m["sharpness"][0] = native
    return (h, w, hh, *(float(m[k][0]) for k in MEASURES), thumb)


def measure_array(array: np.ndarray, refs: np.ndarray, sample_ids, *, hashes=None, batch: int = 4096) -> pd.DataFrame:
    """The properties frame of in-memory images ``array[refs]`` ((M, H, W, 3) uint8), in batches.

    `hashes` may give the content hashes already known (the manifest's ``px:`` pins are exactly
    `pixels_pin` of each image), else they are computed.
    """
    refs = np.asarray(refs, dtype=np.int64)
    n = len(refs)
    cols: dict[str, np.ndarray] = {k: np.empty(n, np.float32) for k in MEASURES}
    thumbs: list[bytes] = []
    for s in range(0, n, batch):
        chunk = array[refs[s:s + batch]]
        large = chunk.shape[1] > MAX_SIDE or chunk.shape[2] > MAX_SIDE
        small = np.stack([_reduced(im) for im in chunk]) if large else chunk
        for k, v in measure_batch(small).items():
            cols[k][s:s + batch] = v
        if large:
            cols["sharpness"][s:s + batch] = [native_sharpness(im) for im in chunk]
        thumbs.extend(thumbnail(im) for im in small)
    if hashes is None:
        hashes = [pixels_pin(array[r]) for r in refs]
    h, w = (array.shape[1], array.shape[2]) if array.ndim >= 3 else (0, 0)
    return frame(sample_ids, hashes, np.full(n, w), np.full(n, h), cols, thumbs)


def frame(sample_ids, hashes, widths, heights, measures: dict[str, np.ndarray], thumbnails) -> pd.DataFrame:
    """The properties frame with `COLUMNS` and fixed dtypes (``thumbnail``: bytes objects, Parquet binary)."""
    return pd.DataFrame({"sample_id": pd.Series(list(sample_ids), dtype=str),
                         "content_hash": pd.Series(list(hashes), dtype=str),
                         "width": np.asarray(widths, np.int64), "height": np.asarray(heights, np.int64),
                         **{k: np.asarray(measures[k], np.float32) for k in MEASURES},
                         "thumbnail": pd.Series(list(thumbnails), dtype=object)})


def thumbnails_array(values) -> tuple[np.ndarray, np.ndarray]:
    """((N, THUMB_SIDE²) uint8, (N,) bool) from a ``thumbnail`` column (bytes per row): the thumbnails, and which rows
    have one (not those never decoded, nor rows of a properties file from before thumbnails; theirs are zeros)."""
    vals = list(values)
    size = THUMB_SIDE * THUMB_SIDE
    ok = np.array([isinstance(v, (bytes, bytearray)) and len(v) == size for v in vals], bool)
    out = np.zeros((len(vals), size), np.uint8)
    if ok.any():
        out[ok] = np.frombuffer(b"".join(v for v, good in zip(vals, ok) if good), np.uint8).reshape(-1, size)
    return out, ok


def frame_from_rows(rows: list[tuple]) -> pd.DataFrame:
    """The properties frame from (sample_id, *measure_image(...)) tuples."""
    if not rows:
        return frame([], [], [], [], {k: [] for k in MEASURES}, [])
    cols = list(zip(*rows))
    return frame(cols[0], cols[1], cols[2], cols[3], {k: cols[4 + i] for i, k in enumerate(MEASURES)}, cols[-1])
