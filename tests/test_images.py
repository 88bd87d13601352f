"""`source: images`: class folders and CSV lists decoded with Pillow, sizing and colour conversion, the
on-disk cache, and the bad-input catalogue (each a clear error naming the file, or a counted skip)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

import nnctl.data.sources.images as images
from nnctl.app import evaluate_run, predict_run, train_run
from nnctl.data.peek import peek
from nnctl.data.sources import read
from nnctl.errors import DataError
from nnctl.spec.models import DataSpec
from tests.conftest import SPECS


def _png(path, value, size=(4, 6), mode="RGB"):
    """An image of height size[0], width size[1], every pixel `value`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (*size, 3) if mode == "RGB" else size
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def _folder(root, per_class=3):
    for c, v in (("cat", 10), ("dog", 200)):
        for k in range(per_class):
            _png(root / c / f"{k}.png", v + k)
    return root


def _spec(path, **kw):
    return DataSpec(source="images", path=str(path), **kw)


def test_class_folders_give_sorted_class_names_and_labels(tmp_path):
    _folder(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("ignored: not an image suffix")
    raw = read(_spec(tmp_path / "pets"), tmp_path, 0)
    assert raw.class_names == ["cat", "dog"] and raw.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert raw.x.shape == (6, 4, 6, 3) and raw.x.dtype == np.float32
    assert raw.x[0, 0, 0].tolist() == [10, 10, 10] and raw.x[5, 3, 5].tolist() == [202, 202, 202]
    assert peek(_spec(tmp_path / "pets"), tmp_path).x_shape == (4, 6, 3)


def test_csv_list_with_relative_paths(tmp_path):
    _png(tmp_path / "img" / "a.png", 1)
    _png(tmp_path / "img" / "b.png", 2)
    (tmp_path / "list.csv").write_text("file,kind\nimg/a.png,x\nimg/b.png,y\nimg/a.png,x\n")
    raw = read(_spec(tmp_path / "list.csv", x="file", target="kind"), tmp_path, 0)
    assert raw.class_names == ["x", "y"] and raw.y.tolist() == [0, 1, 0] and raw.x[1, 0, 0, 0] == 2


def test_grayscale_and_rgb_mixture_is_converted(tmp_path):
    _png(tmp_path / "d" / "a" / "0.png", 50, mode="L")
    _png(tmp_path / "d" / "b" / "0.png", 100, mode="RGB")
    assert read(_spec(tmp_path / "d"), tmp_path, 0).x.shape == (2, 4, 6, 3)
    gray = read(_spec(tmp_path / "d", color_mode="grayscale"), tmp_path, 0)
    assert gray.x.shape == (2, 4, 6, 1) and gray.x[:, 0, 0, 0].tolist() == [50, 100]


@pytest.mark.parametrize("resize", ["stretch", "crop", "pad"])
def test_image_size_and_resize_policies(tmp_path, resize):
    _png(tmp_path / "d" / "a" / "0.png", 100, size=(4, 8))  # wide: crop cuts the sides, pad adds rows
    _png(tmp_path / "d" / "b" / "0.png", 100, size=(6, 6))
    raw = read(_spec(tmp_path / "d", image_size=(6, 6), resize=resize), tmp_path, 0)
    assert raw.x.shape == (2, 6, 6, 3)
    top_row = raw.x[0, 0, :, 0]
    assert (top_row == 0).all() if resize == "pad" else (top_row == 100).all()
    assert peek(_spec(tmp_path / "d", image_size=(6, 6)), tmp_path).x_shape == (6, 6, 3)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda r: r.mkdir(), "no class folders (expected one sub-folder of images per class)"),
        (lambda r: _png(r / "0.png", 1), "it holds 1 image files directly: put each class in its own sub-folder"),
        (lambda r: (_folder(r), (r / "empty").mkdir()), "empty: class 'empty' has no image files"),
        (lambda r: (_folder(r), _png(r / "dog" / "big.png", 1, size=(5, 5))), "big.png: 5x5 pixels but"),
        (lambda r: (_folder(r), (r / "dog" / "bad.png").write_text("not a png")), "bad.png: not a readable image"),
    ],
)
def test_bad_folders_are_clear_errors_naming_the_file(tmp_path, make, fragment):
    make(tmp_path / "d")
    with pytest.raises(DataError) as e:
        read(_spec(tmp_path / "d"), tmp_path, 0)
    assert fragment in str(e.value)


