"""Property-based fuzzing of the spec loader, from mutations of the valid specs in specs/: every input is
either a valid spec or a SpecError, never another exception. Also the loader's limits (YAML bombs, deep
nesting, huge documents), which must be refused quickly.

Profiles (environment variable NNCTL_FUZZ):
    ci    (default) 100 examples per property, no deadline: a few seconds
    long  5,000 examples per property: `NNCTL_FUZZ=long pytest tests/test_fuzz.py` (minutes; run locally
          after touching nnctl/spec/)
"""

from __future__ import annotations

import copy
import os
import time

import pytest
import yaml
from conftest import SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnctl.errors import SpecError
from nnctl.spec import load_text

PROFILES = {"ci": 100, "long": 5000}
EXAMPLES = PROFILES[os.environ.get("NNCTL_FUZZ", "ci")]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SPEC_FILES = sorted(SPECS.glob("*.yaml"))
VALID = {p.name: yaml.safe_load(p.read_text()) for p in SPEC_FILES}
TEXTS = {p.name: p.read_text() for p in SPEC_FILES}

odd_text = st.text(
    alphabet=st.sampled_from(
        list("aZ_-.:/*[]{}#&!|>%@` \t'\"\\")
        + ["\u0000", "\u200b", "\u202e", "\ufeff", "é", "𝔘", "🙂", "\ud7ff", "\u2028", "Ω"]
    ),
    max_size=12,
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    odd_text,
    st.sampled_from(["full", "auto", "dense", "adam", "relu", "builtin:xor", "inline", "1e999"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=3)),
    max_leaves=8,
)


def paths(node, prefix=()):
    """Every key path of a parsed document (mapping keys and list indices)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def get(node, path):
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(VALID)))
    doc = copy.deepcopy(VALID[name])
    for _ in range(draw(st.integers(1, 4))):
        ps = [p for p in paths(doc) if p]
        if not ps:
            break
        path = draw(st.sampled_from(ps))
        parent, key = get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "retype", "rename", "nest", "huge", "duplicate"]))
        if op == "delete":
            del parent[key]
        elif op == "retype":
            parent[key] = draw(values)
        elif op == "rename" and isinstance(parent, dict):
            new = draw(
                st.one_of(
                    odd_text,
                    st.sampled_from([str(key) + "s", str(key)[:-1], str(key).upper(), "type", "units", "layers", "0"]),
                )
            )
            parent[new] = parent.pop(key)
        elif op == "nest":
            inner = parent[key]
            for _ in range(draw(st.integers(1, 80))):
                inner = draw(st.sampled_from([[inner], {"x": inner}]))
            parent[key] = inner
        elif op == "huge":
            parent[key] = draw(
                st.sampled_from([10**30, -(10**30), 1e308, -1e308, 2**63, float("inf"), float("nan"), -1, 0, "9" * 400])
            )
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(parent[key]))
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()), sort_keys=False)


@st.composite
def text_mutated(draw):
    """Line-level edits of the original text: duplicated keys, deleted lines, odd characters, anchors."""
    text = TEXTS[draw(st.sampled_from(sorted(TEXTS)))]
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["dup", "del", "char", "indent", "alias"]))
        if op == "dup":
            lines.insert(i, lines[i])
        elif op == "del":
            del lines[i]
            if not lines:
                lines = [""]
        elif op == "char":
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + draw(odd_text) + lines[i][j:]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["  ", "\t", " "])) + lines[i]
        else:
            lines[i] = lines[i].replace(": ", ": &a ", 1) + "\nbogus: *a"
    return "\n".join(lines) + "\n"


def load_or_spec_error(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml", base_dir=SPECS)
    except SpecError as e:
        assert e.problems and all(str(p) for p in e.problems)


@FUZZ
@given(mutated())
def test_mutated_specs_are_valid_or_spec_errors(text):
    load_or_spec_error(text)


@FUZZ
@given(text_mutated())
def test_text_mutations_are_valid_or_spec_errors(text):
    load_or_spec_error(text)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_is_valid_or_spec_error(text):
    load_or_spec_error(text)


def test_original_specs_are_valid():
    for name, text in TEXTS.items():
        load_text(text, name, base_dir=SPECS, require_sources=False)


# ------------------------------------------------------------------------------------------- limits


def refused(text: str, fragment: str, seconds: float = 5.0) -> SpecError:
    t = time.perf_counter()
    with pytest.raises(SpecError) as e:
        load_text(text, "bomb.yaml")
    assert time.perf_counter() - t < seconds, "took too long to refuse"
    assert fragment in str(e.value), str(e.value)
    assert str(e.value).startswith("bomb.yaml:")
    return e.value


def test_billion_laughs_is_refused_quickly():
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    refused("\n".join(levels) + "\n", "expands to more than 200,000 values")


def test_quadratic_blowup_via_merge_keys_is_refused():
    text = "a: &a {" + ", ".join(f"k{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in range(100)) + "}\n"
    text += "b: [" + ", ".join(["*a"] * 2000) + "]\n"
    refused(text, "expands to more than")


def test_deep_nesting_is_refused():
    refused("a: " + "[" * 5000 + "]" * 5000 + "\n", "nests deeper than 64 levels")
    refused("a: " + "{a: " * 500 + "1" + "}" * 500 + "\n", "nests deeper than 64 levels")
    refused("a: &x [1, *x]\n", "nests deeper than 64 levels")  # self-referencing alias


def test_huge_document_is_refused():
    refused("name: " + "x" * 3_000_000 + "\n", "refusing to load it")


def test_quoted_brackets_are_not_nesting():
    with pytest.raises(SpecError, match="missing required key 'model'"):  # read as text: a valid name
        load_text("name: '" + "[" * 200 + "'\n# " + "{" * 200 + "\n", "ok.yaml")


def test_python_tags_never_construct_objects(tmp_path):
    marker = tmp_path / "pwned"
    for text in (
        f"seed: !!python/object/apply:os.system ['touch {marker}']\n",
        "seed: !!python/name:os.system\n",
        f"data: !!python/object/new:os.system ['touch {marker}']\n",
    ):
        with pytest.raises(SpecError):
            load_text(text, "evil.yaml")
    assert not marker.exists()
