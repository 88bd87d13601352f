"""Table-driven over the data-source registry: every source checks its fields, peeks and reads a tiny example;
file sources read predict inputs; the package has no function-local imports and no import cycle."""

from __future__ import annotations

import ast
import pkgutil
import types
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import nnctl.data
import nnctl.data.sources
from nnctl.data.inputs import input_source, read_inputs
from nnctl.data.peek import peek
from nnctl.data.prepare import Imputer
from nnctl.data.sources import DATA_SOURCES, DataInfo, check_source, read, source_kind
from nnctl.data.sources.base import TargetFacts
from nnctl.data.sources.csv import CsvLayout
from nnctl.errors import DataError
from nnctl.spec.models import DataSpec

X3 = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def _csv(d: Path) -> None:
    (d / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n")


def _npz(d: Path) -> None:
    with open(d / "t.npz", "wb") as f:
        np.savez(f, x=X3, y=np.array([0, 1, 0]))


IMG = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10  # (height 2, width 3, rgb)


def _images(d: Path) -> None:
    from PIL import Image

    for cls, k in (("a", 0), ("b", 1)):
        (d / "imgs" / cls).mkdir(parents=True)
        Image.fromarray(IMG + k).save(d / "imgs" / cls / "0.png")


def _parquet(d: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 3, 5], "b": [2.0, 4.0, 6.0], "label": [0, 1, 0]}), d / "t.parquet")


def _hf(d: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"x": X3.tolist(), "y": [0, 1, 0]}).save_to_disk(str(d / "hf"))


def _shards(d: Path) -> None:
    from nnctl.data.shard_writer import ShardWriter

    w = ShardWriter(d / "t.shards", 2)  # two shards: rows 0-1 and 2
    w.add(X3, np.array([0, 1, 0]))
    w.finish(None, "X3")


# name -> (valid data spec, file writer, peeked DataInfo, x read, (spec lacking a field, its error))
CASES = {
    "builtin": (
        {"source": "builtin:xor"},
        None,
        DataInfo((2,), 2),
        np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32),
        ({"source": "builtin:xor", "delimiter": ";"}, "data.delimiter applies to csv sources only"),
    ),
    "inline": (
        {"source": "inline", "x": X3.tolist(), "y": [0, 1, 0]},
        None,
        DataInfo((2,), targets=TargetFacts.of(np.array([0.0, 1.0, 0.0]))),  # target facts: for the spec check
        X3,
        ({"source": "inline", "y": [0, 1, 0]}, "source inline needs x"),
    ),
    "csv": (
        {"source": "csv", "path": "t.csv", "target": "label"},
        _csv,
        DataInfo((2,), targets=TargetFacts.of(np.array([0.0, 1.0, 0.0]))),
        X3,
        ({"source": "csv", "target": "label"}, "source csv needs path"),
    ),
    "npz": (
        {"source": "npz", "path": "t.npz", "x": "x", "y": "y"},
        _npz,
        DataInfo((2,)),
        X3,
        ({"source": "npz", "path": "t.npz", "x": ["x"], "y": "y"}, "npz data needs x and y as array names"),
    ),
    "images": (
        {"source": "images", "path": "imgs"},
        _images,
        DataInfo((2, 3, 3), 2),
        np.stack([IMG, IMG + 1]).astype(np.float32),
        ({"source": "images", "path": "imgs", "resize": "crop"}, "data.resize needs data.image_size"),
    ),
    "parquet": (
        {"source": "parquet", "path": "t.parquet", "target": "label"},
        _parquet,
        DataInfo((2,), targets=TargetFacts.of(np.array([0.0, 1.0, 0.0]))),  # what the checks before training read
        X3,
        ({"source": "parquet", "path": "t.parquet"}, "source parquet needs target"),
    ),
    "hf": (
        {"source": "hf", "path": "hf", "x": "x", "y": "y"},
        _hf,
        DataInfo((2,)),
        X3,
        ({"source": "hf", "path": "hf", "x": "x"}, "source hf needs y"),
    ),
    "shards": (
        {"source": "shards", "path": "t.shards"},
        _shards,
        DataInfo((2,), targets=TargetFacts.of(np.array([0.0, 1.0, 0.0]))),
        X3,
        ({"source": "shards"}, "source shards needs path"),
    ),
    # what a spec without a data section gets: shapes come from model.input_shape, reading is an error
    "none": (
        {"source": "none"},
        None,
        DataInfo(None),
        None,
        ({"source": "none", "path": "a.csv"}, "reads no examples"),
    ),
}


def test_the_registry_lists_exactly_the_sources():
    assert DATA_SOURCES.names() == ["builtin", "csv", "hf", "images", "inline", "none", "npz", "parquet", "shards"]
    assert sorted(CASES) == DATA_SOURCES.names()  # a new source needs a row in CASES


