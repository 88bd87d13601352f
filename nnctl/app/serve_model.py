"""The model behind `nnctl serve`: a restored run whose prediction is compiled once at start for a few padded
batch sizes (1, 2, 4, ... max_batch), so no request compiles; request bodies turned into input arrays with
errors that name the field; predictions turned into JSON rows."""

from __future__ import annotations

import csv
import io
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np

from nnctl.app.export_graph import Graph, metadata, prediction_graph
from nnctl.app.restore import restore
from nnctl.data.csv_table import read_text
from nnctl.data.prepare import check_finite
from nnctl.data.sources.csv import CsvLayout, csv_features, raise_all
from nnctl.errors import DataError

MAX_ROWS = 4096  # examples per request


def bucket_sizes(max_batch: int) -> list[int]:
    """The padded batch sizes compiled at start: powers of two below max_batch, and max_batch."""
    sizes = [1 << i for i in range(max(0, max_batch - 1).bit_length()) if (1 << i) < max_batch]
    return sizes + [max_batch]


@dataclass
class Stats:
    """Requests served and their latencies (the last 10,000), for /healthz."""

    requests: int = 0
    examples: int = 0
    batches: int = 0
    errors: int = 0
    started: float = field(default_factory=time.time)
    latencies: deque = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, examples: int, seconds: float) -> None:
        with self.lock:
            self.requests += 1
            self.examples += examples
            self.latencies.append(seconds)

    def summary(self) -> dict:
        with self.lock:
            lat = sorted(self.latencies)
            up = time.time() - self.started
            out = {"requests": self.requests, "examples": self.examples, "batches": self.batches, "errors": self.errors}
        pct = (
            {f"p{q}_ms": round(1000 * lat[min(len(lat) - 1, int(q / 100 * len(lat)))], 3) for q in (50, 99)}
            if lat
            else {}
        )
        return {**out, **pct, "uptime_s": round(up, 1), "requests_per_s": round(out["requests"] / max(up, 1e-9), 2)}


