"""Feature and target scaling and missing-value filling, fitted on the training split and saved with a run."""

from __future__ import annotations

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
