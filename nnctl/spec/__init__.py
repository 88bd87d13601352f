"""Loading a spec: YAML (with positions) -> overrides -> pydantic objects -> whole-model checks.

Every mistake found is reported in one pass as `file:line:col: key.path: message`.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any, TypeGuard

from pydantic import BaseModel, ValidationError

from nnctl.errors import Problem, SpecError, choices_text, did_you_mean
from nnctl.spec.check import Analysis, check_spec
from nnctl.spec.models import Spec
from nnctl.spec.yamlio import Located, load_yaml, parse_scalar, read_spec_file

__all__ = ["Loaded", "load_spec", "load_text", "format_path", "SpecError"]


def format_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass
class Loaded:
    """A validated spec and where it came from (for located messages and relative data paths)."""

    spec: Spec
    located: Located
    base_dir: FsPath
    overridden: dict[tuple, str] = field(default_factory=dict)
    # False for `validate`/`inspect`: artefacts the spec refers to (model.init_from) may not exist yet,
    # which is a warning there; training needs them, so it is an error by default.
    require_sources: bool = True
    analysis: Analysis | None = None  # shapes and warnings, once checked (load_text with check=True)

    @property
    def file(self) -> str:
        return self.located.file

    def problem(self, path: tuple, message: str, key: bool = False) -> Problem:
        return make_problem(self.located, self.overridden, path, message, key)


def make_problem(located: Located, overridden: dict, path: tuple, message: str, key: bool = False) -> Problem:
    for p, text in overridden.items():
        if path[: len(p)] == p:
            return Problem(format_path(path), message, f"--set {text}")
    line, col = located.where(path, key=key)
    return Problem(format_path(path), message, located.file, line, col)


# ------------------------------------------------------------------------------------------- overrides

_SEG = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_override(data: Any, text: str) -> tuple:
    """`train.optimizer.learning_rate=0.1` or `model.layers[0].units=8` (also `model.layers.0.units`)."""
    if "=" not in text:
        raise SpecError([Problem("", f"--set expects key.path=value, got '{text}'", "--set")])
    key, value = text.split("=", 1)
    parts: list[Any] = []
    for m in _SEG.finditer(key.strip()):
        tok = m.group(1) if m.group(1) is not None else m.group(2)
        parts.append(int(tok) if tok.isdigit() else tok)
    if not parts:
        raise SpecError([Problem("", f"--set has an empty key path: '{text}'", "--set")])
    node = data
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, dict):
            node = node.setdefault(p, [] if isinstance(nxt, int) else {})
        elif isinstance(node, list) and isinstance(p, int) and p < len(node):
            node = node[p]
        else:
            raise SpecError(
                [
                    Problem(
                        format_path(tuple(parts[: i + 1])),
                        f"--set cannot follow '{key}': no such item in the spec",
                        "--set",
                    )
                ]
            )
    last = parts[-1]
    if isinstance(node, dict):
        node[str(last)] = parse_scalar(value)
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = parse_scalar(value)
    else:
        raise SpecError([Problem(format_path(tuple(parts)), f"--set cannot set '{key}'", "--set")])
    return tuple(parts)


# ----------------------------------------------------------------------------------- pydantic -> problems


def _unwrap(ann: Any) -> tuple[Any, tuple]:
    meta: tuple = ()
    while typing.get_origin(ann) is typing.Annotated:
        meta += tuple(ann.__metadata__)
        ann = typing.get_args(ann)[0]
    return ann, meta


def _is_model(ann: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _step(ann: Any, el: Any) -> Any:
    ann, _ = _unwrap(ann)
    if ann is None:
        return None
    if _is_model(ann):
        f = ann.model_fields.get(el) if isinstance(el, str) else None
        return f.annotation if f else None
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (list, tuple) and isinstance(el, int):
        return args[0] if args else None
    if origin is dict:
        return args[1] if len(args) > 1 else None
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for m in args:
            inner, meta = _unwrap(m)
            if any(getattr(t, "tag", None) == el for t in meta):
                return m
            if _is_model(inner) and "type" in inner.model_fields:
                lit = typing.get_args(inner.model_fields["type"].annotation)
                if el in lit:
                    return inner
        for m in args:
            r = _step(m, el)
            if r is not None:
                return r
    return None


def _model_at(root: type, loc: tuple) -> type[BaseModel] | None:
    ann: Any = root
    for el in loc:
        nxt = _step(ann, el)
        if nxt is None:
            continue  # a union member name, or a tag: stay
        ann = nxt
    ann, _ = _unwrap(ann)
    if typing.get_origin(ann) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        models = [m for m in (_unwrap(a)[0] for a in typing.get_args(ann)) if _is_model(m)]
        ann = models[0] if len(models) == 1 else ann  # Optional[Model]: the model
    return ann if _is_model(ann) else None


def _clean_path(data: Any, loc: tuple) -> tuple:
    """The pydantic location without union tags: only the steps that exist in the data."""
    out: list[str | int] = []
    node = data
    for el in loc:
        # two branches (not one `or`), so that mypy narrows `node` and `el` together
        if isinstance(node, dict) and isinstance(el, str) and el in node:  # noqa: SIM114
            out.append(el)
            node = node[el]
        elif isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node):
            out.append(el)
            node = node[el]
    return tuple(out)


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text or "")


# Keys people write in the wrong place (Keras / PyTorch habits): (section, key) -> where it lives in a spec.
MOVED_KEYS = {
    ("train", "lr"): "train.optimizer.learning_rate",
    ("train", "learning_rate"): "train.optimizer.learning_rate",
    ("train", "momentum"): "train.optimizer.momentum",
    ("train", "validation_split"): "data.validation_split",
    ("train", "shuffle"): "data.shuffle",
    ("model", "loss"): "train.loss",
    ("model", "optimizer"): "train.optimizer",
    ("model", "epochs"): "train.epochs",
    ("data", "batch_size"): "train.batch_size",
}


def problems_from(err: ValidationError, root: type, located: Located, overridden: dict) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple] = set()
    for e in err.errors(include_url=False):
        loc, kind = tuple(e["loc"]), e["type"]
        path = _clean_path(located.data, loc)
        inp = e.get("input")
        as_key = False
        if kind == "extra_forbidden":
            model = _model_at(root, loc[:-1])
            allowed = list(model.model_fields if model else {})
            key = str(loc[-1])
            moved = MOVED_KEYS.get((path[0] if path else "", key.lower()))
            hint = f" Did you mean '{moved}'?" if moved else did_you_mean(key, allowed)
            msg = f"unknown key '{key}'.{hint}"
            if allowed:
                msg += f" Allowed keys: {choices_text(allowed)}"
            as_key = True
        elif kind == "missing":
            key = str(loc[-1])
            model = _model_at(root, loc[:-1])
            msg = f"missing required key '{key}'"
            if model is not None and "type" in model.model_fields and key != "type":
                lit = typing.get_args(model.model_fields["type"].annotation)
                if lit:
                    msg += f" for type '{lit[0]}'"
        elif kind == "union_tag_invalid":
            ctx = e.get("ctx", {})
            tags = _quoted(ctx.get("expected_tags", ""))
            tag = ctx.get("tag")
            what = path[-1] if path and isinstance(path[-1], str) else "type"
            if isinstance(what, str) and what == "type":
                what = path[-2] if len(path) > 1 and isinstance(path[-2], str) else "type"
            msg = f"unknown {_singular(what)} type '{tag}'.{did_you_mean(tag, tags)} Choices: {choices_text(tags)}"
            raw = _at(located.data, path)
            if isinstance(raw, dict) and "type" in raw:
                path = path + ("type",)
        elif kind == "union_tag_not_found":
            ctx = e.get("ctx", {})
            msg = f"missing key 'type' (one of: {choices_text(_choices_of(root, loc))})"
        elif kind == "literal_error":
            allowed = _quoted(e.get("ctx", {}).get("expected", ""))
            msg = f"{inp!r} is not allowed.{did_you_mean(str(inp), allowed)} Choices: {', '.join(allowed)}"
        elif kind in ("value_error", "assertion_error"):
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
        else:
            msg = f"{e['msg'][:1].lower()}{e['msg'][1:]}, got {_short(inp)}"
        if (path, kind) in seen or any(p[0] == path for p in seen if kind != "extra_forbidden"):
            continue
        seen.add((path, kind))
        problems.append(make_problem(located, overridden, path, msg, key=as_key))
    return problems


def _at(data: Any, path: tuple) -> Any:
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _choices_of(root: type, loc: tuple) -> list[str]:
    ann: Any = root
    for el in loc:
        nxt = _step(ann, el)
        ann = nxt if nxt is not None else ann
    ann, _ = _unwrap(ann)
    out = []
    for m in typing.get_args(ann):
        inner, _ = _unwrap(m)
        if _is_model(inner) and "type" in inner.model_fields:
            out += list(typing.get_args(inner.model_fields["type"].annotation))
    return out


def _singular(word: Any) -> str:
    w = str(word)
    return {
        "layers": "layer",
        "kernel_init": "initializer",
        "bias_init": "initializer",
        "learning_rate": "schedule",
    }.get(w, w)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


# ----------------------------------------------------------------------------------------------- loading


def load_text(
    text: str,
    file: str = "<spec>",
    overrides: tuple[str, ...] = (),
    base_dir: FsPath | None = None,
    check: bool = True,
    require_sources: bool = True,
) -> Loaded:
    """Parse, validate and (with `check`) whole-spec check a spec's text. Raises SpecError with every problem."""

    located = load_yaml(text, file)
    if located.data is None:
        raise SpecError([Problem("", "the spec is empty: it needs data, model and train sections", file, 1, 1)])
    if not isinstance(located.data, dict):
        raise SpecError([Problem("", "a spec is a mapping with data, model and train sections", file, 1, 1)])
    overridden = {}
    for o in overrides:
        overridden[apply_override(located.data, o)] = o
    try:
        spec = Spec.model_validate(located.data)
    except ValidationError as err:
        raise SpecError(problems_from(err, Spec, located, overridden)) from None
    loaded = Loaded(spec, located, base_dir or FsPath("."), overridden, require_sources)
    return replace(loaded, analysis=check_spec(loaded)) if check else loaded


def load_spec(
    path: str | FsPath, overrides: tuple[str, ...] = (), check: bool = True, require_sources: bool = True
) -> Loaded:
    p = FsPath(path)
    if p.is_dir() and (p / "spec.yaml").exists():  # a run directory
        p = p / "spec.yaml"
    text = read_spec_file(p)
    return load_text(text, str(p), tuple(overrides), p.parent, check, require_sources)
