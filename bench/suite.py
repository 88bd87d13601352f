"""The benchmark suite: `python -m bench [--quick] [--repeats N] [--only xor,mlp] [--skip-e2e] [--pinned CORE]`.

Two clocks. Wall-clock mode (the default) uses the whole machine and reports wall seconds. Pinned mode
(`--pinned CORE`) pins every measured process, all its threads, to one core (os.sched_setaffinity, before
jax or torch start) and reports CPU seconds of the process (time.process_time; for whole commands, the
children's rusage), with the same runs' wall-clock figures alongside: on a shared, loaded machine a process
waiting for its core accrues wall time but not CPU time, so the pinned figures stand where wall clock does
not. `--variants` adds measurement-only variants of nnctl (bench/variants.py: records off, the previous
max-pool gradient and recurrent projection) to price the bookkeeping and check the fast paths.

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
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cpu_time
from bench.variants import NNCTL_VARIANTS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMPLS = ["nnctl", "jax", "torch"]
STREAM = "nnctl-stream"  # nnctl with the data left in host memory and streamed (train.data_placement: stream)


PIN: dict = {"core": None}  # set by --pinned: the core every measured process is pinned to
PYC: dict = {"dir": None}  # the session's bytecode cache folder (made on first use)


def child_env() -> dict:
    """The environment of a measured process. An installed package has its `.pyc` files, so every child
    reads and writes its bytecode in one folder of the session (`bench.cpu_time.child_env`; the first children
    fill it) even where the environment sets PYTHONDONTWRITEBYTECODE: otherwise every process would compile
    nnctl's modules from source, a cost no installed copy pays."""
    if PYC["dir"] is None:
        PYC["dir"] = tempfile.mkdtemp(prefix="nnctl-bench-pyc-")
    return cpu_time.child_env(PYC["dir"], 0, bytecode=True)


