"""Images for SSL training and embedding, read only through the dataset's `ImageSource`.

Three paths, one interface (`BatchSource.batches(index_batches)` yields uint8 (B, 3, H, W) tensors on
the compute device):

- **resident**: every image decoded once into one uint8 tensor that lives on the device (the decode-once
  cache of `curator.data.cache` for file-backed data, or `decode_all` for in-memory images); a batch is an
  index into it — no host work per step;
- **cached** (decoded images larger than the resident budget): batches are read from the cache's memory
  map (sorted reads, a prefetching thread) and copied to the device — no decoding per epoch;
- **streaming** (the cache turned off, ``ssl.cache = "off"``): a `DataLoader` whose workers decode JPEG
  bytes with `torchvision.io.decode_jpeg` (other formats through the source) every epoch.

A sample whose image cannot be decoded is reported in the `ProblemReport` (sample id, reason) and,
under ``on_bad="skip"``, excluded from training (its pixels are zero and its embedding row is zero);
under ``"keep"`` its zero image is kept; under ``"error"`` the report raises `DataError`.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from curator.data.images import EncodedImages, FileImages, ImageError, ImageSource, resize_uint8
from curator.data.problems import ProblemReport

LOG = logging.getLogger(__name__)


def _read_chunk(source: ImageSource, refs: np.ndarray, size: int) -> tuple[np.ndarray, list[tuple[int, ImageError]]]:
    """Read a chunk as (n, size, size, 3) uint8; on failure fall back to one image at a time."""
    try:
        return source.read_batch(refs, size), []
    except (ImageError, ValueError, OSError):
        pass
    out = np.zeros((len(refs), size, size, 3), np.uint8)
    bad: list[tuple[int, ImageError]] = []
    for i, r in enumerate(refs):
        try:
            out[i] = resize_uint8(source.read(int(r)), size)
        except ImageError as exc:
            bad.append((i, exc))
        except (ValueError, OSError) as exc:
            bad.append((i, ImageError(f"cannot read image: {exc}")))
    return out, bad


def decode_all(source: ImageSource, refs: np.ndarray, size: int, *, sample_ids: Sequence[str] | None = None,
               sources: Sequence[str] | None = None, problems: ProblemReport | None = None,
               chunk: int = 2048, threads: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Decode `refs` into (N, size, size, 3) uint8 and a (N,) bool mask of samples to train on."""
    refs = np.asarray(refs, dtype=np.int64)
    n = len(refs)
    pixels = np.zeros((n, size, size, 3), np.uint8)
    usable = np.ones(n, bool)
    starts = list(range(0, n, chunk))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = pool.map(lambda s: (s, *_read_chunk(source, refs[s:s + chunk], size)), starts)
        for start, block, bad in results:
            pixels[start:start + len(block)] = block
            for i, exc in bad:
                j = start + i
                sid = sample_ids[j] if sample_ids is not None else f"row {j}"
                src = sources[j] if sources is not None else source.describe(int(refs[j]))
                keep = problems.add(sid, src, exc.kind, exc.reason) if problems is not None else False
                usable[j] = keep
                LOG.warning("image of sample %s (%s) cannot be decoded: %s -> %s", sid, src, exc.reason,
                            "kept as a black image" if keep else "excluded")
    return pixels, usable


def image_size_of(source: ImageSource, refs: np.ndarray) -> int:
    """Side of the first decodable image (the resident path trains at the images' own size)."""
    for r in refs[:16]:
        try:
            return int(source.read(int(r)).shape[0])
        except ImageError:
            continue
    raise ImageError("none of the first 16 images could be decoded")


