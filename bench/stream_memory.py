"""The memory bound of training from disk (`data.source: shards`), measured.

Generates a classification data set (float32 rows, written to an .npz a block at a time, never whole in
memory), converts it with `nnctl data convert`, then trains the same model on it in fresh processes:

* disk: `data.source: shards`, streamed from disk (`train.data_placement: stream`);
* memory-stream: the .npz read into memory, the same windows streamed from host memory;
* memory-device: the .npz in memory, copied to the device (the fused path `auto` picks when it fits).

Each process's peak RSS comes from the kernel (its VmHWM), and the data-related part of it is
the peak minus that of the same disk run on a small data set (the interpreter, JAX, the compiled programs and
the windows in flight).
The memory limit is on that growth: LIMIT_MB, while the data set is several times larger. Throughput is
samples per CPU second of the training process (every thread) over the epochs after the first (which
compiles), and per wall second; runs are interleaved and each configuration repeated.

    python -m bench.stream_memory                     # ~1 GiB of data, 3 repeats (several minutes)
    python -m bench.stream_memory --rows 20000 --repeats 1 --no-write   # a quick look
    python -m bench.stream_memory --write             # also rewrite the section of bench/RESULTS.md
    python -m bench.stream_memory --report m.json --write   # the section again from measurements saved with --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

FEATURES, CLASSES = 512, 10
LIMIT_MB = 256  # allowed growth of the disk run's peak RSS over its small-data baseline
BASELINE_ROWS = 8192  # the baseline's data: 16 MiB, enough batches for two full windows
MARK = ("<!-- stream_memory:start -->", "<!-- stream_memory:end -->")
SPEC = """\
name: stream-memory
seed: 0
data: {{{data}, validation_split: 0.05, normalize: standard}}
model:
  layers:
    - {{type: dense, units: 64, activation: relu}}
    - {{type: dense, units: {classes}, activation: softmax}}
train:
  loss: categorical_crossentropy
  metrics: [accuracy]
  optimizer: {{type: adam, learning_rate: 0.001}}
  batch_size: 256
  epochs: {epochs}
  evaluate_test: false
  data_placement: {placement}
  stream: {{window: 16, prefetch: 2}}
"""


def write_npz(path: Path, rows: int, block: int = 16384) -> None:
    """x (rows, FEATURES) float32 and y = argmax(x @ W) written a block at a time."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        ys = []
        with zf.open("x.npy", "w", force_zip64=True) as f:
            npformat.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, FEATURES)})
            for i in range(0, rows, block):
                x = rng.normal(size=(min(block, rows - i), FEATURES)).astype(np.float32)
                ys.append(np.argmax(x @ w, 1).astype(np.int64))
                f.write(x.tobytes())
        with zf.open("y.npy", "w", force_zip64=True) as f:
            npformat.write_array(f, np.concatenate(ys))


