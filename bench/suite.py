"""The benchmark suite: `python -m bench [--quick] [--repeats N] [--only xor,mlp] [--skip-e2e]`.

Runs, in one session and interleaved (repeat 1 of every implementation, then repeat 2, ...):
* training throughput of nnctl, the hand-written JAX reference (`bench/ref_jax.py`) and PyTorch eager
  (`bench/ref_torch.py`, needs `pip install -e '.[bench]'`) on the workloads of `bench/workloads.py`, each
  measurement in a fresh process (peak host memory = that process's ru_maxrss);
* the machine's float32 matmul peak (jax and numpy, 2048^3), for achieved-GFLOP/s fractions;
* start-up: `nnctl --help`, `nnctl inspect params` on a 10M-parameter spec;
* end-to-end `nnctl train` wall time on specs/iris.yaml and specs/digits_mlp.yaml, with a cold and then a
  warm persistent compilation cache.
Writes bench/results.json and bench/RESULTS.md (medians, min-max over repeats, machine description).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMPLS = ["nnctl", "jax", "torch"]
STREAM = "nnctl-stream"  # nnctl with the data left in host memory and streamed (train.data_placement: stream)


def sh(args, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        txt = Path("/proc/cpuinfo").read_text()
        flags = " ".join(f for f in ("avx2", "fma", "avx512f") if f" {f}" in txt)
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    vers = sh(
        [
            sys.executable,
            "-c",
            "import jax, flax, optax; print(jax.__version__, flax.__version__, "
            "optax.__version__)\ntry:\n import torch; print(torch.__version__)\nexcept ImportError: print('-')",
        ]
    )
    v = vers.stdout.split()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "jax": v[0] if v else "?",
        "flax": v[1] if len(v) > 1 else "?",
        "optax": v[2] if len(v) > 2 else "?",
        "torch": v[3] if len(v) > 3 else "-",
        "load_start": os.getloadavg(),
    }


PEAK_CODE = r"""
import json, time, numpy as np, jax, jax.numpy as jnp
n = 2048
a = jnp.ones((n, n), jnp.float32); b = jnp.ones((n, n), jnp.float32)
f = jax.jit(lambda a, b: a @ b)
f(a, b).block_until_ready()
best = 1e9
for _ in range(7):
    t = time.perf_counter(); f(a, b).block_until_ready(); best = min(best, time.perf_counter() - t)
an = np.ones((n, n), np.float32); an @ an
bn = 1e9
for _ in range(7):
    t = time.perf_counter(); an @ an; bn = min(bn, time.perf_counter() - t)