class BatchSource:
    """Yields uint8 (B, 3, H, W) batches on `device` for lists of row positions."""

    def batches(self, index_batches: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        raise NotImplementedError


class ResidentBatches(BatchSource):
    def __init__(self, pixels: np.ndarray, device: torch.device):
        # (N, H, W, 3) uint8 host (an array, or a memory map read into memory) -> (N, 3, H, W) uint8 on device,
        # contiguous in channels_last order
        plain = isinstance(pixels, np.ndarray) and not isinstance(pixels, np.memmap) and pixels.flags.writeable
        host = np.ascontiguousarray(pixels) if plain else np.array(pixels, dtype=np.uint8, copy=True)
        self.data = torch.from_numpy(host).to(device).permute(0, 3, 1, 2)
        self.device = device

    def batches(self, index_batches):
        # one host->device copy of all indices, then device-side slices: no per-step synchronisation
        index_batches = [np.asarray(i, np.int64) for i in index_batches]
        if not index_batches:
            return
        flat = torch.as_tensor(np.concatenate(index_batches), device=self.device)
        for part in flat.split([len(i) for i in index_batches]):
            yield self.data[part]


class CachedBatches(BatchSource):
    """Batches read from decoded uint8 images (N, H, W, 3) — typically the memory map of a decode-once cache —
    too large to keep on the device; the next batch is read by a background thread while this one trains."""

    def __init__(self, pixels: np.ndarray, device: torch.device):
        self.pixels, self.device = pixels, device

    def _read(self, idx: np.ndarray) -> torch.Tensor:
        idx = np.asarray(idx, np.int64)
        order = np.argsort(idx, kind="stable")
        block = np.empty((len(idx), *self.pixels.shape[1:]), np.uint8)
        block[order] = self.pixels[idx[order]]
        t = torch.from_numpy(block).permute(0, 3, 1, 2)
        return t.pin_memory() if self.device.type == "cuda" else t

    def batches(self, index_batches):
        index_batches = list(index_batches)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._read, index_batches[0]) if index_batches else None
            for i in range(len(index_batches)):
                x = pending.result()
                pending = pool.submit(self._read, index_batches[i + 1]) if i + 1 < len(index_batches) else None
                yield x.to(self.device, non_blocking=True)


class _DecodeDataset(torch.utils.data.Dataset):
    """Map-style dataset: row position -> (uint8 (3, S, S), ok flag, reason)."""

    def __init__(self, source: ImageSource, refs: np.ndarray, size: int):
        self.source, self.refs, self.size = source, np.asarray(refs, np.int64), size

    def __len__(self) -> int:
        return len(self.refs)

    def _jpeg_bytes(self, ref: int) -> bytes | None:
        if isinstance(self.source, EncodedImages):
            raw = self.source.raw(ref)
        elif isinstance(self.source, FileImages):
            raw = self.source.path(ref).read_bytes()
        else:
            return None
        return raw if raw[:2] == b"\xff\xd8" else None

    def __getitem__(self, i: int):
        import torchvision.io as tio

        ref = int(self.refs[i])
        try:
            raw = self._jpeg_bytes(ref)
            if raw is not None:
                img = tio.decode_jpeg(torch.frombuffer(bytearray(raw), dtype=torch.uint8), mode=tio.ImageReadMode.RGB)
            else:
                img = torch.from_numpy(np.ascontiguousarray(self.source.read(ref))).permute(2, 0, 1)
            if img.shape[1] != self.size or img.shape[2] != self.size:
                img = F.interpolate(img[None].float(), size=(self.size, self.size), mode="bilinear",
                                    antialias=True, align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            return img, True, ""
        except (ImageError, RuntimeError, OSError, ValueError) as exc:
            return torch.zeros(3, self.size, self.size, dtype=torch.uint8), False, str(exc)


class StreamingBatches(BatchSource):
    """DataLoader workers decode each batch; decoding failures are reported in `failures`."""

    def __init__(self, source: ImageSource, refs: np.ndarray, size: int, device: torch.device, num_workers: int = 4):
        self.dataset = _DecodeDataset(source, refs, size)
        self.device, self.num_workers = device, num_workers
        self.failures: dict[int, str] = {}

    def batches(self, index_batches):
        batches = [np.asarray(b, np.int64).tolist() for b in index_batches]
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                                             pin_memory=self.device.type == "cuda",
                                             persistent_workers=False)
        for b, (imgs, ok, reasons) in zip(batches, loader):
            for pos, good, why in zip(b, ok.tolist(), reasons):
                if not good:
                    self.failures[pos] = why
            yield imgs.to(self.device, non_blocking=True)
