"""`images`: image files decoded with Pillow, from a folder with one sub-folder per class (the sub-folder names,
sorted, are the class names), or from a CSV file with an image-path column (`data.x`) and a label column
(`data.target`), paths relative to the CSV file.

Every image becomes float32 (height, width, channels) with values 0..255 (`normalize: global_minmax` scales to
[0, 1]). `color_mode` converts every file to rgb (3 channels, the default) or grayscale (1), so mixtures are
fine. Without `image_size` every image must have the same size; with it, `resize` says how: stretch, crop the
centre to the aspect ratio, or pad (letterbox). Files with other suffixes and hidden files are ignored; a file
with an image suffix that does not decode is an error naming it, or (`on_bad_file: skip`) skipped and counted
in the data line of the banner. Decoded arrays are cached on disk (see nnctl.data.cache), keyed
by the file list, sizes and modification times and the decoding options, so a second run decodes nothing.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from nnctl.data.cache import cache_key, load_cached, store_cached
from nnctl.data.sources.base import (
    IMAGE_KEYS,
    DataInfo,
    DataSource,
    Raw,
    data_source,
    existing_file,
    reject_unused,
)
from nnctl.errors import DataError, did_you_mean

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".") and _is_image(f))


def _is_image(f: Path) -> bool:
    return f.suffix.lower() in SUFFIXES


def folder_listing(root: Path) -> tuple[list[Path], list[str], list[str]]:
    """(files, their labels, class names) of a folder with one sub-folder per class."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        loose = [f.name for f in root.iterdir() if f.is_file() and _is_image(f)]
        hint = f" (it holds {len(loose)} image files directly: put each class in its own sub-folder)" if loose else ""
        raise DataError(f"{root}: no class folders (expected one sub-folder of images per class){hint}")
    files, labels = [], []
    for c in classes:
        found = _image_files(root / c)
        if not found:
            raise DataError(f"{root / c}: class '{c}' has no image files ({', '.join(SUFFIXES)})")
        files += found
        labels += [c] * len(found)
    return files, labels, classes


def csv_listing(p: Path, path_col: str, label_col: str, delimiter: str | None) -> tuple[list[Path], list[str]]:
    """(files, labels) of a CSV file listing image paths (relative to the CSV's folder) and labels."""
    with open(p, newline="", encoding="utf-8") as text:
        reader = csv.DictReader(text, delimiter=delimiter or ",")
        header = [h.strip() for h in reader.fieldnames or []]
        for col, what in ((path_col, "x (the image-path column)"), (label_col, "target (the label column)")):
            if col not in header:
                raise DataError(
                    f"{p}: no column '{col}' for data.{what}.{did_you_mean(col, header)} Columns: {', '.join(header)}"
                )
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows:
        raise DataError(f"{p}: no rows (expected a header and one row per image)")
    files, labels = [], []
    for i, row in enumerate(rows, start=2):
        if not row[path_col] or not row[label_col]:
            raise DataError(f"{p}, row {i}: empty {path_col if not row[path_col] else label_col}")
        f = Path(row[path_col]).expanduser()
        files.append(f if f.is_absolute() else p.parent / f)
        labels.append(row[label_col])
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{p}: {len(missing)} listed image file(s) do not exist, e.g. {missing[0]}")
    return files, labels


def input_files(p: Path) -> list[Path]:
    """`p` (an image file), or the image files under the folder `p`, sub-folders included, sorted."""
    if not p.is_dir():
        return [p]
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file() and _is_image(f) and not any(s.startswith(".") for s in f.relative_to(p).parts)
    )
    if not files:
        raise DataError(f"{p}: no image files ({', '.join(SUFFIXES)})")
    return files


def listing(data, base_dir: Path) -> tuple[Path, list[Path], list[str], list[str]]:
    """(root, files, labels, class names) that `data` names."""
    root = existing_file(data, base_dir, "image folder or CSV")
    if root.is_dir():
        files, labels, classes = folder_listing(root)
    else:
        files, labels = csv_listing(root, data.x, data.target, data.delimiter)
        classes = sorted(set(labels))
    return root, files, labels, classes


def channels(data) -> int:
    return 1 if data.color_mode == "grayscale" else 3


def decode(f: Path, data) -> np.ndarray:
    """One image file as uint8 (height, width, channels): converted, then sized as `data` says."""
    from PIL import Image  # lazy: only image sources need Pillow

    with Image.open(f) as opened:
        return fit_image(opened, data)


