"""Write the tiny example image folder specs/data/shapes/ (run once; the files are committed, ~100 KB).

    python scripts/make_example_images.py

Three classes of striped squares, one sub-folder each (horizontal/, vertical/, diagonal/): random stripe
period, phase, colours and noise; most images are 16x16 RGB, every fifth is 20x20 and every seventh is
grayscale, so the example spec shows `image_size` and `color_mode` converting a mixed folder. Seeded: a
rerun writes identical pixels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("horizontal", "vertical", "diagonal")


def stripes(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    """One (size, size, 3) uint8 image of class `cls`."""
    i, j = np.mgrid[0:size, 0:size].astype(np.float64)
    coord = (i, j, i + j)[cls]
    period = rng.uniform(3.0, 6.0) * size / 16
    wave = np.sin(2 * np.pi * coord / period + rng.uniform(0, 2 * np.pi)) > 0
    fg, bg = rng.uniform(120, 255, 3), rng.uniform(0, 110, 3)
    img = np.where(wave[..., None], fg, bg) + rng.normal(0, 20, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_shapes(root: Path, per_class: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            img = Image.fromarray(stripes(rng, c, 20 if k % 5 == 0 else 16))
            if k % 7 == 0:
                img = img.convert("L")
            img.save(root / name / f"{name}_{k:03d}.png", optimize=True)


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "specs/data/shapes"
    write_shapes(out)
    print(f"wrote {out}")
