"""Small image folders for the tests that need real files (written under a tmp dir)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def folder_with_a_broken_image(root: Path, *, cmyk: bool = False) -> Path:
    """root/<a|b>/<i>.png, 6 random 12 x 12 images per class, plus root/a/broken.jpg that no decoder reads (an image
    check leaves it out as unreadable) and, with `cmyk`, root/b/cmyk.jpg (converted, kept)."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    if cmyk:
        Image.new("CMYK", (12, 12)).save(root / "b" / "cmyk.jpg")
    return root
