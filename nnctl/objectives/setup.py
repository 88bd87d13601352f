"""From a spec to its objective, for `nnctl.run.build`: vae and gan models, and the extensions of
supervised training (activity regularizers, corruption, augmentation, param_groups, init_from)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax

from nnctl.objectives.specs import regularizer_keys


def all_layers(model_spec) -> list:
    from nnctl.spec.models import MODEL_PARTS
    return [layer for part in MODEL_PARTS[model_spec.type] for layer in (getattr(model_spec, part) or [])]


def objective_for(loaded, data, net, obj, params_shape, total_steps: int, steps_per_epoch: int):
    """The objective of the spec; `obj` is the plain Supervised one built for sequential models (else None)."""
    spec = loaded.spec
    m, t, d = spec.model, spec.train, spec.data
    if m.type == "vae":
        obj = _vae(spec, data, net, params_shape, total_steps, steps_per_epoch)
    elif m.type == "gan":
        obj = _gan(spec, net, params_shape, total_steps, steps_per_epoch)
    else:
        if t.regularizers or d.corruption is not None or d.augment or data.task == "autoencoder":
            from nnctl.objectives.regularized import Regularized
            base = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            obj = Regularized(**base, activity=tuple(zip(regularizer_keys(t.regularizers), t.regularizers)),
                              corruption=d.corruption, augment=tuple(d.augment),
                              autoencoder=data.task == "autoencoder")
        if t.param_groups:
            import optax

            from nnctl.transfer import scale_by_groups
            obj = dataclasses.replace(obj, tx=optax.chain(obj.tx, scale_by_groups(params_shape, t.param_groups)))
    if m.init_from:
        from nnctl.transfer import InitFrom
        obj = InitFrom(obj, m.init_from, loaded.base_dir)
    return obj


def _vae(spec, data, net, params_shape, total_steps, nb):
    from nnctl.model import frozen_layer_names, head_activation
    from nnctl.objectives.vae import VAE
    from nnctl.optim import build_chain

    m, t = spec.model, spec.train
    frozen_layers = frozen_layer_names(m.encoder, "encoder/") + frozen_layer_names(m.decoder, "decoder/")
    tx, frozen, lr = build_chain(t, params_shape, total_steps, nb, frozen_layers)
    head = head_activation(SimpleNamespace(layers=m.decoder), t.loss.type)
    return VAE(net, head, t.loss, tx, jax.tree.map(lambda f: not f, frozen), tuple(data.input_shape), m.latent_dim,
               m.beta, t.gradient_clipping, lr)


def _gan(spec, net, params_shape, total_steps, nb):
    from nnctl.losses import LOSSES
    from nnctl.objectives.gan import GAN
    from nnctl.optim import build_chain

    m, t = spec.model, spec.train
    chains = {}
    for part in ("generator", "discriminator"):
        tp = t.model_copy(update={"optimizer": getattr(t, part) or t.optimizer})
        chains[part] = build_chain(tp, params_shape[part], total_steps, nb, [])
    kind = "bce" if LOSSES.canonical(t.loss.type) == "binary_crossentropy" else "least_squares"
    return GAN(net, kind, chains["generator"][0], chains["discriminator"][0], m.latent_dim, m.conditional,
               t.gradient_clipping, chains["generator"][2])
