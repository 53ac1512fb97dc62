"""Decode once (SPEC §4): file-backed images decoded and resized once into a uint8 cache.

A cache is one memory-mapped ``.npy`` of shape (N, S, S, 3) uint8 — row i is the image of the i-th
requested row, resized whole to S x S (PIL bilinear with antialiasing, as `resize_uint8`) — and a JSON
beside it (`images-<key>.json`) that records the size, the decoder, the sample ids' digest and every image
that could not be decoded (by row, sample id, kind and reason). Its key hashes the images' identity
(each row's source and content pin — the manifest's ``pin`` column when present, else the file's size and
mtime), the size and the decoder, not the labels: runs with other noise or seeds on the same images, and
several runs pointed at one shared folder (`ssl.cache_dir` or ``$CURATOR_CACHE``), share one cache.

Building: a process pool on the CPU (each worker decodes a chunk with PIL through
`curator.data.images.decode_image_bytes` and writes its rows into the memory map), or, with
``decoder="torchvision"``, `torchvision.io.decode_jpeg` on batches of JPEG files on the given device
(CUDA where present: nvJPEG) with anything it cannot decode — and every non-JPEG or truncated file (no
end-of-image marker), and every JPEG with EXIF data (its orientation is applied there) — passed to the PIL path, so bad images are reported with the same kinds and
reasons as everywhere else. A file is written under a temporary name and renamed when complete, so an
interrupted build leaves no half cache.

Reader: `ImageCache` (memory map + usable mask), what SSL training and embedding read; which cache a run
used is recorded in ``RUN/image_cache.json`` (``{"caches": {"<split>@<size>": {"path", "split", "size", "ids",
"n"}}}``, written by the SSL stage), and `open_run_caches` is its one reader: the explorer's thumbnails show
these pixels. A recorded cache is used only when it is still the one the run used: its file is named
``images-<key>.npy`` and describes itself with that key, holds exactly the split's rows of the run's manifest
(sample ids digest, row count, size) and, where the manifest pins every row, the key recomputed from those
pins matches. It is looked for at the recorded path, then under RUN/cache/ (a run directory moved or shared
with its cache). Loading never unpickles (``allow_pickle=False``, memory-mapped).
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from curator import runfiles
from curator.data.files import StorageError, check_regular, storage_error
from curator.data.images import EncodedImages, FileImages, ImageError, ImageSource, decode_image_bytes, resize_uint8
from curator.data.problems import DataError, ProblemReport

LOG = logging.getLogger(__name__)

CACHE_VERSION = 2   # 2: EXIF orientation applied (caches of version 1 are rebuilt)
DECODERS = ("pil", "torchvision")
CHUNK = 256               # rows per task of the process pool
PROCESS_POOL_MIN = 2048   # fewer rows than this are decoded by threads in this process
CACHE_FILE = re.compile(r"images-([0-9a-f]{16})\.npy")   # the name `build` gives a cache: images-<key>.npy


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def file_source(images: ImageSource) -> FileImages | None:
    """The `FileImages` behind `images` (also through a wrapper holding one as ``.files``), or None."""
    if isinstance(images, FileImages):
        return images
    inner = getattr(images, "files", None)
    return inner if isinstance(inner, FileImages) else None


def cacheable(images: ImageSource) -> bool:
    """Images that are decoded from files or encoded bytes (in-memory arrays need no cache)."""
    return file_source(images) is not None or isinstance(images, EncodedImages)


def _stat_pin(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"stat:{st.st_size}:{st.st_mtime_ns}"


def _content_pin(images: ImageSource, files: FileImages | None, ref: int) -> str:
    """The pin of an image the manifest did not pin: its file's size and mtime, or a hash of its bytes."""
    if files is not None:
        try:
            return _stat_pin(files.path(ref))
        except ImageError:
            return "escapes"
    if isinstance(images, EncodedImages):
        return hashlib.blake2b(images.raw(ref), digest_size=8).hexdigest()
    return ""


def identity(images: ImageSource, refs: Sequence[int], sources: Sequence[str], pins: Sequence[str] | None = None) -> str:
    """A hash of which images these rows are: their sources and content pins (or file stat), in order."""
    files = file_source(images)
    row_pins = [pins[i] if pins is not None and pins[i] else _content_pin(images, files, int(r))
                for i, r in enumerate(refs)]
    return pinned_identity(sources, row_pins)


