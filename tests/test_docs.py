"""The generated reference must match the registries, and the README's commands must match CI."""

from tests.conftest import ROOT


def test_reference_is_up_to_date():
    from nnctl.docgen import generate

    assert (ROOT / "docs" / "reference.md").read_text() == generate(), (
        "docs/reference.md is stale: run `python -m nnctl.docgen > docs/reference.md`"
    )


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line and line.startswith("python3 -m venv"))
    assert command in readme
