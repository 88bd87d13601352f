"""Model kinds (`model.type`): each is one module here that registers a `ModelKind` in `MODEL_KINDS`.

A kind owns its parts (the layer lists of `model:`), its network, its objective, its spec checks, its
inspect rows and what `sample` / `predict --encode` can do with a trained run. Importing this package
registers every module in it, so a new kind is one new file."""

from __future__ import annotations

import importlib
import pkgutil

from nnctl.kinds.base import MODEL_KINDS, BuildContext, ModelKind, part_shapes

# sequential (the default) first, then the others by name: the order of choices in messages and docs
for _m in sorted(
    (m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"), key=lambda n: (n != "sequential", n)
):
    importlib.import_module(f"{__name__}.{_m}")

__all__ = ["MODEL_KINDS", "BuildContext", "ModelKind", "part_shapes"]
