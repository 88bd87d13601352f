"""Compile time of every example spec is measured (issue 11, item 10): bench/compile_times.md has a row per
spec in specs/, each process's CPU seconds split into compile / train / other, and the README's cold figure
for iris is the table's."""

from __future__ import annotations

import json
import re

from bench import compile_times as ct

ROOT = ct.ROOT


def _rows() -> dict[str, list[str]]:
    out = {}
    for line in (ROOT / "bench" / "compile_times.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("spec",) and not set(cells[0]) <= {"-", ":"}:
            out[cells[0]] = cells
    return out


def test_the_table_covers_every_example_spec():
    specs = {p.stem for p in (ROOT / "specs").glob("*.yaml")}
    rows = _rows()
    assert sorted(specs - set(rows)) == []
    for name, cells in rows.items():
        compile_s, train_s, other_s = (float(v) for v in cells[1].split(" / "))
        assert abs(compile_s + train_s + other_s - float(cells[2])) < 0.02, name  # the split adds up
        assert cells[5].split("/")[0] == cells[5].split("/")[1], name  # warm: every program from the cache


def test_json_matches_the_table_and_the_docs_quote_it():
    data = {r["spec"]: r for r in json.loads((ROOT / "bench" / "compile_times.json").read_text())}
    assert set(data) == set(_rows())
    readme = " ".join((ROOT / "README.md").read_text().split())
    for spec in ("iris", "digits_cnn"):
        m = re.search(rf"`?{spec}`? spends ([\d.]+) CPU-s compiling cold against ([\d.]+) warm", readme)
        assert m, f"the README states {spec}'s cold and warm compile figures"
        r = data[spec]
        assert (m.group(1), m.group(2)) == (f"{r['cold']['compile_cpu_s']:.2f}", f"{r['warm']['compile_cpu_s']:.2f}")
    m = re.search(r"a whole iris process takes ([\d.]+) CPU-s cold and ([\d.]+) warm", readme)
    assert m and (m.group(1), m.group(2)) == (
        f"{data['iris']['cold']['cpu_s']:.2f}",
        f"{data['iris']['warm']['cpu_s']:.2f}",
    )
    summary = next(
        line for line in (ROOT / "bench" / "compile_times.md").read_text().splitlines() if "Over the" in line
    )
    assert summary in " ".join((ROOT / "docs" / "performance.md").read_text().split())


def test_markdown_splits_each_process():
    run = {"compile_s": 9.0, "compile_cpu_s": 6.5, "train_cpu_s": 0.25, "other_cpu_s": 4.0, "cpu_s": 10.75}
    row = {"spec": "x", "cold": run, "warm": run | {"cache": {"from_cache": 5, "programs": 5}}}
    row["new_values"] = row["warm"]
    md = ct.markdown([row], "python -m bench.compile_times x")
    assert "| x | 6.50 / 0.25 / 4.00 | 10.75 | 6.50 / 0.25 / 4.00 | 10.75 | 5/5 | 6.50 | 10.75 | 5/5 |" in md
    assert "cold median 6.50" in md
