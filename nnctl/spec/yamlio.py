"""Safe YAML loading that remembers where every key and value came from.

Only plain data is built (mappings, sequences, scalars: no tags that construct objects). Anchors and
aliases work, but the expanded document is limited in size and depth, so a "billion laughs" document is
refused quickly instead of eating the machine's memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from nnctl.errors import Problem, SpecError

MAX_NODES = 200_000  # scalars + containers after alias expansion
MAX_DEPTH = 64
MAX_BYTES = 2_000_000  # a spec is a few KB; big data belongs in a csv/npz file

Path = tuple  # of str | int


@dataclass
class Located:
    """Parsed data plus the (line, col) of each value and each mapping key, by key path."""

    data: Any
    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, key: bool = False) -> tuple[int | None, int | None]:
        table = self.keys if key and path in self.keys else self.values
        p = tuple(path)
        while p and p not in table:
            p = p[:-1]
            table = self.values
        return table.get(p, (None, None))


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Builder:
    def __init__(self, file: str):
        self.out = Located(None, file)
        self.count = 0

    def fail(self, node: yaml.Node, message: str) -> SpecError:
        return SpecError([Problem("", message, self.out.file, node.start_mark.line + 1, node.start_mark.column + 1)])

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                node,
                f"the document expands to more than {MAX_NODES:,} values (nested anchors/aliases?); "
                "refusing to load it",
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, f"the document nests deeper than {MAX_DEPTH} levels; refusing to load it")
        self.out.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            raise self.fail(node, f"YAML tag '{node.tag}' is not allowed: specs hold plain data only")
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for k, v in node.value:
                if k.tag == "tag:yaml.org,2002:merge":  # `<<: *base`
                    merged = self.build(v, path, depth + 1)
                    for m in merged if isinstance(merged, list) else [merged]:
                        if isinstance(m, dict):
                            for mk, mv in m.items():
                                result.setdefault(mk, mv)
                    continue
                key = self._scalar(k)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise self.fail(k, "mapping keys must be plain names")
                key = str(key)
                if key in result:
                    raise self.fail(k, f"key '{key}' appears twice in the same mapping")
                self.out.keys[path + (key,)] = (k.start_mark.line + 1, k.start_mark.column + 1)
                result[key] = self.build(v, path + (key,), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        return self._scalar(node)

    @staticmethod
    def _scalar(node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node  # reported by the caller
        if node.tag == "tag:yaml.org,2002:str" and node.style is None and _FLOAT_12.fullmatch(node.value):
            return float(node.value)  # YAML 1.2: 3e-4 and 1e3 are numbers, as people write them
        return (
            yaml.SafeLoader.construct_scalar(_LOADER, node)
            if node.tag == "tag:yaml.org,2002:str"
            else _LOADER.construct_object(node, deep=True)
        )


_LOADER = yaml.SafeLoader("")
# YAML 1.2 core-schema floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a dot (3e-4, 1E3)
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


def read_spec_file(p: FsPath) -> str:
    """A spec file's text, read with the size cap applied while reading: a 1 GB file or a link to /dev/zero
    costs MAX_BYTES of reading, not the whole file."""
    try:
        if not p.is_file():  # a directory, a device, a fifo (which would block forever)
            if not p.exists():
                raise SpecError([Problem("", f"no such spec file: {p}", str(p))])
            raise SpecError([Problem("", f"{p} is not a regular file", str(p))])
        with open(p, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise SpecError(
                [Problem("", f"the spec is more than {MAX_BYTES:,} bytes long; refusing to load it", str(p), 1, 1)]
            )
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError([Problem("", f"cannot read the spec: {e}", str(p))]) from None


def load_yaml(text: str, file: str = "<spec>") -> Located:
    """Parse YAML text into plain data with positions; YAML syntax errors become SpecErrors."""
    if len(text) > MAX_BYTES:
        raise SpecError(
            [
                Problem(
                    "",
                    f"the spec is {len(text):,} characters long, more than {MAX_BYTES:,}; refusing "
                    "to load it (put large data in a csv or npz file)",
                    file,
                    1,
                    1,
                )
            ]
        )
    deep = _flow_depth(text)
    if deep is not None:
        line = text.count("\n", 0, deep) + 1
        col = deep - (text.rfind("\n", 0, deep) + 1) + 1
        raise SpecError(
            [Problem("", f"the document nests deeper than {MAX_DEPTH} levels; refusing to load it", file, line, col)]
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise SpecError([Problem("", "the document nests too deeply; refusing to load it", file)]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos: tuple[int | None, int | None] = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SpecError([Problem("", f"invalid YAML: {e.problem or e}", file, *pos)]) from None
    except yaml.YAMLError as e:
        raise SpecError([Problem("", f"invalid YAML: {e}", file)]) from None
    b = _Builder(file)
    if node is None:
        b.out.data = None
        return b.out
    try:
        b.out.data = b.build(node, (), 0)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        raise SpecError(
            [
                Problem(
                    "",
                    f"unsupported YAML value: {e.problem}",
                    file,
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                )
            ]
        ) from None
    return b.out


_FLOW = __import__("re").compile(r"[\[\]{}'\"#\n]")


def _flow_depth(text: str) -> int | None:
    """Offset of the first `[`/`{` nested deeper than MAX_DEPTH (quotes and comments skipped), else None.
    Checked before parsing: PyYAML's parser recurses per level and is slow on deep flow nesting."""
    depth, quote, comment = 0, None, False
    for m in _FLOW.finditer(text):
        c = m.group()
        if comment:
            comment = c != "\n"
        elif quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#":
            comment = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return m.start()
        elif c in "]}":
            depth = max(0, depth - 1)
    return None


def parse_scalar(text: str) -> Any:
    """A `--set` value: parsed as a YAML scalar/flow value ("0.1" -> 0.1, "[1, 2]" -> [1, 2])."""
    try:
        return load_yaml(text, "--set").data
    except SpecError:
        return text
