"""From a model spec to a Flax module and its (abstract) variables."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from nnctl.layers.graph import Network


def build_network(model_spec: Any, num_classes: int | None = None) -> Network:
    """The model's module; vae and gan models hold two networks (nnctl.objectives.nets)."""
    if model_spec.type != "sequential":
        from nnctl.objectives.nets import build_composite
        return build_composite(model_spec, num_classes)
    return Network(tuple(model_spec.layers))


def init_variables(net: Network, input_shape: tuple, key) -> dict:
    """Concrete variables ({'params': ..., 'batch_stats': ...}), jitted so init is one compile."""
    x = jnp.zeros((1, *input_shape), jnp.float32)
    return jax.jit(lambda k: net.init({"params": k, "dropout": k}, x, train=False))(key)


def abstract_variables(net: Network, input_shape: tuple) -> dict:
    """Shapes and dtypes of every variable, without computing anything (jax.eval_shape)."""
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    k = jax.random.key(0)
    return jax.eval_shape(lambda key, x: net.init({"params": key, "dropout": key}, x, train=False), k, x)


def head_activation(model_spec: Any, loss: str | None = None):
    """The last layer's activation as a losses.Head (softmax/sigmoid heads let losses use logits).

    A last layer without activation under a cross-entropy loss is read as logits (like PyTorch's
    CrossEntropyLoss or Keras' from_logits=True): softmax (sigmoid for binary_crossentropy) is the head.
    """
    import jax

    from nnctl import activations
    from nnctl.losses import LOSSES, Head

    act = model_spec.layers[-1].activation
    if act is None or activations.ACTIVATIONS.canonical(act.type) == "linear":
        loss = LOSSES.canonical(loss) if loss else None
        if loss == "categorical_crossentropy":
            return Head("softmax", lambda z: jax.nn.softmax(z, -1))
        if loss == "binary_crossentropy":
            return Head("sigmoid", jax.nn.sigmoid)
        return Head("linear", lambda z: z)
    name = activations.ACTIVATIONS.canonical(act.type)
    return Head(name, lambda z: activations.apply(act, z))


def frozen_layer_names(layers, prefix: str = "") -> list[str]:
    out = []
    for layer in layers:
        path = f"{prefix}{layer.name}"
        if not layer.trainable:
            out.append(path)
        out += frozen_layer_names(layer.children(), prefix=f"{path}/")
    return out
