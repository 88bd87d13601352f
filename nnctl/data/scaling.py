"""Feature and target scaling and missing-value filling, fitted on the training split and saved with a run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass
class Scaler:
    """x' = (x - shift) / scale, per feature (one shift and scale for all features: global_*)."""

    kind: str
    shift: np.ndarray
    scale: np.ndarray

    @staticmethod
    def fit(kind: str, x: np.ndarray) -> Scaler:
        flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(len(x), 1)
        if kind == "standard":
            shift, scale = flat.mean(0), flat.std(0)
        elif kind == "minmax":
            shift, scale = flat.min(0), flat.max(0) - flat.min(0)
        elif kind == "global_standard":
            shift, scale = np.full(1, flat.mean(dtype=np.float64)), np.full(1, flat.std(dtype=np.float64))
        elif kind == "global_minmax":
            shift, scale = np.full(1, flat.min()), np.full(1, flat.max() - flat.min())
        else:
            shift, scale = np.zeros(flat.shape[1]), np.ones(flat.shape[1])
        scale = np.where(scale > 0, scale, 1.0)
        return Scaler(kind, shift.astype(np.float32), scale.astype(np.float32))

    @staticmethod
    def fit_blocks(kind: str, blocks: Iterable[np.ndarray]) -> Scaler:
        """`fit` in one pass over blocks of rows (data read from disk): min/max exactly, mean and standard
        deviation in float64 merged block by block (Chan et al.), equal to `fit`'s within float rounding."""
        n, mean, m2, lo, hi = 0, 0.0, 0.0, None, None
        for b in blocks:
            flat = b.reshape(len(b), -1).astype(np.float64)
            if kind.startswith("global_"):
                flat = flat.reshape(-1, 1)
            k, bm = len(flat), flat.mean(0)
            d = bm - mean
            mean = mean + d * k / (n + k)
            m2 = m2 + ((flat - bm) ** 2).sum(0) + d**2 * n * k / (n + k)
            lo = flat.min(0) if lo is None else np.minimum(lo, flat.min(0))
            hi = flat.max(0) if hi is None else np.maximum(hi, flat.max(0))
            n += k
        assert lo is not None and hi is not None, "fit_blocks needs at least one block"
        shift, scale = {"standard": (mean, np.sqrt(m2 / n)), "minmax": (lo, hi - lo)}.get(
            kind.removeprefix("global_"), (np.zeros_like(lo), np.ones_like(lo))
        )
        shift, scale = np.atleast_1d(shift), np.atleast_1d(scale)
        scale = np.where(scale > 0, scale, 1.0)
        return Scaler(kind, shift.astype(np.float32), scale.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "none" or x is None:
            return x
        flat = x.reshape(len(x), -1)
        return ((flat - self.shift) / self.scale).astype(np.float32).reshape(x.shape)

    def invert(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return x
        flat = x.reshape(len(x), -1)
        return (flat * self.scale + self.shift).astype(np.float32).reshape(x.shape)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": self.shift, "scale": self.scale}

    @staticmethod
    def from_dict(d: dict) -> Scaler:
        return Scaler(str(d["kind"]), np.asarray(d["shift"], np.float32), np.asarray(d["scale"], np.float32))


@dataclass
class Imputer:
    """Missing feature values (NaN) filled with the training split's column means (`data.missing: mean`)."""

    fill: np.ndarray | None  # per feature; None: nothing to fill

    @staticmethod
    def fit(missing: str, x: np.ndarray) -> Imputer:
        if missing != "mean":
            return Imputer(None)
        flat = x.reshape(len(x), -1)
        bad = np.isnan(flat)
        counts = (~bad).sum(0)
        sums = np.where(bad, 0.0, flat).sum(0, dtype=np.float64)
        return Imputer(np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32))

    def apply(self, x: np.ndarray | None) -> np.ndarray | None:
        if self.fill is None or x is None:
            return x
        flat = x.reshape(len(x), -1)
        return np.where(np.isnan(flat), self.fill, flat).astype(np.float32).reshape(x.shape)

    def to_dict(self) -> dict | None:
        return None if self.fill is None else {"fill": self.fill}

    @staticmethod
    def from_dict(d: dict | None) -> Imputer:
        return Imputer(None if not d else np.asarray(d["fill"], np.float32))
