"""Spec checks of the learning setups (called by nnctl.spec.check): shapes through vae/gan parts,
regularizer layer names, corruption/augmentation against the input, param_groups globs."""

from __future__ import annotations

import fnmatch
import math

from nnctl.errors import choices_text, did_you_mean


def thread_model(loaded, input_shape, info):
    """(shapes, output shape for the data pipeline, problems, warnings) of a vae or gan model."""
    from nnctl.layers.graph import thread_shapes

    m = loaded.spec.model
    problems, warnings, shapes = [], [], {}

    def part(name, layers, shape):
        sh, out, ps, ws = thread_shapes(layers, shape)
        problems.extend(loaded.problem(("model", name) + p, msg) for p, msg in ps)
        warnings.extend(loaded.problem(("model", name) + p, msg) for p, msg in ws)
        shapes.update({f"{name}/{k}": v for k, v in sh.items() if k != "input"})
        return out

    if m.type == "vae":
        part("encoder", m.encoder, input_shape)
        out = part("decoder", m.decoder, (m.latent_dim,))
        if out is not None and math.prod(out) != math.prod(input_shape):
            problems.append(loaded.problem(("model", "decoder", len(m.decoder) - 1), (
                f"the decoder outputs {list(out)} ({math.prod(out)} values) but the inputs are {list(input_shape)} "
                f"({math.prod(input_shape)} values): the reconstruction must have the input's shape")))
        elif out is not None and tuple(out) != tuple(input_shape):
            problems.append(loaded.problem(("model", "decoder", len(m.decoder) - 1), (
                f"the decoder outputs {list(out)} but the inputs are {list(input_shape)}: add a reshape layer")))
        d = loaded.spec.data
        if d.task not in (None, "autoencoder"):
            problems.append(loaded.problem(("data", "task"), (
                f"a vae learns from the inputs alone (the target is the input): remove data.task or set "
                f"it to autoencoder, not {d.task}")))
        elif d.task is None:
            object.__setattr__(d, "task", "autoencoder")
        return shapes, tuple(input_shape), problems, warnings

    # gan
    nc = info.num_classes if info is not None else None
    extra = 0
    if m.conditional:
        if not nc:
            problems.append(loaded.problem(("model", "conditional"), (
                "a conditional gan needs class labels: use a labelled dataset (e.g. builtin:ring or digits)")))
        elif len(input_shape) != 1:
            problems.append(loaded.problem(("model", "conditional"), (
                f"a conditional gan appends the one-hot label to the input, which needs vector inputs, got "
                f"{list(input_shape)}")))
        else:
            extra = nc
    gen_out = part("generator", m.generator, (m.latent_dim + extra,))
    if gen_out is not None and tuple(gen_out) != tuple(input_shape):
        problems.append(loaded.problem(("model", "generator", len(m.generator) - 1), (
            f"the generator outputs {list(gen_out)} but the examples are {list(input_shape)}: its last layer "
            f"must produce an example" + (" (add a reshape layer)" if gen_out and math.prod(gen_out) ==
                                          math.prod(input_shape) else ""))))
    d_in = (input_shape[0] + extra,) if extra else tuple(input_shape)
    d_out = part("discriminator", m.discriminator, d_in)
    if d_out is not None and math.prod(d_out) != 1:
        problems.append(loaded.problem(("model", "discriminator", len(m.discriminator) - 1), (
            f"the discriminator must output one value (a real/fake logit) per example, got {list(d_out)}: "
            f"end with {{type: dense, units: 1}}")))
    out = (nc,) if nc else (1,)
    if loaded.spec.data.task is None and not nc:
        object.__setattr__(loaded.spec.data, "task", "autoencoder")  # unlabelled: keep y = x, unused
    return shapes, out, problems, warnings


