"""The README says how long its test command takes (issue 11, item 11), next to the command, within the
budget the project keeps for it (about 5 minutes on 2 cores; longer tests are marked slow)."""

import re

from tests.conftest import ROOT


def test_readme_states_the_test_command_duration_next_to_it():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line and line.startswith("python3 -m venv"))
    before = readme[: readme.index(command)]
    paragraph = before[before.rstrip().rstrip("`bash").rstrip().rfind("\n\n") :]
    m = re.search(r"about (\d+) minutes on 2 cores", paragraph.replace("\n", " "))
    assert m, "the paragraph introducing the test command states its duration"
    assert int(m.group(1)) <= 5


def test_the_suite_runs_on_every_core():
    """The budget holds because the tests run on every core (pytest-xdist, installed by the test extra)."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-n auto" in ci and "--dist loadfile" in ci
    assert '"pytest-xdist' in (ROOT / "pyproject.toml").read_text()