class ServedModel:
    """A run ready to answer: its graph compiled for every bucket size, its input schema, its metadata."""

    def __init__(self, run_dir: str | Path, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise DataError(f"--max-batch {max_batch}: must be at least 1")
        r = restore(run_dir)
        self.graph: Graph = prediction_graph(r)
        self.data = r.built.data
        self.spec_data = r.loaded.spec.data
        self.max_batch = max_batch
        self.sizes = bucket_sizes(max_batch)
        jitted = jax.jit(self.graph.fn)
        shape = self.graph.input_shape
        self.compiled = {
            b: jitted.lower(jax.ShapeDtypeStruct((b, *shape), self.graph.dtype)).compile() for b in self.sizes
        }
        self.width = math.prod(shape)
        self.layout = self.data.layout or (
            CsvLayout(tuple(f"x{i}" for i in range(self.width)), {}) if len(shape) == 1 else None
        )
        raw = r.scalers[0].invert(self.data.x_train) if r.scalers[0].kind != "none" else self.data.x_train
        self.value_range = [float(np.nanmin(raw)), float(np.nanmax(raw))]
        self.meta = metadata(r, str(run_dir), "serve", self.graph)
        self.names = self.meta["class_names"]
        self.layers = [f"{x.name} ({x.type})" for x in getattr(r.loaded.spec.model, "layers", None) or []]
        self.stats = Stats()

    def kind(self) -> str:
        """tabular (rank-1 inputs, a form), image (H, W, C: a canvas) or array (anything else: JSON arrays)."""
        shape = self.graph.input_shape
        return (
            "tabular" if len(shape) == 1 and self.graph.dtype.kind == "f" else "image" if len(shape) == 3 else "array"
        )

    def schema(self) -> dict:
        lay = self.layout
        return {
            "kind": self.kind(),
            "shape": list(self.graph.input_shape),
            "dtype": str(self.graph.dtype),
            "features": list(lay.features) if lay else None,
            "categories": dict(lay.categories) if lay else {},
            "value_range": self.value_range,
        }

    def describe(self) -> dict:
        """/metadata: the run's name, task, classes, input schema, layers, compiled sizes, preprocessing."""
        m = self.meta
        return {
            "name": m["name"],
            "task": m["task"],
            "class_names": self.names,
            "input": self.schema(),
            "output": m["output"],
            "layers": self.layers,
            "batch_sizes": self.sizes,
            "preprocessing": m["preprocessing"],
            "versions": m["versions"],
        }

    def run(self, x: np.ndarray) -> np.ndarray:
        """Predictions for `x`, in chunks of max_batch, each padded to the smallest compiled size that holds it."""
        outs = []
        for i in range(0, len(x), self.max_batch):
            xb = x[i : i + self.max_batch]
            n = len(xb)
            b = next(s for s in self.sizes if s >= n)
            if n < b:
                xb = np.concatenate([xb, np.repeat(xb[-1:], b - n, axis=0)])
            outs.append(np.asarray(self.compiled[b](xb))[:n])
        with self.stats.lock:
            self.stats.batches += 1
        return np.concatenate(outs)

    def inputs(self, body: Any) -> np.ndarray:
        """A /predict body as the model's inputs: {"inputs": array} or an array (one example or a batch, each
        example in the input shape or flat), a {feature: value} object or a list of them."""
        if isinstance(body, dict) and set(body) == {"inputs"}:
            return self.from_arrays(body["inputs"], "inputs")
        if isinstance(body, dict):
            return self.from_rows([body], "")
        if isinstance(body, list) and body and all(isinstance(b, dict) for b in body):
            return self.from_rows(body, "")
        if isinstance(body, list):
            return self.from_arrays(body, "body")
        raise DataError('body: expected {"inputs": [...]}, an array, a {feature: value} object or a list of them')

    def from_arrays(self, value: Any, where: str) -> np.ndarray:
        try:
            a = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise DataError(
                f"{where}: expected numbers in nested lists of equal length (got {str(value)[:80]})"
            ) from None
        shape = self.graph.input_shape
        if a.size and a.size % self.width == 0 and a.shape in (shape, (self.width,)):
            a = a.reshape(1, *shape)
        elif a.ndim >= 1 and a.shape[1:] in (shape, (self.width,)):
            a = a.reshape(len(a), *shape)
        else:
            raise DataError(
                f"{where}: shape {list(a.shape)} does not fit the model's input {list(shape)} (one example as "
                f"{list(shape)} or {self.width} values, or a list of them)"
            )
        if len(a) == 0 or len(a) > MAX_ROWS:
            raise DataError(f"{where}: {len(a)} examples (1 to {MAX_ROWS} per request)")
        if self.graph.dtype.kind != "f" and np.any(a != np.round(a)):
            raise DataError(f"{where}: this model reads whole numbers (token ids)")
        check_finite(a, where)
        return a.astype(self.graph.dtype)

    def from_rows(self, rows: list[dict], where: str) -> np.ndarray:
        """Examples by feature name, encoded exactly as `predict` encodes a CSV (one-hot, missing values)."""
        if self.layout is None:
            raise DataError('this model\'s inputs have no feature names: send {"inputs": [...]} arrays')
        if len(rows) > MAX_ROWS:
            raise DataError(f"body: {len(rows)} examples (at most {MAX_ROWS} per request)")
        names = list(self.layout.features)
        for i, r in enumerate(rows):
            extra = [k for k in r if k not in names]
            if extra:
                raise DataError(f"example {i}: unknown field {extra[0]!r} (fields: {', '.join(names)})")
            absent = [k for k in names if k not in r]
            if absent:
                raise DataError(f"example {i}: missing field {absent[0]!r} (fields: {', '.join(names)})")
            for k, v in r.items():
                if isinstance(v, bool) or not isinstance(v, (int, float, str)) and v is not None:
                    raise DataError(f"example {i}: field {k!r}: expected a number or a category, got {v!r}")
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(names)
        out.writerows(["" if r[k] is None else str(r[k]) for k in names] for r in rows)
        opts = self.spec_data.model_copy(update={"delimiter": ",", "decimal": ".", "thousands": None})
        t = read_text(Path("request"), buf.getvalue(), opts, tuple(self.layout.categories))
        t = replace(t, lines=t.lines - 1, text_lines=t.text_lines[1:])  # rows: the examples, counted from 1
        missing = "mean" if self.data.imputer.fill is not None else "error"
        x, problems = csv_features(t, self.layout, opts, missing, "send every field")
        raise_all(Path("request"), problems)
        filled = self.data.imputer.apply(x)
        assert filled is not None  # x is not None
        check_finite(filled, "request")
        return filled.reshape(len(x), *self.graph.input_shape)

    def rows(self, out: np.ndarray) -> list[dict]:
        """One JSON object per example: class, index and probabilities; or the predicted values."""
        task, names = self.data.task, self.names
        if task == "classification" and out.ndim == 2:
            return [
                {
                    "class": names[int(p.argmax())] if names else int(p.argmax()),
                    "index": int(p.argmax()),
                    "probabilities": [round(float(v), 6) for v in p],
                }
                for p in out
            ]
        if task == "binary":
            flat = out.reshape(len(out), -1)
            labels = names or ["0", "1"]
            return [
                {"class": labels[int(p[0] > 0.5)], "index": int(p[0] > 0.5), "probability": float(p[0])} for p in flat
            ]
        return [{"value": out[i].tolist()} for i in range(len(out))]
