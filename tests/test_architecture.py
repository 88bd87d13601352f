"""The shape of the code: imports go one way, down the floors; lazy imports only in the CLI; small modules.

The floors (each imports only from floors below it; see docs/DESIGN.md):
  cli -> app -> spec -> kinds -> objectives -> engine -> data -> layers -> components -> base.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "nnctl"

# Function-local imports outside nnctl/cli, each with its reason. Keep this list short.
LAZY_ALLOWED = {
    ("nnctl.data.sources.images", "PIL"): "Pillow is needed by image sources only; every process imports all sources",
    ("nnctl.data.sources.parquet", "pyarrow.parquet"): "an optional dependency (the data extra), slow to import",
    ("nnctl.data.sources.parquet", "pyarrow.types"): "as pyarrow.parquet",
    ("nnctl.data.sources.hf", "datasets"): "an optional dependency that takes about a second to import",
    ("nnctl.data.csv_table", "pandas"): "pandas costs ~0.9 s to import; only specs that read a CSV need it",
    ("nnctl.data.convert_read", "pandas"): "as nnctl.data.csv_table: only nnctl data convert of a CSV needs it",
    ("nnctl.logs", "tensorboardX"): "an optional log sink (train.log: [tensorboard]); its import pulls in protobuf",
    ("nnctl.app.weights_files", "torch"): "the user's own PyTorch install, only to read a .pt state_dict (init_from)",
    ("nnctl.app.weights_files", "safetensors"): "the weights extra, only when init_from reads a .safetensors file",
    ("nnctl.app.weights_files", "safetensors.numpy"): "as safetensors",
    ("nnctl.app.weights_files", "h5py"): "the weights extra, only when init_from reads a Keras .weights.h5 file",
}
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 70


def _modules() -> dict[str, ast.Module]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out[name] = ast.parse(f.read_text(encoding="utf-8"), str(f))
    return out


def _imports(name: str, tree: ast.Module, is_pkg: bool):
    """(imported module, inside a function?) for every import statement of a module."""
    parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                targets = [".".join(base + ([node.module] if node.module else []))]
            else:
                targets = [node.module or ""]
        else:
            continue
        p, local = parents.get(node), False
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                local = True
                break
            p = parents.get(p)
        for t in targets:
            yield t, local


def _unit(module: str) -> str:
    """The package-level unit of a module: nnctl.layers.conv -> layers, nnctl.optim -> optim."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _graph():
    mods = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    lazy = []
    for name, tree in mods.items():
        is_pkg = (PKG.parent / Path(*name.split("."))).is_dir()
        for target, local in _imports(name, tree, is_pkg):
            if target.startswith("nnctl") and _unit(target) != _unit(name):
                edges[_unit(name)].add(_unit(target))
            if local and not name.startswith("nnctl.cli"):
                lazy.append((name, target))
    return edges, lazy


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_packages():
    edges, _ = _graph()
    assert _cycles(edges) == []


def test_nothing_below_imports_the_cli():
    edges, _ = _graph()
    assert [u for u, targets in edges.items() if "cli" in targets and u not in ("cli", "__main__")] == []


def test_function_local_imports_only_in_the_cli():
    _, lazy = _graph()
    unexplained = [(m, t) for m, t in lazy if (m, t) not in LAZY_ALLOWED]
    assert unexplained == [], "import at the top of the module (or allow-list it here with the reason)"


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_and_functions_stay_small():
    big_modules, big_functions = [], []
    for f in sorted(PKG.rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            big_modules.append((str(f.relative_to(PKG)), text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    big_functions.append((f"{f.relative_to(PKG)}:{node.name}", n))
    assert big_modules == [] and big_functions == []