def check_setups(loaded, input_shape, info, shapes):
    """Problems and warnings of regularizers, corruption, augmentation, param_groups and model types."""
    spec = loaded.spec
    t, d, m = spec.train, spec.data, spec.model
    problems, warnings = [], []
    kind = m.type
    if kind != "sequential":
        for key, used in (("regularizers", t.regularizers), ("param_groups", t.param_groups),
                          ("class_weight", t.class_weight)):
            if used:
                problems.append(loaded.problem(("train", key), f"train.{key} is not supported for {kind} models yet"))
        if d.corruption is not None:
            problems.append(loaded.problem(("data", "corruption"), f"data.corruption is for autoencoders "
                                                                   f"(sequential models), not {kind}"))
        if d.augment:
            problems.append(loaded.problem(("data", "augment"), f"data.augment is not supported for {kind} models yet"))
    from nnctl.losses import LOSSES
    loss = LOSSES.canonical(t.loss.type)
    allowed = {"gan": ("binary_crossentropy", "least_squares", "mse"),
               "vae": ("mse", "mae", "binary_crossentropy", "huber", "least_squares")}.get(kind)
    if allowed and loss not in allowed:
        names = ["bce (non-saturating)", "least_squares (LSGAN)"] if kind == "gan" else \
            ["mse", "mae", "binary_crossentropy", "huber"]
        problems.append(loaded.problem(("train", "loss"), f"a {kind} takes loss {' or '.join(names)}, not {t.loss.type}"))
    if m.init_from:
        from pathlib import Path
        src = Path(m.init_from).expanduser()
        if not (src / "weights.msgpack").exists() and not (Path(loaded.base_dir) / src / "weights.msgpack").exists():
            (problems if loaded.require_sources else warnings).append(loaded.problem(("model", "init_from"), (
                f"'{m.init_from}' is not a finished run directory (no weights.msgpack there): train the source "
                f"spec first, or fix the path (relative to the working directory or the spec file)")))
    if kind != "sequential":
        if t.metrics:
            own = "reconstruction, kl" if kind == "vae" else "d_loss, g_loss, d_real, d_fake"
            problems.append(loaded.problem(("train", "metrics"), (
                f"a {kind} logs its own quantities ({own}); train.metrics are not computed for it: remove them")))
        for part in ("encoder", "decoder", "generator", "discriminator"):
            for i, layer in enumerate(getattr(m, part) or []):
                if getattr(layer, "kernel_regularizer", None) is not None:
                    problems.append(loaded.problem(("model", part, i, "kernel_regularizer"), (
                        f"kernel_regularizer is not supported in {kind} models yet (use train.weight_decay)")))
        if getattr(t, "precision", None) not in (None, "fp32", "float32"):
            problems.append(loaded.problem(("train", "precision"), f"precision {t.precision} is not supported for "
                                                                   f"{kind} models yet"))
    if kind == "gan" and t.freeze:
        problems.append(loaded.problem(("train", "freeze"), "train.freeze is not supported for gan models yet"))
    if kind != "gan":
        for key in ("generator", "discriminator"):
            if getattr(t, key) is not None:
                problems.append(loaded.problem(("train", key), f"train.{key} is the optimizer of a gan's "
                                                               f"{key}; this model is {kind}"))
    if kind == "sequential":
        names = [n for n in shapes if n != "input"]
        acts = {layer.name: layer.activation for layer in m.layers}
        for i, r in enumerate(t.regularizers):
            if r.layer not in names:
                problems.append(loaded.problem(("train", "regularizers", i, "layer"), (
                    f"unknown layer '{r.layer}'.{did_you_mean(r.layer, names)} Layers: {choices_text(names)}")))
            elif r.type == "activity_kl":
                a = acts.get(r.layer)
                if a is None or a.type != "sigmoid":
                    warnings.append(loaded.problem(("train", "regularizers", i), (
                        f"activity_kl treats activations as probabilities; layer '{r.layer}' is not sigmoid "
                        f"(values are clipped to (0, 1))")))
        if d.corruption is not None and d.task != "autoencoder":
            problems.append(loaded.problem(("data", "corruption"), (
                "data.corruption trains a denoising autoencoder: set data.task: autoencoder (for noisy "
                "inputs in supervised training use data.augment: [{type: gaussian_noise, ..}])")))
        from nnctl.augment import shape_problem
        for i, a in enumerate(d.augment):
            msg = shape_problem(a, input_shape) if input_shape is not None else None
            if msg:
                problems.append(loaded.problem(("data", "augment", i), msg))
    return problems, warnings


def check_param_groups(loaded, paths):
    problems = []
    for i, g in enumerate(loaded.spec.train.param_groups):
        if not any(fnmatch.fnmatchcase(p, g.params) for p in paths):
            problems.append(loaded.problem(("train", "param_groups", i, "params"), (
                f"'{g.params}' matches no parameter.{did_you_mean(g.params, paths)} "
                f"Parameters: {choices_text(paths, 12)}")))
    return problems