def test_unreadable_files_can_be_skipped_and_counted(tmp_path):
    _folder(tmp_path / "d")
    (tmp_path / "d" / "cat" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    raw = read(_spec(tmp_path / "d", on_bad_file="skip"), tmp_path, 0)
    assert len(raw.x) == 6 and raw.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert raw.origin.endswith("(1 unreadable image files skipped)")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("path,label\n", "no rows"),
        ("file,label\nimg/a.png,x\n", "no column 'path' for data.x (the image-path column). Columns: file, label"),
        ("path,label\nimg/nope.png,x\n", "1 listed image file(s) do not exist, e.g."),
        ("path,label\nimg/a.png,\n", "row 2: empty label"),
    ],
)
def test_bad_csv_lists(tmp_path, text, fragment):
    _png(tmp_path / "img" / "a.png", 1)
    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(DataError) as e:
        read(_spec(tmp_path / "list.csv", x="path", target="label"), tmp_path, 0)
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        (
            dict(source="csv", path="t.csv", target="y", image_size=(8, 8)),
            "data.image_size applies to source images and hf only, not csv",
        ),
        (dict(source="images", path="d", resize="pad"), "data.resize needs data.image_size"),
        (dict(source="images", path="l.csv"), "images from a CSV list need x"),
        (dict(source="images"), "source images needs path"),
        (dict(source="images", path="d", target="label"), "data.x and data.target name the columns of a CSV list"),
        (dict(source="images", path="d", y="label"), "source images does not use data.y"),
        (dict(source="images", path="d", image_size=(0, 8)), "greater than 0"),
    ],
)
def test_spec_errors(fields, fragment):
    with pytest.raises(ValidationError, match=fragment):
        DataSpec(**fields)


def test_second_read_comes_from_the_cache_until_a_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCTL_DATA_CACHE_DIR", str(tmp_path / "cache"))
    _folder(tmp_path / "d")
    first = read(_spec(tmp_path / "d"), tmp_path, 0)
    decode_all = images.decode_all

    def refuse(*a):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images, "decode_all", refuse)
    again = read(_spec(tmp_path / "d"), tmp_path, 0)
    np.testing.assert_array_equal(again.x, first.x)
    np.testing.assert_array_equal(again.y, first.y)
    assert again.class_names == first.class_names
    with pytest.raises(AssertionError, match="decoded again"):  # other options: another key
        read(_spec(tmp_path / "d", color_mode="grayscale"), tmp_path, 0)
    _png(tmp_path / "d" / "dog" / "0.png", 99)
    os.utime(tmp_path / "d" / "dog" / "0.png", ns=(1, 1))
    with pytest.raises(AssertionError, match="decoded again"):  # a changed file: another key
        read(_spec(tmp_path / "d"), tmp_path, 0)
    monkeypatch.setattr(images, "decode_all", decode_all)
    assert read(_spec(tmp_path / "d"), tmp_path, 0).x[3, 0, 0, 0] == 99
    assert not list((tmp_path / "cache").glob("*.part"))  # entries are renamed into place whole


SPEC = """
seed: 0
data: {{source: images, path: {path}, image_size: [6, 6], color_mode: grayscale, normalize: global_minmax,
        validation_split: 0.25, test_split: 0.25}}
model:
  layers:
    - {{type: flatten}}
    - {{type: dense, units: 2, activation: softmax}}
train: {{loss: categorical_crossentropy, metrics: [accuracy], optimizer: {{type: adam, learning_rate: 0.1}},
         batch_size: 8, epochs: 15}}
"""


def test_a_generated_folder_trains_evaluates_and_predicts(tmp_path):
    _folder(tmp_path / "pets", per_class=8)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(path="pets"))
    res = train_run(str(spec), out=str(tmp_path / "r"))
    ev = evaluate_run(res.run_dir, "test")
    assert ev["metrics"]["accuracy"] == 1.0 and math.isfinite(ev["metrics"]["loss"])
    _png(tmp_path / "new.png", 205, size=(9, 9), mode="L")  # a new dog, another size: decoded as in training
    assert predict_run(res.run_dir, str(tmp_path / "new.png"))["classes"] == [1]
    _png(tmp_path / "inbox" / "b, c.png", 12, mode="L")  # a folder, sub-folders included, names sorted
    _png(tmp_path / "inbox" / "sub" / "a.jpg", 199)
    out = predict_run(res.run_dir, str(tmp_path / "inbox"), str(tmp_path / "p.csv"))
    assert out["names"] == ["b, c.png", "sub/a.jpg"] and out["classes"] == [0, 1]
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "file,class,p_cat,p_dog" and lines[1].startswith('"b, c.png",cat,')
    assert lines[2].startswith("sub/a.jpg,dog,")
    predict_run(res.run_dir, str(tmp_path / "inbox"), str(tmp_path / "p.npz"))
    with np.load(tmp_path / "p.npz") as z:  # no pickle needed
        assert z["names"].tolist() == ["b, c.png", "sub/a.jpg"] and z["classes"].tolist() == [0, 1]
    (tmp_path / "inbox" / "bad.png").write_text("no image")
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        predict_run(res.run_dir, str(tmp_path / "inbox"))


@pytest.mark.slow
def test_example_spec_trains(tmp_path):
    res = train_run(str(SPECS / "images_folder.yaml"), out=str(tmp_path / "r"))
    assert evaluate_run(res.run_dir, "test")["metrics"]["accuracy"] >= 0.9