def pinned_identity(sources: Sequence[str], pins: Sequence[str]) -> str:
    """`identity` of rows whose every content pin is known (e.g. from the manifest alone, no file opened)."""
    h = hashlib.sha256()
    for s, pin in zip(sources, pins):
        h.update(f"{s}\x00{pin}\x01".encode())
    return h.hexdigest()[:16]


def cache_key(image_identity: str, size: int, decoder: str) -> str:
    return hashlib.sha256(f"v{CACHE_VERSION}:{image_identity}:{size}:{decoder}".encode()).hexdigest()[:16]


def ids_digest(sample_ids: Sequence[str]) -> str:
    return hashlib.sha256("\x00".join(map(str, sample_ids)).encode()).hexdigest()[:16]


def default_dir(run_dir: str | os.PathLike | None, cache_dir: str | None = None) -> Path:
    """`cache_dir`, else $CURATOR_CACHE, else RUN/cache."""
    chosen = cache_dir or os.environ.get("CURATOR_CACHE")
    if chosen:
        return Path(chosen).expanduser()
    if run_dir is None:
        raise ValueError("no cache folder: give a run directory or a cache_dir")
    return Path(run_dir) / "cache"


@dataclass
class ImageCache:
    """A built cache: ``pixels`` (N, S, S, 3) uint8 memory map, and the rows that could not be decoded."""
    path: Path
    pixels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def bad(self) -> list[dict[str, Any]]:
        return list(self.meta.get("bad", []))

    def __len__(self) -> int:
        return len(self.pixels)

    def read(self, row: int) -> np.ndarray:
        """Image of row `row` as (S, S, 3) uint8 (zeros for an image that could not be decoded)."""
        return np.asarray(self.pixels[int(row)])

    def read_batch(self, rows: Sequence[int]) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        order = np.argsort(rows, kind="stable")     # sorted reads from the memory map, returned in request order
        out = np.empty((len(rows), *self.pixels.shape[1:]), np.uint8)
        out[order] = self.pixels[rows[order]]
        return out

    @classmethod
    def open(cls, npy: str | os.PathLike) -> "ImageCache":
        npy = Path(npy)
        try:
            check_regular(npy)
            check_regular(npy.with_suffix(".json"))
        except DataError as exc:
            raise ValueError(str(exc)) from None
        meta = json.loads(npy.with_suffix(".json").read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"{npy.with_suffix('.json')} does not describe an image cache")
        return cls(npy, np.load(npy, mmap_mode="r", allow_pickle=False), meta)


# --- the cache a run recorded (RUN/image_cache.json) -------------------------------------------------------------
def open_run_caches(run_path: str | os.PathLike,
                    manifest: pd.DataFrame) -> tuple[dict[str, ImageCache], dict[str, str]]:
    """The image caches run `run_path` recorded, by split, each checked to hold that split's rows of `manifest`
    (the run's manifest, in its order: row i of the cache is the i-th row of the split); and, by split, why a
    recorded cache is not used. Of several sizes recorded for a split, the largest usable one is returned."""
    run_path = Path(run_path)
    try:
        if not check_regular(run_path / runfiles.IMAGE_CACHE, missing_ok=True):
            return {}, {}
        record = json.loads((run_path / runfiles.IMAGE_CACHE).read_text())
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError, DataError) as exc:
        return {}, {"all": f"{runfiles.IMAGE_CACHE} cannot be read ({exc})"}
    entries = record.get("caches") if isinstance(record, dict) else None
    if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
        return {}, {"all": f"{runfiles.IMAGE_CACHE} does not list caches"}
    found: dict[str, ImageCache] = {}
    unused: dict[str, str] = {}
    for entry in sorted(entries.values(), key=lambda e: -_int(e.get("size"))):
        split = str(entry.get("split"))
        if split in found:
            continue
        cache, why = _open_recorded(run_path, entry, manifest[manifest["split"] == split])
        if cache is not None:
            found[split] = cache
            unused.pop(split, None)
        else:
            unused.setdefault(split, why)
    return found, unused


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _open_recorded(run_path: Path, entry: dict[str, Any], rows: pd.DataFrame) -> tuple[ImageCache | None, str]:
    """The cache one record names, found at its path or under RUN/cache/ and checked against `rows`."""
    recorded = Path(str(entry.get("path", "")))
    name = CACHE_FILE.fullmatch(recorded.name)
    if name is None:
        return None, f"{str(recorded)!r} is not an image cache file"
    where = [p for p in (recorded, run_path / "cache" / recorded.name)
             if p.exists() and p.with_suffix(".json").exists()]
    if not where:
        return None, f"cache file {recorded} is missing"
    try:
        cache = ImageCache.open(where[0])
    except (OSError, ValueError) as exc:
        return None, f"cache file {where[0]} cannot be read ({exc})"
    why = _mismatch(cache, entry, rows, name.group(1))
    return (None, f"cache file {where[0]} {why}") if why else (cache, "")