def child(spec: str, out: str) -> None:
    """One training run; prints {samples_per_cpu_s, samples_per_s, epochs, n_train} as JSON."""
    from nnctl.app import train_run

    marks: list[tuple[float, float]] = []
    res = train_run(spec, out=out, on_epoch=lambda r: marks.append((time.perf_counter(), time.process_time())))
    n = res.summary["data_sizes"]["train"]
    (w0, c0), (w1, c1) = marks[0], marks[-1]
    k = len(marks) - 1
    doc = {"samples_per_cpu_s": n * k / (c1 - c0), "samples_per_s": n * k / (w1 - w0), "n_train": n}
    print(json.dumps({**doc, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory, from the kernel: VmHWM (Linux), else ru_maxrss. (A child's
    ru_maxrss seen by its parent also counts the parent's memory copied at fork, before exec.)"""
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        return int(status["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(spec: Path, out: Path) -> dict:
    """A fresh process training `spec`: its JSON line (with its peak RSS in MiB, from the kernel)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    p = subprocess.Popen(
        [sys.executable, "-m", "bench.stream_memory", "--child", str(spec), str(out)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert p.stdout is not None
    text = p.stdout.read()
    if p.wait():
        raise SystemExit(f"the run of {spec} failed ({p.returncode})")
    return json.loads(text.splitlines()[-1])


def run(rows: int, repeats: int, epochs: int, work: Path) -> dict:
    from nnctl.app.convert import convert_data

    npz, shards, tiny_npz, tiny = work / "d.npz", work / "d.shards", work / "t.npz", work / "t.shards"
    write_npz(npz, rows)
    write_npz(tiny_npz, BASELINE_ROWS)
    t0, c0 = time.perf_counter(), time.process_time()
    convert_data(npz, shards)
    convert = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    convert_data(tiny_npz, tiny)
    configs = {
        "baseline": ("source: shards, path: t.shards", "stream"),
        "disk": ("source: shards, path: d.shards", "stream"),
        "memory-stream": ("source: npz, path: d.npz, x: x, y: y", "stream"),
        "memory-device": ("source: npz, path: d.npz, x: x, y: y", "device"),
    }
    specs = {}
    for name, (data, placement) in configs.items():
        specs[name] = work / f"{name}.yaml"
        specs[name].write_text(SPEC.format(data=data, classes=CLASSES, epochs=epochs, placement=placement))
    results: dict[str, list] = {name: [] for name in configs}
    for r in range(repeats):  # interleaved
        for name in configs:
            results[name].append(measure(specs[name], work / f"run-{name}-{r}"))
            print(name, results[name][-1], file=sys.stderr)
    data_mb = (shards.stat().st_size + sum(f.stat().st_size for f in shards.iterdir())) / 2**20
    return {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": "python -m bench.stream_memory " + " ".join(sys.argv[1:]),
        "rows": rows,
        "features": FEATURES,
        "data_mb": data_mb,
        "epochs": epochs,
        "repeats": repeats,
        "convert": convert,
        "runs": results,
    }


def med(xs: list) -> float:
    return statistics.median(xs)


def report(res: dict) -> str:
    runs, base = res["runs"], med([r["peak_rss_mb"] for r in res["runs"]["baseline"]])
    rate = {k: med([r["samples_per_cpu_s"] for r in v]) for k, v in runs.items()}
    lines = [
        MARK[0],
        "## Training from disk: the memory bound",
        "",
        f"Command: `{res.get('command', 'python -m bench.stream_memory --write')}`",
        "",
        f"{res['measured']}: {res['rows']:,} rows x {res['features']} float32 "
        f"features = **{res['data_mb']:,.0f} MiB** of shards (`nnctl data convert` of the .npz: "
        f"{res['convert']['wall_s']:.1f} s wall, {res['convert']['cpu_s']:.1f} CPU-s); dense 64 relu -> 10 softmax, "
        f"batch 256, window 16, normalize standard, {res['epochs']} epochs, each run a fresh process, "
        f"{res['repeats']} interleaved repeat(s), medians (min-max). Memory limit: the peak RSS may grow at most "
        f"**{LIMIT_MB} MiB** over the same disk run on {BASELINE_ROWS:,} rows (baseline peak {base:,.0f} MiB: "
        "Python, JAX, the compiled programs, the windows in flight), while the data is "
        f"{res['data_mb'] / LIMIT_MB:.1f}x that limit.",
        "",
        "| run | peak RSS MiB | growth over baseline MiB | within limit | samples / CPU-s | samples / s (wall) "
        "| vs memory-stream (CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in ("disk", "memory-stream", "memory-device"):
        peaks = [r["peak_rss_mb"] for r in runs[k]]
        growth = med(peaks) - base
        cpu = [r["samples_per_cpu_s"] for r in runs[k]]
        wall = [r["samples_per_s"] for r in runs[k]]
        lines.append(
            f"| {k} | {med(peaks):,.0f} ({min(peaks):,.0f}-{max(peaks):,.0f}) | {growth:,.0f} | "
            f"{'yes' if growth <= LIMIT_MB else 'no'} | {med(cpu):,.0f} ({min(cpu):,.0f}-{max(cpu):,.0f}) | "
            f"{med(wall):,.0f} | {rate[k] / rate['memory-stream']:.2f}x |"
        )
    lines += [
        "",
        f"Target disk >= 0.8x memory-stream samples per CPU second: "
        f"{'met' if rate['disk'] >= 0.8 * rate['memory-stream'] else 'not met'} "
        f"({rate['disk'] / rate['memory-stream']:.2f}x: the disk run pays one read system call per row and scales each "
        "window as it reads it). "
        f"disk / memory-device (CPU): {rate['disk'] / rate['memory-device']:.2f}x. The disk run reads each row "
        "with one positioned read into the window buffer, so its peak RSS holds the windows in flight, not the "
        "data; the in-memory runs hold the data and its prepared copies (splits, scaling).",
        MARK[1],
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    p = Path(__file__).resolve().parent / "RESULTS.md"
    doc = p.read_text(encoding="utf-8")
    if MARK[0] in doc:
        doc = doc[: doc.index(MARK[0])] + text + doc[doc.index(MARK[1]) + len(MARK[1]) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    p.write_text(doc, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=524288, help="rows of the data set (default: 1 GiB)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="rewrite the section of bench/RESULTS.md")
    ap.add_argument("--no-write", dest="write", action="store_false")
    ap.add_argument("--json", type=Path, help="also save the raw measurements here")
    ap.add_argument("--report", type=Path, help="only write the report of measurements saved with --json")
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    if a.report:
        res = json.loads(a.report.read_text())
        res.setdefault("measured", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(a.report.stat().st_mtime)))
    else:
        with tempfile.TemporaryDirectory(prefix="nnctl-stream-memory-") as d:
            res = run(a.rows, a.repeats, a.epochs, Path(d))
    if a.json and not a.report:
        a.json.write_text(json.dumps(res, indent=1))
    text = report(res)
    print(text)
    if a.write:
        write_section(text)


if __name__ == "__main__":
    main()