def test_every_module_of_the_package_registers_a_source():
    modules = {m.name for m in pkgutil.iter_modules(nnctl.data.sources.__path__)} - {"base"}
    assert modules == {type(s).__module__.rsplit(".", 1)[1] for _, s in DATA_SOURCES.items()}
    assert all(DATA_SOURCES.get(n).name == n for n in DATA_SOURCES.names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_source_checks_peeks_and_reads(tmp_path, name):
    spec_dict, write, info, x, (bad, message) = CASES[name]
    if write:
        write(tmp_path)
    spec = DataSpec(**spec_dict)
    source = DATA_SOURCES.get(source_kind(spec.source))
    assert source.name == name
    source.check(spec)
    with pytest.raises(ValueError, match=message):
        source.check(DataSpec.model_construct(**bad))
    with pytest.raises(ValidationError, match=message):  # the spec validator delegates to the source
        DataSpec(**bad)
    assert source.peek(spec, tmp_path) == info == peek(spec, tmp_path)
    if x is None:
        with pytest.raises(DataError, match="this spec has no data"):
            read(spec, tmp_path, 0)
        return
    raw = source.read(spec, tmp_path, 0)
    assert raw.x.dtype == np.float32
    np.testing.assert_array_equal(raw.x, x)
    assert len(raw.y) == len(x)
    again = read(spec, tmp_path, 0)
    np.testing.assert_array_equal(again.x, raw.x)
    np.testing.assert_array_equal(again.y, raw.y)


@pytest.mark.parametrize(
    "value, fragment",
    [
        (
            "bogus",
            "unknown data source 'bogus'. Use builtin:<name>, inline, csv, npz, images, parquet, hf, shards or none",
        ),
        ("cvs", "unknown data source 'cvs'. Did you mean 'csv'?"),
        ("builtin", "unknown data source 'builtin'."),
        ("csv:x", "unknown data source 'csv:x'. Did you mean 'csv'?"),
        ("builtin:xorr", "unknown built-in dataset 'xorr'. Did you mean 'xor'? Choices: and, "),
    ],
)
def test_unknown_source_names_the_choices(value, fragment):
    with pytest.raises(ValueError) as e:
        check_source(value)
    assert fragment in str(e.value)


@pytest.mark.parametrize("value", ["inline", "csv", "npz", "builtin:iris", "builtin:waveforms"])
def test_known_sources_pass(value):
    assert check_source(value) == value


@pytest.mark.parametrize(
    "name, write, expect",
    [
        ("new.csv", lambda p: p.write_text("b,a\n4,3\n2,1\n"), "csv"),
        ("new.txt", lambda p: p.write_text("b,a\n4,3\n2,1\n"), "csv"),  # any unclaimed suffix is read as text
        ("new.npz", lambda p: np.savez(p, x=np.array([[3, 4], [1, 2]])), "npz"),
        ("new.parquet", lambda p: _parquet_inputs(p), "parquet"),
    ],
)
def test_read_inputs_dispatches_by_suffix(tmp_path, name, write, expect):
    p = tmp_path / name
    write(p)
    assert input_source(p).name == expect
    spec = DataSpec(**CASES[expect][0])
    data = types.SimpleNamespace(imputer=Imputer(None), layout=CsvLayout(("a", "b"), {}), input_shape=(2,))
    x = read_inputs(str(p), spec, data)
    np.testing.assert_array_equal(x, np.array([[3, 4], [1, 2]], np.float32))
    assert x.dtype == np.float32


def _parquet_inputs(p: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"b": [4, 2], "a": [3.0, 1.0]}), p)


def _imports(path: Path) -> list[tuple[ast.AST, str, bool]]:
    """(node, imported module, at module level) for every import in a file of nnctl.data."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node, a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node, node.module, id(node) in top))
    return out


# optional third-party readers, imported inside the one source that needs them: every process imports all sources
LAZY_THIRD_PARTY = {"PIL", "pyarrow", "datasets", "pandas"}
DATA_DIR = Path(nnctl.data.__file__).parent
DATA_FILES = sorted(DATA_DIR.rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(DATA_DIR.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_data_package_imports_at_module_level_only():
    lazy = [(p.name, m) for p in DATA_FILES for _, m, at_top in _imports(p) if not at_top]
    assert all(m.split(".")[0] in LAZY_THIRD_PARTY for _, m in lazy), lazy


def test_no_import_cycle_within_nnctl_data():
    modules = {_module(p) for p in DATA_FILES}
    graph = {_module(p): {m for _, m, _ in _imports(p) if m in modules} for p in DATA_FILES}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, f"import cycle: {' -> '.join(stack + [m, n])}"
            if n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
