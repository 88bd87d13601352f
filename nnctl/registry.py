"""One registry per kind of thing a spec can name (layers, activations, initializers, losses, ...).

A registered *function* also gets a pydantic options model generated from its keyword arguments, so
`{type: leaky_relu, negative_slope: 0.1}` is validated (unknown keys, types, did-you-mean) and shows
up in the JSON Schema without writing the options twice.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from nnctl.errors import choices_text, did_you_mean

T = TypeVar("T")


class Strict(BaseModel):
    """Frozen, no unknown keys: the base of every spec object."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _shorthand(v: Any) -> Any:
    return {"type": v} if isinstance(v, str) else v


def ref_type(registry: FnRegistry) -> Any:
    """The spec type naming one of `registry`'s functions: `relu` or `{type: leaky_relu, negative_slope: 0.1}`.

    A pydantic discriminated union over the options models the registry generated, so unknown names, unknown
    options and bad option values are all validated, and the JSON Schema lists them.

    No static type describes that union (its members are generated at import time, and it also accepts the
    name/dict shorthand), so modules bind the result to their alias only at runtime and declare the alias as
    Any under TYPE_CHECKING."""

    members = tuple(registry.models.values())
    return Annotated[Union[members], Field(discriminator="type"), BeforeValidator(_shorthand)]


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = obj
            for a in aliases:
                self._aliases[a] = name
            return obj

        return deco

    def canonical(self, name: str) -> str:
        return self._aliases.get(name, name)

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) in self._items

    def get(self, name: str) -> T:
        key = self.canonical(name)
        if key not in self._items:
            raise KeyError(self.unknown_message(name))
        return self._items[key]

    def names(self, aliases: bool = True) -> list[str]:
        return sorted(self._items) + (sorted(self._aliases) if aliases else [])

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def unknown_message(self, name: str) -> str:
        return f"unknown {self.kind} '{name}'.{did_you_mean(name, self.names())} Choices: {choices_text(self.names())}"


class FnRegistry(Registry[Callable[..., Any]]):
    """A registry of functions whose keyword arguments are the options a spec may give."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.models: dict[str, type[BaseModel]] = {}

    def register(self, name: str, *aliases: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        inner = super().register(name, *aliases)

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            inner(fn)
            self.models[name] = options_model(self.kind, (name, *aliases), fn, Strict)
            return fn

        return deco

    def build(self, opts: Any, *args: Any, **extra: Any) -> Any:
        """Call the registered function with the options of a validated options model."""
        kwargs = {k: getattr(opts, k) for k in type(opts).model_fields if k != "type"}
        return self.get(opts.type)(*args, **kwargs, **extra)


def options_model(kind: str, names: tuple[str, ...], fn: Callable[..., Any], base: type[BaseModel]) -> type[BaseModel]:
    """A frozen pydantic model `{type: name, **keyword args of fn}` for a registered function.

    Positional-only parameters (the data the function works on) are skipped; every other parameter must
    have a default and an annotation, which become the option's default and type.
    """

    name = names[0]
    fields: dict[str, Any] = {"type": (Literal[names], ...)}
    for p in inspect.signature(fn, eval_str=True).parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name.startswith("_"):
            continue
        ann = p.annotation if p.annotation is not inspect.Parameter.empty else Any
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (ann, default)
    cls_name = "".join(w.capitalize() for w in f"{name}_{kind}".replace("-", "_").split("_"))
    model: type[BaseModel] = create_model(cls_name, __base__=base, **fields)
    model.__doc__ = " ".join((inspect.getdoc(fn) or f"{kind} {name}").split("\n\n")[0].split())  # 1st paragraph
    return model
