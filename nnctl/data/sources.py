"""Reading raw examples from each source kind. Every problem names the file, row/column or array."""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.data.peek import resolve
from nnctl.errors import DataError, did_you_mean


@dataclass
class Raw:
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    origin: str = ""
    task: str | None = None  # known task (built-in regression sets), else inferred


def csv_header(p: Path) -> list[str]:
    with open(p, newline="", encoding="utf-8") as f:
        try:
            header = next(csv.reader(f))
        except StopIteration:
            raise DataError(f"{p}: the file is empty (expected a header row)") from None
        except UnicodeDecodeError as e:
            raise _not_utf8(p, e) from None
    return [h.strip() for h in header]


def _not_utf8(p: Path, e: UnicodeDecodeError) -> DataError:
    return DataError(f"{p}: not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} at offset {e.start}): "
                     f"save the CSV as UTF-8")


def _read_csv(data, p: Path) -> Raw:
    header = csv_header(p)
    targets = [data.target] if isinstance(data.target, str) else list(data.target)
    for t in targets:
        if t not in header:
            raise DataError(f"{p}: no column '{t}'.{did_you_mean(t, header)} Columns: {', '.join(header)}")
    feats = data.features if data.features is not None else [c for c in header if c not in targets]
    for c in feats:
        if c not in header:
            raise DataError(f"{p}: no feature column '{c}'.{did_you_mean(c, header)} Columns: {', '.join(header)}")
    if not feats:
        raise DataError(f"{p}: no feature columns left besides the target")
    fi = [header.index(c) for c in feats]
    ti = [header.index(c) for c in targets]
    rows = []
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        try:
            for r in reader:
                if not r or all(not c.strip() for c in r):
                    continue
                if len(r) != len(header):
                    raise DataError(f"{p}: row {reader.line_num} has {len(r)} fields, the header has {len(header)}")
                rows.append((reader.line_num, r))
        except UnicodeDecodeError as e:
            raise _not_utf8(p, e) from None
    if not rows:
        raise DataError(f"{p}: no data rows after the header")
    x = np.empty((len(rows), len(fi)), np.float32)
    for i, (line, r) in enumerate(rows):
        for j, k in enumerate(fi):
            try:
                x[i, j] = float(r[k])
            except ValueError:
                raise DataError(f"{p}: row {line}, column '{header[k]}': {r[k]!r} is not a number") from None
    raw_y = [[r[k].strip() for k in ti] for _, r in rows]
    class_names = None
    try:
        y = np.array([[float(v) for v in row] for row in raw_y], np.float64)
    except ValueError:
        if len(ti) != 1:
            raise DataError(f"{p}: target columns {targets} must be numeric (text labels need a single target)") from None
        class_names = sorted({row[0] for row in raw_y})
        index = {c: i for i, c in enumerate(class_names)}
        y = np.array([index[row[0]] for row in raw_y], np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    return Raw(x, y, class_names=class_names, origin=str(p))


def _read_npz(data, p: Path) -> Raw:
    try:
        z = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{p}: not a readable npz file ({e})") from None
    with z:
        def get(name, what):
            if name not in z.files:
                raise DataError(f"{p}: no array '{name}' for {what}.{did_you_mean(name, z.files)} "
                                f"Arrays: {', '.join(z.files)}")
            try:
                return np.asarray(z[name])
            except ValueError as e:
                raise DataError(f"{p}: array '{name}' cannot be read without pickle ({e})") from None
        x, y = get(data.x, "x"), get(data.y, "y")
        xt = yt = None
        if data.test:
            bad = set(data.test) - {"x", "y"}
            if bad or len(data.test) != 2:
                raise DataError(f"{p}: data.test must be {{x: name, y: name}}, got {data.test}")
            xt, yt = get(data.test["x"], "test x"), get(data.test["y"], "test y")
    for name, a in (("x", x), ("y", y)):
        if a.dtype.kind not in "biuf":
            raise DataError(f"{p}: array '{getattr(data, name)}' has dtype {a.dtype}; expected numbers")
    return Raw(x.astype(np.float32), y, xt if xt is None else xt.astype(np.float32), yt, origin=str(p))


def read(data, base_dir: Path, seed: int) -> Raw:
    src = data.source
    if src.startswith("builtin:"):
        from nnctl.data.builtin import BUILTINS
        b = BUILTINS[src.split(":", 1)[1]]
        x, y = b.load(seed, data.n_samples, data.noise)
        return Raw(np.asarray(x, np.float32), np.asarray(y), origin=src,
                   task="regression" if b.num_classes is None else None)
    if src == "inline":
        try:
            x = np.asarray(data.x, dtype=np.float32)
            y = np.asarray(data.y, dtype=np.float64)
        except (ValueError, TypeError):
            raise DataError("inline data: x and y must be numbers in rows of equal length") from None
        if x.ndim == 1:
            x = x[:, None]
        return Raw(x, y, origin="inline")
    p = resolve(data.path, base_dir)
    if not p.exists():
        raise DataError(f"no such file: {p} (data.path is relative to the spec file or the working directory)")
    return _read_csv(data, p) if src == "csv" else _read_npz(data, p)
