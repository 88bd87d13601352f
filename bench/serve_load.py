"""Bounded load test of `nnctl serve` on this machine: `python -m bench.serve_load [--requests N]`.

Trains short iris and digits-CNN runs (serving speed does not depend on how long a model trained), starts
`nnctl serve` on each in a subprocess bound to 127.0.0.1, sends a fixed number of POST /predict requests from
a few client threads (single examples, then batches of 32 examples per request), and prints requests/s,
examples/s, p50/p99 latency, errors, the requests answered and counted by the server (none lost) and the
server's resident memory before and after, and (in this process, without HTTP) the time to turn one
request's JSON into an input array and to run the compiled model on it, as a markdown
section for bench/RESULTS.md (and one JSON line per case).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from nnctl.app import restore, train_run
from nnctl.app.serve_model import ServedModel

SPECS = Path(__file__).resolve().parents[1] / "specs"
RUNS = [("iris", "iris.yaml", ("train.epochs=20",)), ("digits-CNN", "digits_cnn.yaml", ("train.epochs=2",))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(run_dir: str, port: int, max_batch: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nnctl", "serve", run_dir, "--port", str(port), "--max-batch", str(max_batch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"nnctl serve {run_dir} did not start")


def load(url: str, bodies: list[dict], threads: int) -> dict:
    """POST every body once from `threads` clients; latency per request, errors counted."""

    def one(client: httpx.Client, body: dict) -> tuple[float, bool]:
        t0 = time.perf_counter()
        try:
            r = client.post(url, json=body, timeout=60)
            ok = r.status_code == 200 and len(r.json()["predictions"]) == len(body["inputs"])
        except httpx.HTTPError:
            ok = False
        return time.perf_counter() - t0, ok

    with httpx.Client() as client, ThreadPoolExecutor(threads) as pool:
        for b in bodies[: threads * 2]:  # warm-up: connections, first requests
            one(client, b)
        t0 = time.perf_counter()
        results = list(pool.map(lambda b: one(client, b), bodies))
        wall = time.perf_counter() - t0
    lat = np.array([r[0] for r in results]) * 1000
    examples = sum(len(b["inputs"]) for b in bodies)
    return {
        "requests": len(bodies),
        "answered": int(sum(r[1] for r in results)),
        "errors": int(sum(not r[1] for r in results)),
        "requests_per_s": len(bodies) / wall,
        "examples_per_s": examples / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def in_process_ms(run_dir: str, body: dict, max_batch: int, repeat: int = 50) -> tuple[float, float]:
    """Milliseconds per request, without HTTP: JSON text -> input array (what /predict does first), and the
    compiled model on that array."""
    model = ServedModel(run_dir, max_batch)
    text = json.dumps(body)
    x = model.inputs(json.loads(text))
    model.run(x)
    t0 = time.perf_counter()
    for _ in range(repeat):
        model.inputs(json.loads(text))
    t1 = time.perf_counter()
    for _ in range(repeat):
        model.run(x)
    return (t1 - t0) / repeat * 1000, (time.perf_counter() - t1) / repeat * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per case (fixed count)")
    ap.add_argument("--threads", type=int, default=8, help="concurrent client threads")
    ap.add_argument("--batch", type=int, default=32, help="examples per request in the batched case")
    ap.add_argument("--max-batch", type=int, default=64, help="the server's --max-batch")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec, overrides in RUNS:
            run = train_run(str(SPECS / spec), os.path.join(tmp, name), overrides).run_dir
            r = restore(run)
            x = r.scalers[0].invert(r.built.data.x_test).astype(np.float32)
            rng = np.random.default_rng(0)
            port = free_port()
            proc = start_server(run, port, args.max_batch)
            try:
                url = f"http://127.0.0.1:{port}/predict"
                before = rss_mb(proc.pid)
                for case, n in (("single", 1), (f"batch of {args.batch}", args.batch)):
                    idx = rng.integers(0, len(x), (args.requests, n))
                    bodies = [{"inputs": x[i].tolist()} for i in idx]
                    seen = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["requests"]
                    res = load(url, bodies, args.threads)
                    res["server_counted"] = httpx.get(f"http://127.0.0.1:{port}/healthz").json()["requests"] - seen
                    res.update(run=name, case=case, rss_before_mb=before, rss_after_mb=rss_mb(proc.pid))
                    res["parse_ms"], res["model_ms"] = in_process_ms(run, bodies[0], args.max_batch)
                    print(json.dumps(res), flush=True)
                    rows.append(res)
            finally:
                proc.terminate()
                proc.wait(30)
    print(
        f"\n## Serving: `nnctl serve` under a bounded load ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
        f"`python -m bench.serve_load --requests {args.requests} --threads {args.threads}` on this machine "
        f"({os.cpu_count()} CPUs, {platform.machine()}, shared): server on 127.0.0.1, --max-batch {args.max_batch}, "
        f"{args.threads} client threads in the same machine, {args.requests} POST /predict per case.\n"
    )
    print(
        "| run | request | requests/s | examples/s | p50 ms | p99 ms | errors | answered / counted by server "
        "| server RSS MB (before -> after) | parse / model ms per request |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['case']} | {r['requests_per_s']:.0f} | {r['examples_per_s']:.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['errors']} | {r['answered']} / {r['server_counted'] - 2 * args.threads} "
            f"| {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} | {r['parse_ms']:.2f} / {r['model_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
