"""docs/notes-coverage.md names a spec and a test for each concept of the course notes: every spec file it names
exists and every test it names is a test function of that file."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "notes-coverage.md"


def rows():
    out = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("concept", "---") and not set(cells[0]) <= {"-"}:
            out.append(cells)
    return out


def test_the_table_is_not_empty_and_every_row_names_a_test():
    assert len(rows()) >= 40
    assert all(re.fullmatch(r"tests/test_\w+\.py::test_\w+", test) for _, _, test in rows())


def test_every_named_spec_and_test_exists():
    missing = []
    for concept, spec, test in rows():
        for path in re.findall(r"specs/[\w/.-]+\.yaml", spec):
            if not (ROOT / path).is_file():
                missing.append(f"{concept}: {path}")
        file, _, func = test.partition("::")
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8")) if (ROOT / file).is_file() else None
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)} if tree else set()
        if func not in names:
            missing.append(f"{concept}: {test}")
    assert not missing, "docs/notes-coverage.md names what does not exist:\n" + "\n".join(missing)