def _mismatch(cache: ImageCache, entry: dict[str, Any], rows: pd.DataFrame, key: str) -> str:
    """Why `cache` is not the one `entry` recorded for `rows`, or "" when it is."""
    meta, size = cache.meta, _int(entry.get("size"))
    if meta.get("key") != key or meta.get("version") != CACHE_VERSION:
        return "is not the cache its name says (its key or format version differs)"
    if _int(entry.get("n")) != len(rows):
        return f"was recorded for {entry.get('n')} rows; the run's manifest has {len(rows)} in this split"
    want = (len(rows), size, size, 3)
    if cache.pixels.dtype != np.uint8 or cache.pixels.shape != want or meta.get("size") != size:
        return f"holds {cache.pixels.dtype} pixels of shape {cache.pixels.shape}; the run's rows need uint8 {want}"
    bad = meta.get("bad", [])
    if not isinstance(bad, list) or not all(isinstance(b, dict) and {"row", "kind", "reason"} <= b.keys()
                                            and 0 <= _int(b["row"]) < len(rows) for b in bad):
        return "lists undecodable rows that are not among its rows"
    if not meta.get("ids") == entry.get("ids") == ids_digest(rows["sample_id"].astype(str).tolist()):
        return "holds other samples than the run's manifest (the sample ids digest differs)"
    pins = rows["pin"].astype(str).tolist() if "pin" in rows.columns else []
    if pins and all(pins) and cache_key(pinned_identity(rows["source"].astype(str).tolist(), pins), size,
                                        str(meta.get("decoder"))) != key:
        return "was built from other images than the run's manifest pins"
    return ""


# --- decoding ------------------------------------------------------------------------------------------------
def _decode_resized(raw: bytes, size: int) -> np.ndarray:
    return resize_uint8(decode_image_bytes(raw)[0], size)


def _read_raw(kind: str, payload: Any) -> bytes:
    if kind == "file":
        try:
            return Path(payload).read_bytes()
        except FileNotFoundError:
            raise ImageError(f"file not found: {payload}", "missing_file") from None
        except OSError as exc:
            raise ImageError(f"cannot read file {payload}: {exc}", "unreadable_image") from None
    return payload


def _decode_chunk(npy: str, start: int, size: int, items: list[tuple[str, Any]]) -> list[tuple[int, str, str]]:
    """Process-pool task: decode `items` into rows start.. of the memory map; return (row, kind, reason) of failures."""
    out = np.load(npy, mmap_mode="r+", allow_pickle=False)
    bad = []
    for i, (kind, payload) in enumerate(items):
        try:
            out[start + i] = _decode_resized(_read_raw(kind, payload), size)
        except ImageError as exc:
            bad.append((start + i, exc.kind, exc.reason))
        except (ValueError, OSError) as exc:
            bad.append((start + i, "unreadable_image", f"cannot read image: {exc}"))
    out.flush()
    del out
    return bad


def _items(images: ImageSource, refs: np.ndarray) -> list[tuple[str, Any]]:
    """What a worker needs to read each row: ('file', path) or ('bytes', encoded bytes)."""
    files = file_source(images)
    items: list[tuple[str, Any]] = []
    for r in refs:
        if files is not None:
            try:
                items.append(("file", str(files.path(int(r)))))
            except ImageError as exc:
                items.append(("error", (exc.kind, exc.reason)))
        else:
            items.append(("bytes", images.raw(int(r))))
    return items


