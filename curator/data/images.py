"""Image accessors: one interface over in-memory arrays, encoded bytes and files on disk.

Every adapter returns an `ImageSource`; a manifest row points into it with its integer
`image_ref`. Training, embedding and the explorer read pixels only through this interface, so
none of them knows where the data came from. `read(ref)` always returns an RGB ``uint8`` array of
shape (H, W, 3); unsupported modes are converted (see `decode_image_bytes`) and anything that
cannot be decoded raises `ImageError` with the reason.
"""
from __future__ import annotations

import io
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageError(Exception):
    """An image cannot be decoded; the message says why."""

    def __init__(self, reason: str, kind: str = "unreadable_image"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


ORIENTATION_TAG = 0x0112   # EXIF Orientation: 1 = as stored; 2..8 = mirrored and/or rotated


def to_rgb_uint8(img: Image.Image) -> tuple[np.ndarray, str | None]:
    """Convert a PIL image of any common mode to RGB uint8; return (array, conversion note or None)."""
    mode = img.mode
    note = None
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8), None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        arr = (arr / (65535.0 if hi > 255 else 255.0) * 255.0).clip(0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2), f"{mode} (16-bit) converted to 8-bit RGB"
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = ((arr - lo) / (hi - lo + 1e-12) * 255.0).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2), "float image rescaled to 8-bit RGB"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        note = f"{mode} with alpha composited on white"
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8), note
    if mode == "CMYK":
        note = "CMYK converted to RGB"
    elif mode in ("L", "1"):
        note = "grayscale converted to RGB"
    else:
        note = f"{mode} converted to RGB"
    return np.asarray(img.convert("RGB"), dtype=np.uint8), note


def decode_image_bytes(data: bytes | memoryview | np.ndarray) -> tuple[np.ndarray, str | None]:
    """Decode encoded image bytes (JPEG/PNG/...) to RGB uint8, fully (truncation is detected).

    An EXIF orientation (a phone photo stored sideways) is applied, as an image viewer shows the image, and
    noted ("EXIF orientation N applied"). Anything a crafted or broken file can make the decoder raise becomes an `ImageError` with a
    kind: ``empty_file``, ``unreadable_image``, ``truncated_image`` or ``decompression_bomb`` (a
    header declaring more pixels than PIL's ``Image.MAX_IMAGE_PIXELS``; refused before decoding).
    """
    raw = bytes(data)
    if len(raw) == 0:
        raise ImageError("zero-byte file", "empty_file")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            check_pixel_count(img.size)
            img.load()  # forces a full decode: truncated files raise here
            orientation = img.getexif().get(ORIENTATION_TAG, 1)
            if orientation not in (None, 1):   # shown as an image viewer shows it (EXIF orientation applied)
                img = ImageOps.exif_transpose(img)
            pixels, note = to_rgb_uint8(img)
            if orientation not in (None, 1):
                rotated = f"EXIF orientation {orientation} applied"
                note = f"{note}; {rotated}" if note else rotated
            return pixels, note
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format", "unreadable_image") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"refused to decode: {exc}", "decompression_bomb") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc)
        kind = "truncated_image" if "truncated" in msg.lower() else "unreadable_image"
        raise ImageError(f"cannot decode image: {msg}", kind) from None
    except Exception as exc:  # a hostile file can make a decoder raise anything; it is one bad sample
        raise ImageError(f"cannot decode image: {type(exc).__name__}: {exc}", "unreadable_image") from None


def check_pixel_count(size: tuple[int, int]) -> None:
    """Refuse an image whose header declares more pixels than PIL's decompression-bomb limit."""
    limit = Image.MAX_IMAGE_PIXELS
    w, h = size
    if limit and w * h > limit:
        raise ImageError(f"the header declares {w} x {h} = {w * h:,} pixels, more than the decompression-bomb "
                         f"limit of {int(limit):,} (PIL.Image.MAX_IMAGE_PIXELS); refused without decoding",
                         "decompression_bomb")


