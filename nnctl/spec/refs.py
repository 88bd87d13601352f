"""Spec types that name a registered function: `relu` or `{type: leaky_relu, negative_slope: 0.1}`.

Each is a pydantic discriminated union over the options models the registry generated, so unknown
names, unknown options and bad option values are all validated, and the JSON Schema lists them.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field

from nnctl.activations import ACTIVATIONS
from nnctl.initializers import INITIALIZERS
from nnctl.registry import FnRegistry


def _shorthand(v: Any) -> Any:
    return {"type": v} if isinstance(v, str) else v


def ref_type(registry: FnRegistry) -> Any:
    members = tuple(registry.models.values())
    return Annotated[Union[members], Field(discriminator="type"), BeforeValidator(_shorthand)]  # type: ignore


ActivationRef = ref_type(ACTIVATIONS)
InitRef = ref_type(INITIALIZERS)