def sh(args, env=None, timeout=1800) -> subprocess.CompletedProcess:
    core = PIN["core"]
    extra = {"BENCH_PIN_CORE": str(core), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if core is not None else {}
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    return subprocess.run(
        args,
        cwd=ROOT,
        env={**child_env(), **extra, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=pin,
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
import json, os, time, numpy as np, jax, jax.numpy as jnp
clock = time.process_time if os.environ.get("BENCH_PIN_CORE") else time.perf_counter  # pinned: CPU seconds
n = 2048
a = jnp.ones((n, n), jnp.float32); b = jnp.ones((n, n), jnp.float32)
f = jax.jit(lambda a, b: a @ b)
f(a, b).block_until_ready()
best = 1e9
for _ in range(7):
    t = clock(); f(a, b).block_until_ready(); best = min(best, clock() - t)
an = np.ones((n, n), np.float32); an @ an
bn = 1e9
for _ in range(7):
    t = clock(); an @ an; bn = min(bn, clock() - t)
print(json.dumps({"jax_gflops": 2 * n**3 / best / 1e9, "numpy_gflops": 2 * n**3 / bn / 1e9}))
"""


def matmul_peak() -> dict:
    r = sh([sys.executable, "-c", PEAK_CODE])
    return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-500:]}


def applies(variant: str, workload: str) -> bool:
    """The pooling and projection variants only where the workload has that layer."""
    return {"nnctl-oldpool": workload == "cnn", "nnctl-oldproj": workload == "lstm"}.get(variant, True)


def have_torch() -> bool:
    return sh([sys.executable, "-c", "import torch"]).returncode == 0


def measure(impl: str, workload: str, quick: bool) -> dict:
    args = [sys.executable, "-m", "bench.child", impl, workload] + (["--quick"] if quick else [])
    r = sh(args, {"NNCTL_CACHE_DIR": "off"})  # every implementation compiles: same footing for memory
    if r.returncode != 0:
        return {"impl": impl, "workload": workload, "error": (r.stderr or r.stdout)[-1500:]}
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "load1": os.getloadavg()[0]}


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(args, env=None) -> tuple[float, subprocess.CompletedProcess]:
    """(seconds, result): wall seconds, or in pinned mode the command's CPU seconds (user + system)."""
    t, c = time.perf_counter(), children_cpu()
    r = sh(args, env)
    return (children_cpu() - c if PIN["core"] is not None else time.perf_counter() - t), r


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


def load_line(doc: dict) -> str:
    cells = [rows for c in doc["throughput"].values() for rows in c.values()]
    loads = [r["load1"] for rows in cells for r in rows if "load1" in r]
    if not loads:
        return ""
    cores = doc["machine"]["cores"]
    return f" 1-minute load average after each measurement: median {fmt(med(loads))} on {cores} cores."


def rate_key(w, clock: str) -> str:
    return ("cpu_" if clock == "cpu" else "") + ("steps_per_s" if w.unit == "steps/s" else "samples_per_s")


def throughput_table(doc: dict, clock: str, peak_best) -> tuple[list[str], list]:
    """Table lines and the target rows of the throughput section, per CPU second or per wall second."""
    from bench.workloads import by_name

    lines = [
        "Tiny models in steps/s, the others in samples/s.",
        "",
        "| workload | nnctl | reference JAX | PyTorch eager | nnctl / JAX | nnctl / torch | nnctl GFLOP/s "
        "(% of peak) | peak RSS MB nnctl / JAX / torch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for name, cells in doc["throughput"].items():
        w = by_name(name, doc["quick"])
        key = rate_key(w, clock)
        stats = {}
        for impl in IMPLS:
            rows = cells.get(impl, [])
            ok = [r for r in rows if "error" not in r and key in r]
            stats[impl] = (
                med([r[key] for r in ok]),
                med([r["peak_rss_mb"] for r in ok]),
                rows[0]["error"].strip().splitlines()[-1][:160] if rows and "error" in rows[0] and not ok else None,
            )
        nn, jx, tc = (stats[i][0][0] for i in IMPLS)
        r_j = nn / jx if nn and jx else None
        r_t = nn / tc if nn and tc else None
        fl = w.flops_per_sample()
        if nn and fl and w.kind not in ("xor", "iris"):
            sps = nn if key.endswith("samples_per_s") else nn * w.batch
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
            f"{f'{r_j:.2f}x' if r_j else '—'} | {f'{r_t:.2f}x' if r_t else '—'} | {gfs} | {mem} |"
        )
        need_j, need_t = 0.95, {"xor": 50.0, "iris": 50.0, "cnn": 1.0, "lstm": 1.1}.get(w.kind, 1.0)
        mem_ratio = stats["nnctl"][1][0] / stats["jax"][1][0] if stats["nnctl"][1][0] and stats["jax"][1][0] else None
        targets.append((name, r_j, need_j, r_t, need_t, mem_ratio))
    return lines, targets


VARIANT_LABELS = {
    "nnctl-nometrics": "no metrics",
    "nnctl-bare": "records off (no metrics, guard, gradient norm)",
    "nnctl-oldpool": "autodiff max-pool gradient",
    "nnctl-oldproj": "batch-major recurrent projection",
}


def variants_table(doc: dict, clock: str) -> list[str]:
    """nnctl against its measurement-only variants (bench/variants.py), same runs, same clock."""
    from bench.workloads import by_name

    rows = []
    for name, cells in doc["throughput"].items():
        key = rate_key(by_name(name, doc["quick"]), clock)
        base = med([r[key] for r in cells.get("nnctl", []) if "error" not in r and key in r])
        for v, label in VARIANT_LABELS.items():
            got = [r[key] for r in cells.get(v, []) if "error" not in r and key in r]
            if not got or not base[0]:
                continue
            m = med(got)
            pairs = ", ".join(
                f"{a[key] / b[key]:.2f}"
                for a, b in zip(cells["nnctl"], cells[v])
                if "error" not in a and "error" not in b and key in a and key in b
            )
            rows.append(f"| {name} | {label} | {fmt(base)} | {fmt(m)} | {base[0] / m[0]:.2f}x | {pairs} |")
    if not rows:
        return []
    return [
        "",
        "### nnctl against measurement-only variants of itself (bench/variants.py)",
        "",
        "nnctl / variant above 1: nnctl as shipped is faster; below 1: the variant is. Per-repeat pairs are "
        "the same repeat's nnctl / variant.",
        "",
        "| workload | variant | nnctl | variant | nnctl / variant | per repeat |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def report(doc: dict) -> str:
    from bench.workloads import by_name

    quick = doc["quick"]
    m = doc["machine"]
    peak = doc["peak"].get("jax_gflops"), doc["peak"].get("numpy_gflops")
    peak_best = max(p for p in peak if p) if any(peak) else None
    pinned = doc.get("pinned") is not None
    lines = [
        "# nnctl benchmark results",
        "",
        f"Command: `{doc['command']}` — {doc['date']}, {doc['repeats']} repeat(s) per cell "
        f"({doc.get('progress', 'complete')}), interleaved, "
        f"each measurement in a fresh process{' (QUICK settings: smoke test only)' if quick else ''}.",
        "",
        f"Machine: {m['cpu']} ({m['cpu_flags']}), {m['cores']} logical cores, {m['memory']}; Python "
        f"{m['python']}, jax {m['jax']}, flax {m['flax']}, optax {m['optax']}, torch {m['torch']}. "
        f"Load average at start {tuple(round(x, 2) for x in m['load_start'])}, at end "
        f"{tuple(round(x, 2) for x in doc['load_end'])}.{load_line(doc)}",
        "",
        f"float32 matmul peak (2048³, best of 7, at the start and the end of the session"
        f"{', one core, per CPU second' if pinned else ''}): "
        f"jax {peak[0] or 0:.0f} GFLOP/s, numpy {peak[1] or 0:.0f} "
        f"GFLOP/s; fractions below use {peak_best or 0:.0f}.",
        "",
    ]
    clock = "cpu" if pinned else "wall"
    if pinned:
        lines += [
            f"## Training throughput, each process pinned to core {doc['pinned']}, per CPU second",
            "",
            "Throughput per second of CPU time of the measuring process (every thread), after compile / "
            "warm-up. Median (min–max); ratios are of medians. The same runs per wall-clock second follow.",
            "",
        ]
    else:
        lines += ["## Training throughput (after compile / warm-up)", ""]
    rows, targets = throughput_table(doc, clock, peak_best)
    lines += rows
    if pinned:
        lines += ["", "### The same runs, per wall-clock second (the core was shared with other processes)", ""]
        lines += throughput_table(doc, "wall", peak_best)[0]
    lines += variants_table(doc, clock)
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
            key = rate_key(w, clock)
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
        f"Per {'CPU' if pinned else 'wall-clock'} second.",
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
            f"| command | {'CPU' if pinned else 'wall'} s, median (min–max) | target |",
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
            f"| spec | cache | {'CPU' if pinned else 'wall'} s | compile s (wall) | train s (wall) | epochs | "
            "compile speed-up warm vs cold (target ≥3x) |",
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
    ap.add_argument(
        "--pinned", type=int, default=None, metavar="CORE", help="pin each measured process to CORE; CPU seconds"
    )
    ap.add_argument("--variants", default="", help="comma-separated nnctl variants of bench/variants.py, or all")
    a = ap.parse_args(argv)
    PIN["core"] = a.pinned

    from bench.workloads import workloads

    names = [w.name for w in workloads(a.quick) if not a.only or w.name in a.only.split(",")]
    impls = IMPLS if have_torch() else IMPLS[:2]
    doc = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": a.quick,
        "repeats": a.repeats,
        "pinned": a.pinned,
        "machine": machine(),
        "notes": list(a.note),
    }
    doc["notes"].append(
        "every measured process keeps its bytecode in a cache folder of the session, as an installed package"
        " keeps its .pyc files (PYTHONDONTWRITEBYTECODE, where the environment sets it, is dropped for them)"
    )
    if "torch" not in impls:
        doc["notes"].append("PyTorch is not installed (pip install -e '.[bench]'): its column is empty")
    print(f"machine: {doc['machine']}", file=sys.stderr)
    doc["peak"] = matmul_peak()
    print(f"matmul peak: {doc['peak']}", file=sys.stderr)
    doc["throughput"] = {n: {i: [] for i in IMPLS + [STREAM, *NNCTL_VARIANTS]} for n in names}
    for rep in range(a.repeats):
        for n in names:
            streamed = [STREAM] if not a.skip_stream and n not in ("xor", "iris") else []
            extra = [v for v in NNCTL_VARIANTS if (a.variants == "all" or v in a.variants.split(",")) and applies(v, n)]
            order = impls + streamed + extra
            for impl in order if rep % 2 == 0 else order[::-1]:  # interleaved, alternating the order
                r = measure(impl, n, a.quick)
                doc["throughput"][n][impl].append(r)
                shown = {
                    k: (round(v, 3) if isinstance(v, float) else v)
                    for k, v in r.items()
                    if k in ("steps_per_s", "samples_per_s", "cpu_steps_per_s", "cpu_samples_per_s", "error")
                }
                print(f"[{rep + 1}/{a.repeats}] {n:5s} {impl:6s} {shown}", file=sys.stderr)
        write(doc, Path(a.out), f"{rep + 1} of {a.repeats} repeats done")  # a stopped session keeps its repeats
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
    write(doc, Path(a.out), "complete")
    if PYC["dir"]:
        shutil.rmtree(PYC["dir"], ignore_errors=True)


def write(doc: dict, out: Path, progress: str) -> None:
    doc["load_end"] = os.getloadavg()
    doc["progress"] = progress
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (out / "RESULTS.md").write_text(report(doc))
    print(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'} ({progress})", file=sys.stderr)


if __name__ == "__main__":
    main()