print(json.dumps({"jax_gflops": 2 * n**3 / best / 1e9, "numpy_gflops": 2 * n**3 / bn / 1e9}))
"""


def matmul_peak() -> dict:
    r = sh([sys.executable, "-c", PEAK_CODE])
    return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-500:]}


def have_torch() -> bool:
    return sh([sys.executable, "-c", "import torch"]).returncode == 0


def measure(impl: str, workload: str, quick: bool) -> dict:
    args = [sys.executable, "-m", "bench.child", impl, workload] + (["--quick"] if quick else [])
    r = sh(args, {"NNCTL_CACHE_DIR": "off"})  # every implementation compiles: same footing for memory
    if r.returncode != 0:
        return {"impl": impl, "workload": workload, "error": (r.stderr or r.stdout)[-1500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def timed(args, env=None) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = sh(args, env)
    return time.perf_counter() - t, r


def startup(repeats: int) -> dict:
    nnctl = [sys.executable, "-m", "nnctl"]
    out: dict = {"help": [], "inspect_10m": [], "validate": []}
    for _ in range(repeats):
        s, r = timed(nnctl + ["--help"])
        out["help"].append(s if r.returncode == 0 else None)
        s, r = timed(nnctl + ["inspect", "params", "bench/specs/params10m.yaml", "--json"])
        out["inspect_10m"].append(s if r.returncode == 0 else None)
        if r.returncode == 0 and "params" not in out:
            out["params"] = json.loads(r.stdout)["totals"]["total"]["count"]
        s, r = timed(nnctl + ["validate", "specs/iris.yaml"])
        out["validate"].append(s if r.returncode == 0 else None)
    return out


def end_to_end(repeats: int, specs: list[str]) -> dict:
    """`nnctl train SPEC` wall time, cold compilation cache then warm (same cache dir)."""
    out = {}
    for label in specs:
        spec, *extra = label.split()
        if not (ROOT / spec).exists():
            out[label] = {"pending": f"{spec} does not exist yet"}
            continue
        rows = {"cold": [], "warm": []}
        for _ in range(repeats):
            cache = tempfile.mkdtemp(prefix="nnctl-bench-cache-")
            try:
                for phase in ("cold", "warm"):
                    run_dir = tempfile.mkdtemp(prefix="nnctl-bench-run-")
                    shutil.rmtree(run_dir)
                    s, r = timed(
                        [sys.executable, "-m", "nnctl", "train", spec, *extra, "--out", run_dir, "--json"],
                        {"NNCTL_CACHE_DIR": cache},
                    )
                    if r.returncode != 0:
                        rows[phase].append({"error": (r.stderr or r.stdout)[-800:]})
                        continue
                    summ = json.loads(r.stdout.strip().splitlines()[-1])
                    rows[phase].append(
                        {
                            "wall_s": s,
                            "compile_s": summ.get("compile_seconds"),
                            "train_s": summ.get("train_seconds"),
                            "epochs": summ.get("epochs_run"),
                        }
                    )
                    shutil.rmtree(run_dir, ignore_errors=True)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        out[label] = rows
    return out


# ------------------------------------------------------------------------------------------ report


def med(xs):
    xs = [x for x in xs if x is not None]
    return (statistics.median(xs), min(xs), max(xs)) if xs else (None, None, None)


def fmt(m, digits=3, scale=1.0):
    v, lo, hi = m
    if v is None:
        return "—"
    f = lambda x: f"{x * scale:,.{digits}g}" if abs(x * scale) < 10**digits else f"{x * scale:,.0f}"
    return f"{f(v)} ({f(lo)}–{f(hi)})"


def report(doc: dict) -> str:
    from bench.workloads import by_name

    quick = doc["quick"]
    m = doc["machine"]
    peak = doc["peak"].get("jax_gflops"), doc["peak"].get("numpy_gflops")
    peak_best = max(p for p in peak if p) if any(peak) else None
    lines = [
        "# nnctl benchmark results",
        "",
        f"Command: `{doc['command']}` — {doc['date']}, {doc['repeats']} repeat(s) per cell, interleaved, "
        f"each measurement in a fresh process{' (QUICK settings: smoke test only)' if quick else ''}.",
        "",
        f"Machine: {m['cpu']} ({m['cpu_flags']}), {m['cores']} logical cores, {m['memory']}; Python "
        f"{m['python']}, jax {m['jax']}, flax {m['flax']}, optax {m['optax']}, torch {m['torch']}. "
        f"Load average at start {tuple(round(x, 2) for x in m['load_start'])}, at end "
        f"{tuple(round(x, 2) for x in doc['load_end'])}.",
        "",
        f"float32 matmul peak (2048³, best of 7, at the start and the end of the session): "
        f"jax {peak[0] or 0:.0f} GFLOP/s, numpy {peak[1] or 0:.0f} "
        f"GFLOP/s; fractions below use {peak_best or 0:.0f}.",
        "",
        "## Training throughput (after compile / warm-up)",
        "",
        "Median (min–max). Tiny models in steps/s, the others in samples/s. Ratios are of medians.",
        "",
        "| workload | nnctl | reference JAX | PyTorch eager | nnctl / JAX | nnctl / torch | nnctl GFLOP/s "
        "(% of peak) | peak RSS MB nnctl / JAX / torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for name, cells in doc["throughput"].items():
        w = by_name(name, quick)
        key = "steps_per_s" if w.unit == "steps/s" else "samples_per_s"
        stats = {}
        for impl in IMPLS:
            rows = cells.get(impl, [])
            ok = [r for r in rows if "error" not in r]
            stats[impl] = (
                med([r[key] for r in ok]),
                med([r["peak_rss_mb"] for r in ok]),
                rows[0]["error"].strip().splitlines()[-1][:160] if rows and not ok else None,
            )
        nn, jx, tc = (stats[i][0][0] for i in IMPLS)
        r_j = nn / jx if nn and jx else None
        r_t = nn / tc if nn and tc else None
        fl = w.flops_per_sample()
        if nn and fl and w.kind not in ("xor", "iris"):
            sps = nn if key == "samples_per_s" else nn * w.batch
            gf = sps * fl / 1e9
            gfs = f"{gf:.1f} ({100 * gf / peak_best:.0f}%)" if peak_best else f"{gf:.1f}"
        else:
            gfs = "—"
        cell = lambda i, stats=stats: (
            fmt(stats[i][0]) if stats[i][0][0] else (f"error: {stats[i][2]}" if stats[i][2] else "—")
        )
        mem = " / ".join(f"{stats[i][1][0]:.0f}" if stats[i][1][0] else "—" for i in IMPLS)
        lines.append(
            f"| {name} ({w.unit}) | {cell('nnctl')} | {cell('jax')} | {cell('torch')} | "
            f"{f'{r_j:.2f}x' if r_j else '—'} | {f'{r_t:.1f}x' if r_t else '—'} | {gfs} | {mem} |"
        )
        tiny = w.kind in ("xor", "iris")
        need_j, need_t = (0.8, 50.0) if tiny else (0.9, 1.0)
        mem_ratio = stats["nnctl"][1][0] / stats["jax"][1][0] if stats["nnctl"][1][0] and stats["jax"][1][0] else None
        targets.append((name, r_j, need_j, r_t, need_t, mem_ratio))
    streamed = [(n, c) for n, c in doc["throughput"].items() if c.get(STREAM)]
    if streamed:
        lines += [
            "",
            "### Data streamed from host memory (`train.data_placement: stream`)",
            "",
            "The same nnctl run with the data left on the host and windows of batches prefetched to the "
            "device, against the device-resident run above.",
            "",
            "| workload | nnctl, data on device | nnctl, streamed | streamed / on device | "
            "peak RSS MB on device / streamed |",
            "|---|---|---|---|---|",
        ]
        for name, cells in streamed:
            w = by_name(name, quick)
            key = "steps_per_s" if w.unit == "steps/s" else "samples_per_s"
            dev = [r for r in cells.get("nnctl", []) if "error" not in r]
            st = [r for r in cells[STREAM] if "error" not in r]
            if not st:
                err = cells[STREAM][0]["error"].strip().splitlines()[-1][:160]
                lines.append(f"| {name} ({w.unit}) | | error: {err} | | |")
                continue
            a_, b_ = med([r[key] for r in dev]), med([r[key] for r in st])
            ma, mb = med([r["peak_rss_mb"] for r in dev])[0], med([r["peak_rss_mb"] for r in st])[0]
            ratio = f"{b_[0] / a_[0]:.2f}x" if a_[0] and b_[0] else "—"
            lines.append(
                f"| {name} ({w.unit}) | {fmt(a_)} | {fmt(b_)} | {ratio} | {f'{ma:.0f}' if ma else '—'} / {mb:.0f} |"
            )
    lines += ["", "Workloads: " + "; ".join(f"**{w}**: {by_name(w, quick).notes}" for w in doc["throughput"]), ""]
    lines += [
        "## Targets",
        "",
        "| workload | nnctl/JAX (target) | nnctl/torch (target) | memory nnctl/JAX (≤1.2) |",
        "|---|---|---|---|",
    ]
    for name, r_j, need_j, r_t, need_t, mr in targets:
        ok = lambda r, need: "—" if r is None else f"{r:.2f} ({'met' if r >= need else 'MISSED'}, ≥{need:g})"
        mm = "—" if mr is None else f"{mr:.2f} ({'met' if mr <= 1.2 else 'MISSED'})"
        lines.append(f"| {name} | {ok(r_j, need_j)} | {ok(r_t, need_t)} | {mm} |")
    su = doc.get("startup")
    if su:
        lines += [
            "",
            "## Start-up",
            "",
            "| command | wall s, median (min–max) | target |",
            "|---|---|---|",
            f"| `nnctl --help` | {fmt(med(su['help']))} | < 0.3 s |",
            f"| `nnctl inspect params` ({su.get('params', 0):,} parameters) | {fmt(med(su['inspect_10m']))} | < 2 s |",
            f"| `nnctl validate specs/iris.yaml` | {fmt(med(su['validate']))} | |",
        ]
    e2e = doc.get("e2e")
    if e2e:
        lines += [
            "",
            "## End to end: `nnctl train SPEC` (process start to exit)",
            "",
            "| spec | cache | wall s | compile s | train s | epochs | compile speed-up warm vs cold (target ≥3x) |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec, rows in e2e.items():
            if "pending" in rows:
                lines.append(f"| {spec} | pending: {rows['pending']} | | | | | |")
                continue
            cold_c = med([r.get("compile_s") for r in rows["cold"] if "error" not in r])[0]
            warm_c = med([r.get("compile_s") for r in rows["warm"] if "error" not in r])[0]
            for phase in ("cold", "warm"):
                ok = [r for r in rows[phase] if "error" not in r]
                if not ok:
                    err = rows[phase][0]["error"].strip().splitlines()[-1][:120] if rows[phase] else "no runs"
                    lines.append(f"| {spec} | {phase} | error: {err} | | | | |")
                    continue
                sp = ""
                if phase == "warm" and cold_c and warm_c:
                    sp = f"{cold_c / warm_c:.1f}x ({'met' if cold_c / warm_c >= 3 else 'MISSED'})"
                lines.append(
                    f"| {spec} | {phase} | {fmt(med([r['wall_s'] for r in ok]))} | "
                    f"{fmt(med([r['compile_s'] for r in ok]))} | {fmt(med([r['train_s'] for r in ok]))} | "
                    f"{ok[0]['epochs']} | {sp} |"
                )
    if doc.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short settings: checks that everything runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated workloads (xor,iris,mlp,cnn,lstm)")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-stream", action="store_true", help="do not measure nnctl with streamed data")
    ap.add_argument("--out", default=str(HERE), help="directory for results.json and RESULTS.md")
    ap.add_argument("--note", action="append", default=[], help="a line for the Notes section")
    a = ap.parse_args(argv)

    from bench.workloads import workloads

    names = [w.name for w in workloads(a.quick) if not a.only or w.name in a.only.split(",")]
    impls = IMPLS if have_torch() else IMPLS[:2]
    doc = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": a.quick,
        "repeats": a.repeats,
        "machine": machine(),
        "notes": list(a.note),
    }
    if "torch" not in impls:
        doc["notes"].append("PyTorch is not installed (pip install -e '.[bench]'): its column is empty")
    print(f"machine: {doc['machine']}", file=sys.stderr)
    doc["peak"] = matmul_peak()
    print(f"matmul peak: {doc['peak']}", file=sys.stderr)
    doc["throughput"] = {n: {i: [] for i in IMPLS + [STREAM]} for n in names}
    for rep in range(a.repeats):
        for n in names:
            streamed = [STREAM] if not a.skip_stream and n not in ("xor", "iris") else []
            for impl in impls + streamed:
                r = measure(impl, n, a.quick)
                doc["throughput"][n][impl].append(r)
                shown = {
                    k: (round(v, 3) if isinstance(v, float) else v)
                    for k, v in r.items()
                    if k in ("steps_per_s", "samples_per_s", "peak_rss_mb", "error")
                }
                print(f"[{rep + 1}/{a.repeats}] {n:5s} {impl:6s} {shown}", file=sys.stderr)
    if not a.skip_e2e:
        doc["startup"] = startup(a.repeats)
        print(f"startup: {doc['startup']}", file=sys.stderr)
        doc["e2e"] = end_to_end(
            a.repeats, ["specs/iris.yaml", "specs/digits_mlp.yaml", "specs/xor.yaml --set train.epochs=10000"]
        )
        print(f"e2e: {json.dumps(doc['e2e'])[:1000]}", file=sys.stderr)
    end_peak = matmul_peak()  # again at the end: on a shared machine the larger reading is nearer the truth
    for k, v in end_peak.items():
        if isinstance(v, float):
            doc["peak"][k] = max(v, doc["peak"].get(k) or 0.0)
    doc["load_end"] = os.getloadavg()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (out / "RESULTS.md").write_text(report(doc))
    print(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