def _use_processes(pool: str, workers: int, n: int) -> bool:
    return pool == "process" or (pool == "auto" and workers > 1 and n >= PROCESS_POOL_MIN)


def _decode_pil(npy: Path, items: list[tuple[str, Any]], size: int, workers: int,
                pool_kind: str = "auto") -> list[tuple[int, str, str]]:
    bad = [(i, *payload) for i, (kind, payload) in enumerate(items) if kind == "error"]
    todo = [(s, [it if it[0] != "error" else ("bytes", b"") for it in items[s:s + CHUNK]])
            for s in range(0, len(items), CHUNK)]
    errors = {i for i, _, _ in bad}
    if _use_processes(pool_kind, workers, len(items)):
        import multiprocessing

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_decode_chunk, str(npy), s, size, chunk) for s, chunk in todo]
            results = [f.result() for f in futures]
    else:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda t: _decode_chunk(str(npy), t[0], size, t[1]), todo))
    for res in results:
        bad.extend(b for b in res if b[0] not in errors)
    return sorted(bad)


def _decode_torchvision(npy: Path, items: list[tuple[str, Any]], size: int, device: str,
                        batch: int = 256) -> list[tuple[int, str, str]]:
    """`torchvision.io.decode_jpeg` on batches (on `device`: nvJPEG on CUDA), resize on the device; files that
    are not complete JPEGs go through the PIL path so their problems read as everywhere else."""
    import torch
    import torch.nn.functional as F
    import torchvision.io as tio

    out = np.load(npy, mmap_mode="r+", allow_pickle=False)
    bad: list[tuple[int, str, str]] = []
    fallback: list[int] = []
    for s in range(0, len(items), batch):
        rows, datas = [], []
        for i in range(s, min(s + batch, len(items))):
            kind, payload = items[i]
            if kind == "error":
                bad.append((i, *payload))
                continue
            try:
                raw = _read_raw(kind, payload)
            except ImageError as exc:
                bad.append((i, exc.kind, exc.reason))
                continue
            if raw[:2] == b"\xff\xd8" and raw.rstrip(b"\x00")[-2:] == b"\xff\xd9" and b"Exif" not in raw[:65536]:
                rows.append(i)
                datas.append(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
            else:
                fallback.append(i)
        if not rows:
            continue
        try:
            imgs = tio.decode_jpeg(datas, mode=tio.ImageReadMode.RGB, device=device)
        except RuntimeError:
            fallback.extend(rows)   # one bad file fails the whole batch: decode these one by one below
            continue
        for i, img in zip(rows, imgs):
            x = img[None].float()
            if img.shape[1] != size or img.shape[2] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            out[i] = x[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    out.flush()
    del out
    for i in sorted(fallback):
        bad.extend(_decode_chunk(str(npy), i, size, [items[i]]))
    return sorted(bad)


def _report(bad: list[dict[str, Any]], usable: np.ndarray, problems: ProblemReport | None) -> None:
    for b in bad:
        keep = problems.add(b["sample_id"], b["source"], b["kind"], b["reason"]) if problems is not None else False
        usable[b["row"]] = keep
        LOG.warning("image of sample %s (%s) cannot be decoded: %s -> %s", b["sample_id"], b["source"], b["reason"],
                    "kept as a black image" if keep else "excluded")


def build(images: ImageSource, refs: Sequence[int], size: int, folder: str | os.PathLike, *,
          sample_ids: Sequence[str], sources: Sequence[str], pins: Sequence[str] | None = None,
          problems: ProblemReport | None = None, workers: int | None = None, decoder: str = "pil",
          device: str = "cpu", pool: str = "auto") -> tuple[ImageCache, np.ndarray]:
    """The cache of these rows at `size` (built now, or found in `folder`) and the (N,) mask of rows to use.

    `pool` (PIL decoder): ``auto`` (processes for `PROCESS_POOL_MIN` rows or more, else threads), ``process``
    or ``thread``; `workers` defaults to the cores this process may use.

    Images that cannot be decoded are zero in the cache and reported to `problems` by sample id (as every
    time the cache is used), and are usable only if the report's policy keeps them."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    refs = np.asarray(refs, np.int64)
    folder = Path(folder)
    key = cache_key(identity(images, refs, sources, pins), size, decoder)
    npy = folder / f"images-{key}.npy"
    digest = ids_digest(sample_ids)
    cache = None
    if npy.exists() and npy.with_suffix(".json").exists():
        try:
            cache = ImageCache.open(npy)
        except (OSError, ValueError) as exc:
            LOG.warning("image cache %s cannot be read (%s); building it again", npy, exc)
        if cache is not None and (cache.meta.get("ids") != digest or cache.meta.get("key") != key
                                  or cache.meta.get("version") != CACHE_VERSION or cache.pixels.dtype != np.uint8
                                  or cache.pixels.shape != (len(refs), size, size, 3)):
            LOG.warning("image cache %s does not match these samples; building it again", npy)
            cache = None
        if cache is not None:
            LOG.info("image cache: reusing %s (%d images at %d px)", npy, len(refs), size)
    if cache is None:
        cache = _build(images, refs, size, npy, sample_ids, sources, digest, key, workers, decoder, device, pool)
    usable = np.ones(len(refs), bool)
    _report(cache.bad, usable, problems)
    return cache, usable


def _reserve(tmp: Path, shape: tuple[int, ...]) -> None:
    """Create the zero-filled (N, S, S, 3) uint8 memory map `tmp` with its disk blocks allocated up front, so that
    a full disk is a `StorageError` now (free space checked first) and never a SIGBUS ("Bus error") when a worker
    writes a page of a sparse file later; workers open it themselves."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    need = int(np.prod(shape)) + 4096
    free = shutil.disk_usage(tmp.parent).free
    if free < need:
        raise StorageError(f"cannot build the image cache in {str(tmp.parent)!r}: it needs {need / 2**20:.1f} MiB, "
                           f"{free / 2**20:.1f} MiB are free there (set ssl.cache_dir elsewhere, or ssl.cache=off)")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    del arr
    with open(tmp, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):   # a file system without fallocate: sparse, as before
                raise


def _build(images, refs, size, npy, sample_ids, sources, digest, key, workers, decoder, device, pool) -> ImageCache:
    tmp = npy.with_name(f".{npy.stem}.{os.getpid()}.tmp.npy")
    meta_tmp = npy.with_name(f".{npy.stem}.{os.getpid()}.tmp.json")
    workers = workers or available_cores()
    t0 = time.perf_counter()
    try:
        _reserve(tmp, (len(refs), size, size, 3))
        items = _items(images, refs)
        LOG.info("image cache: decoding %d images to %d px (%s, %s)", len(refs), size,
                 decoder if decoder == "pil" else f"torchvision on {device}",
                 f"{workers} processes" if decoder == "pil" and _use_processes(pool, workers, len(refs))
                 else f"{workers} threads")
        raw_bad = (_decode_pil(tmp, items, size, workers, pool) if decoder == "pil"
                   else _decode_torchvision(tmp, items, size, device))
        seconds = time.perf_counter() - t0
        bad = [{"row": int(i), "sample_id": str(sample_ids[i]), "source": str(sources[i]), "kind": k, "reason": r}
               for i, k, r in raw_bad]
        meta = {"version": CACHE_VERSION, "key": key, "size": size, "n": len(refs), "decoder": decoder,
                "ids": digest, "bad": bad, "seconds": round(seconds, 2), "workers": workers,
                "images_per_s": round(len(refs) / max(seconds, 1e-9), 1), "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
        meta_tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, npy)
        os.replace(meta_tmp, npy.with_suffix(".json"))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"the image cache folder {str(npy.parent)!r} (or the cache being built in it) was removed "
                            "while the cache was built; run the command again") from None
        err = storage_error(exc, npy)
        if err is None:
            raise
        raise err from None
    finally:
        for t in (tmp, meta_tmp):
            if t.exists():
                t.unlink()
    LOG.info("image cache: %d images in %.1f s (%.0f images/s) -> %s (%.1f MB)", len(refs), seconds,
             len(refs) / max(seconds, 1e-9), npy, npy.stat().st_size / 2**20)
    return ImageCache.open(npy)
