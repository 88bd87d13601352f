"""Parameter paths as `train.freeze`, `param_groups`, `inspect params` and `model.init_from` see them:
`dense_0/kernel`, `encoder/conv2d_1/bias`."""

from __future__ import annotations

from typing import Any

import jax


def path_str(path: tuple) -> str:
    """A jax key path as 'a/b/c'."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def param_paths(params: Any) -> list[str]:
    """Every leaf's path, in tree order."""
    return [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def flat(tree: Any) -> dict[str, Any]:
    """{path: leaf} of a tree."""
    return {path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}