class ImageSource(ABC):
    """Random access to RGB uint8 images by integer reference."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, ref: int) -> np.ndarray:
        """Image `ref` as (H, W, 3) uint8 RGB; raises `ImageError` if it cannot be decoded."""

    def describe(self, ref: int) -> str:
        """Where image `ref` comes from, for messages."""
        return f"image #{ref}"

    def read_many(self, refs: Sequence[int]) -> list[np.ndarray]:
        return [self.read(int(r)) for r in refs]

    def read_batch(self, refs: Sequence[int], size: int | None = None) -> np.ndarray:
        """Stack images into (N, S, S, 3) uint8, resizing to `size` (default: the first image's size)."""
        images = self.read_many(refs)
        if not images:
            s = size or 0
            return np.zeros((0, s, s, 3), np.uint8)
        if size is None and all(im.shape == images[0].shape for im in images):
            return np.stack(images)
        side = size or images[0].shape[0]
        return np.stack([resize_uint8(im, side) for im in images])


def resize_uint8(img: np.ndarray, side: int) -> np.ndarray:
    if img.shape[0] == side and img.shape[1] == side:
        return img
    return np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR), dtype=np.uint8)


class ArrayImages(ImageSource):
    """Images already decoded in memory: (N, H, W, 3) or (N, H, W) uint8."""

    def __init__(self, array: np.ndarray, name: str = "array"):
        if array.dtype != np.uint8:
            raise TypeError(f"ArrayImages needs uint8 pixels, got {array.dtype}")
        if array.ndim == 3:
            array = np.repeat(array[..., None], 3, axis=3)
        if array.ndim != 4 or array.shape[3] != 3:
            raise ValueError(f"ArrayImages needs (N, H, W, 3) or (N, H, W), got {array.shape}")
        self.array = array
        self.name = name

    def __len__(self) -> int:
        return len(self.array)

    def read(self, ref: int) -> np.ndarray:
        return self.array[ref]

    def read_batch(self, refs: Sequence[int], size: int | None = None) -> np.ndarray:
        out = self.array[np.asarray(refs, dtype=np.int64)]
        if size is not None and out.shape[1] != size:
            out = np.stack([resize_uint8(im, size) for im in out])
        return out

    def describe(self, ref: int) -> str:
        return f"{self.name}[{ref}]"


class EncodedImages(ImageSource):
    """Encoded images (JPEG/PNG bytes) concatenated in one buffer, image i = buffer[offsets[i]:offsets[i+1]]."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray, name: str = "encoded"):
        self.buffer = buffer
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.name = name

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def raw(self, ref: int) -> bytes:
        return self.buffer[self.offsets[ref]:self.offsets[ref + 1]].tobytes()

    def read(self, ref: int) -> np.ndarray:
        return decode_image_bytes(self.raw(ref))[0]

    def describe(self, ref: int) -> str:
        return f"{self.name}[{ref}]"


def safe_join(root: Path, relative: str) -> Path:
    """Join `relative` under `root`, refusing absolute paths and anything that escapes `root`."""
    if not relative or os.path.isabs(relative) or relative.startswith(("~",)):
        raise ImageError(f"path {relative!r} is absolute or empty; paths must be relative to the root", "path_escapes_root")
    root_resolved = root.resolve()
    candidate = (root_resolved / relative).resolve()
    try:
        candidate.relative_to(root_resolved)
    except ValueError:
        raise ImageError(f"path {relative!r} escapes the dataset root {str(root)!r}", "path_escapes_root") from None
    return candidate


class FileImages(ImageSource):
    """Image files under a root directory, addressed by relative path (checked not to escape the root)."""

    def __init__(self, root: str | os.PathLike, relpaths: Sequence[str]):
        self.root = Path(root)
        self.relpaths = list(relpaths)

    def __len__(self) -> int:
        return len(self.relpaths)

    def path(self, ref: int) -> Path:
        return safe_join(self.root, self.relpaths[ref])

    def read_with_note(self, ref: int) -> tuple[np.ndarray, str | None]:
        path = self.path(ref)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"file not found: {path}", "missing_file") from None
        except OSError as exc:
            raise ImageError(f"cannot read file {path}: {exc}", "unreadable_image") from None
        return decode_image_bytes(data)

    def read(self, ref: int) -> np.ndarray:
        return self.read_with_note(ref)[0]

    def describe(self, ref: int) -> str:
        return str(self.root / self.relpaths[ref])
