"""The documented numbers of the example specs come from bench/example_numbers.py (issue 11, item 8): every
number the README, the docs and the specs' comments state about what a spec reaches is a placeholder of a
claim that the script measures, and `--check` fails when a written number differs from the measured one."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench import example_numbers as ex
from tests.conftest import ROOT

SPEC_CLAIM = re.compile(r"Full settings|Measured|Reaches|error is", re.I)


def _docs_rows():
    """(file, spec, last cell) of each table row in the docs naming a spec in backquotes."""
    for file in ex.DOCS:
        for line in (ex.ROOT / file).read_text(encoding="utf-8").splitlines():
            for spec in re.findall(r"`(specs/[\w.]+\.yaml)`", line) if line.startswith("|") else []:
                yield file, spec, line.rstrip().rstrip("|").split("|")[-1]


def test_every_template_finds_its_one_place():
    for c in ex.CLAIMS:
        for file, template in c.sites:
            ex.locate(c.spec, file, template)  # raises LookupError when missing or ambiguous


def test_every_number_the_docs_state_for_a_spec_is_a_claim():
    sites = {(file, c.spec) for c in ex.CLAIMS for file, _ in c.sites}
    stated = [
        (file, spec)
        for file, spec, cell in _docs_rows()
        if re.search(r"\d", re.sub(r"`[^`]*`", "", cell))  # a number outside code spans
    ]
    assert len(stated) >= 30
    assert [s for s in stated if s not in sites] == []


def test_every_spec_comment_that_states_a_result_is_a_claim():
    sites = {file for c in ex.CLAIMS for file, _ in c.sites}
    for spec in sorted((ex.ROOT / "specs").glob("*.yaml")):
        head = "".join(line for line in spec.read_text().splitlines(keepends=True) if line.startswith("#"))
        if SPEC_CLAIM.search(head) and re.search(r"\d", head):
            assert f"specs/{spec.name}" in sites, spec.name


def test_check_fails_on_a_differing_number_and_write_fixes_it(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "| spec | what | measured |\n|---|---|---|\n| `specs/a.yaml` | 3×3 conv, 2 layers | 99.2% test accuracy, F1 0.990 |\n"
    )
    (tmp_path / "docs" / "layers.md").write_text("| `specs/a.yaml` | x | 99.2% |\n| `specs/b.yaml` | y | 50% |\n")
    (tmp_path / "specs" / "a.yaml").write_text("# Full settings (as written): 99.2% test accuracy (seed 0).\nname: a\n")
    monkeypatch.setattr(ex, "ROOT", tmp_path)
    claim = ex.Claim(
        "specs/a.yaml",
        lambda d: {},
        (
            ("README.md", "{acc} test accuracy, F1 {f1}"),
            ("docs/layers.md", "{acc}"),
            ("specs/a.yaml", "# Full settings (as written): {acc} test accuracy ("),
        ),
    )
    measured = {"acc": ex.m.pct(0.96658), "f1": "0.966"}
    assert measured["acc"] == "96.7%" and ex.m.pct(1.0) == "100%" and ex.m.sci(3.5138e-5) == "3.51e-5"
    wrong = ex.reconcile(claim, measured, write=False)
    assert len(wrong) == 3 and "'99.2% test accuracy, F1 0.990' written, '96.7% test accuracy, F1 0.966'" in wrong[0]
    assert ex.reconcile(claim, {"acc": "99.2%", "f1": "0.990"}, write=False) == []
    ex.reconcile(claim, measured, write=True)
    assert "| 96.7% test accuracy, F1 0.966 |" in (tmp_path / "README.md").read_text()
    assert "| 96.7% |\n| `specs/b.yaml` | y | 50% |" in (tmp_path / "docs" / "layers.md").read_text()
    assert (tmp_path / "specs" / "a.yaml").read_text().startswith("# Full settings (as written): 96.7% test")
    assert ex.reconcile(claim, measured, write=False) == []
    # a literal word of the template that the doc no longer has is a missing claim, not a silent pass
    (tmp_path / "docs" / "layers.md").write_text("| `specs/a.yaml` | x | 96.7% (typed) |\n")
    with pytest.raises(LookupError):
        ex.reconcile(claim, measured, write=False)


@pytest.mark.slow
@pytest.mark.parametrize("spec", sorted({c.spec for c in ex.CLAIMS}))
def test_documented_numbers_are_measured(spec):
    """The script itself, in a process with the user's XLA settings: the documented numbers were measured
    that way, and the tests' own LLVM -O0 (tests/conftest.py) moves conv and recurrent results."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if os.environ["NNCTL_TEST_USER_XLA_FLAGS"]:
        env["XLA_FLAGS"] = os.environ["NNCTL_TEST_USER_XLA_FLAGS"]
    r = subprocess.run(
        [sys.executable, "-m", "bench.example_numbers", spec], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr
