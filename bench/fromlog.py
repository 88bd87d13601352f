"""Rebuild a suite report from a stopped session: `python -m bench.fromlog RESULTS_JSON LOG [--out DIR]`.

The suite writes results.json after every complete repeat and prints every measurement to stderr as it goes
(`[2/3] cnn   nnctl  {...rates...}`). This adds the measurements of the unfinished repeat, read from that
log, to the doc (the printed fields only: throughput per wall and per CPU second; no peak memory) and writes
results.json and RESULTS.md again, stating how many measurements came from the log.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

from bench.suite import write

LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+)\s+(\S+)\s+(\{.*\})$")


def merge(doc: dict, log: str) -> int:
    done = {(n, i): len(rows) for n, cells in doc["throughput"].items() for i, rows in cells.items()}
    seen: dict = {}
    added = 0
    for line in log.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        workload, impl, row = m.group(3), m.group(4), ast.literal_eval(m.group(5))
        seen[(workload, impl)] = seen.get((workload, impl), 0) + 1
        if workload in doc["throughput"] and seen[(workload, impl)] > done.get((workload, impl), 0):
            doc["throughput"][workload].setdefault(impl, []).append({**row, "peak_rss_mb": None, "from_log": True})
            added += 1
    return added


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("log")
    ap.add_argument("--out", default=None, help="directory for the merged results.json and RESULTS.md")
    a = ap.parse_args(argv)
    doc = json.loads(Path(a.results).read_text())
    added = merge(doc, Path(a.log).read_text())
    write(doc, Path(a.out) if a.out else Path(a.results).parent, f"{doc['progress']}, +{added} from the log")


if __name__ == "__main__":
    main()