def fit_image(im, data) -> np.ndarray:
    """A Pillow image as uint8 (height, width, channels) in `data.color_mode`, sized to `data.image_size`."""
    from PIL import Image, ImageOps  # lazy: only image sources need Pillow

    im = im.convert("L" if data.color_mode == "grayscale" else "RGB")  # decodes; palettes/alpha/16-bit
    if data.image_size is not None and im.size != (data.image_size[1], data.image_size[0]):
        size = (data.image_size[1], data.image_size[0])  # Pillow sizes are (width, height)
        if data.resize == "crop":
            im = ImageOps.fit(im, size, Image.Resampling.BILINEAR)
        elif data.resize == "pad":
            im = ImageOps.pad(im, size, Image.Resampling.BILINEAR, color=0)
        else:
            im = im.resize(size, Image.Resampling.BILINEAR)
    a = np.asarray(im, np.uint8)
    return a.reshape(*a.shape[:2], -1)


def same_size(a: np.ndarray, first: np.ndarray, what: str, first_what: str) -> None:
    """DataError when image `a` differs in size from the first one (without data.image_size)."""
    if a.shape != first.shape:
        raise DataError(
            f"{what}: {a.shape[1]}x{a.shape[0]} pixels but {first_what} is {first.shape[1]}x{first.shape[0]}: "
            "set data.image_size: [height, width] to resize every image"
        )


def decode_all(files: list[Path], data) -> tuple[np.ndarray, list[int], list[str]]:
    """(images, the indices of the files kept, the names of the files skipped); mixed sizes without
    image_size, and unreadable files unless on_bad_file is skip, are errors naming the file."""
    from PIL import Image  # lazy: only image sources need Pillow

    images: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    for i, f in enumerate(files):
        try:
            a = decode(f, data)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # what Pillow raises
            if data.on_bad_file == "skip":
                skipped.append(str(f))
                continue
            raise DataError(
                f"{f}: not a readable image ({type(e).__name__}: {e}); fix or remove it, or set data.on_bad_file: skip"
            ) from None
        if images:
            same_size(a, images[0], str(f), str(files[kept[0]]))
        images.append(a)
        kept.append(i)
    if not images:
        raise DataError(f"no readable images among {len(files)} files ({len(skipped)} skipped)")
    return np.stack(images), kept, skipped


def read_images(data, base_dir: Path) -> Raw:
    root, files, labels, classes = listing(data, base_dir)
    key = cache_key(files, labels, (data.image_size, data.color_mode, data.resize, data.on_bad_file))
    hit = load_cached(key)
    if hit is not None:
        x, y, skipped = hit
    else:
        x, kept, skipped_files = decode_all(files, data)
        index = {c: k for k, c in enumerate(classes)}
        y = np.array([index[labels[i]] for i in kept], np.int32)
        skipped = len(skipped_files)
        store_cached(key, x, y, skipped)
    origin = str(root) + (f" ({skipped} unreadable image files skipped)" if skipped else "")
    return Raw(x.astype(np.float32), y, class_names=classes, origin=origin)


@data_source("images")
class ImagesSource(DataSource):
    order = 4
    suffixes = SUFFIXES
    input_dirs = True
    own_keys = IMAGE_KEYS

    def check(self, data) -> None:
        if data.path is None:
            raise ValueError("source images needs path (a folder with one sub-folder per class, or a CSV file)")
        if data.categorical:
            raise ValueError("data.categorical applies to csv sources only")
        if data.resize is not None and data.image_size is None:
            raise ValueError("data.resize needs data.image_size: [height, width]")
        reject_unused(data, "images", "y", "features", "test")
        if not data.path.lower().endswith((".csv", ".tsv", ".txt")):
            if data.x is not None or data.target is not None:
                raise ValueError("data.x and data.target name the columns of a CSV list of images (path: *.csv)")
        elif not (isinstance(data.x, str) and isinstance(data.target, str)):
            raise ValueError("images from a CSV list need x (the image-path column) and target (the label column)")

    def peek(self, data, base_dir: Path) -> DataInfo:
        from PIL import Image  # lazy: only image sources need Pillow

        root, files, _, classes = listing(data, base_dir)
        if data.image_size is not None:
            return DataInfo((*data.image_size, channels(data)), len(classes))
        try:
            with Image.open(files[0]) as im:  # reads the header only
                w, h = im.size
        except OSError:
            return DataInfo(None, len(classes))  # read() names the file
        return DataInfo((h, w, channels(data)), len(classes))

    def read(self, data, base_dir: Path, seed: int) -> Raw:
        return read_images(data, base_dir)

    def read_inputs(self, p: Path, data, dataset) -> np.ndarray:
        """An image file, or every image file under a folder (sorted), decoded as in training (predict)."""
        x, _, _ = decode_all(input_files(p), data.model_copy(update={"on_bad_file": "error"}))  # one row per name
        return x.astype(np.float32)

    def input_names(self, p: Path, data) -> list[str] | None:
        files = input_files(p)
        return [str(f.relative_to(p)) for f in files] if p.is_dir() else [str(p)]
