"""The documented accuracies of the example specs come from bench/example_numbers.py (issue 11, item 8)."""

from __future__ import annotations

import pytest

from bench import example_numbers as ex


def test_claims_are_found_and_rewritten(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "| spec | what | measured |\n|---|---|---|\n| `specs/a.yaml` | 3×3 conv, 2 layers | 99.2% test accuracy (seed 0) |\n"
    )
    (tmp_path / "docs" / "layers.md").write_text("| `specs/a.yaml` | x | 99.2% |\n| `specs/b.yaml` | y | 50% |\n")
    (tmp_path / "specs" / "a.yaml").write_text("# Full settings (as written): 99.2% test accuracy.\nname: a\n")
    monkeypatch.setattr(ex, "ROOT", tmp_path)
    claim = ex.Claim("specs/a.yaml", "accuracy")
    measured = ex.formatted(claim, 0.96658)
    assert measured == "96.7%" and ex.formatted(claim, 1.0) == "100%"
    wrong = ex.reconcile(claim, measured, write=False)
    assert len(wrong) == 3 and "README.md: specs/a.yaml claims 99.2%, measured 96.7%" in wrong
    ex.reconcile(claim, measured, write=True)
    assert "| 96.7% test accuracy (seed 0) |" in (tmp_path / "README.md").read_text()
    assert "| 96.7% |\n| `specs/b.yaml` | y | 50% |" in (tmp_path / "docs" / "layers.md").read_text()
    assert (tmp_path / "specs" / "a.yaml").read_text().startswith("# Full settings (as written): 96.7% test")
    assert ex.reconcile(claim, measured, write=False) == []


def test_every_claimed_spec_is_in_the_docs():
    for c in ex.CLAIMS:
        text = (ex.ROOT / "README.md").read_text() + (ex.ROOT / "docs" / "layers.md").read_text()
        assert ex.claimed(text, c.spec), c.spec


@pytest.mark.slow
@pytest.mark.parametrize("claim", ex.CLAIMS, ids=[c.spec for c in ex.CLAIMS])
def test_documented_number_is_measured(claim):
    assert ex.reconcile(claim, ex.formatted(claim, ex.measure(claim)), write=False) == []
