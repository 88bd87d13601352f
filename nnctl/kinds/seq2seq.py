"""`model.type: seq2seq`: an encoder-decoder over sequences (nnctl.objectives.seq2seq). The encoder's last
layer is recurrent and hands its final state to the decoder's first recurrent layer (same cell and units).
The decoder is causal (embedding, dense, dropout, activation and one-directional recurrent layers returning
sequences) and ends in one distribution over the target classes per step. Trained with teacher forcing
(always: the true previous target token is the decoder input); evaluated and predicted free-running
(greedy). The data: source sequences x (N, steps) and target class sequences y (N, target steps)."""

from __future__ import annotations

from typing import Any

from nnctl.chain import build_chain
from nnctl.errors import DataError
from nnctl.kinds.base import BuildContext, ModelKind, part_shapes, register_kind
from nnctl.layers.base import LAYERS
from nnctl.layers.graph import INPUT
from nnctl.layers.recurrent import RECURRENT_TYPES
from nnctl.losses import head_activation
from nnctl.objectives.seq2seq import Seq2Seq, Seq2SeqNet

CAUSAL = ("embedding", "dense", "dropout", "activation", "simple_rnn", "lstm", "gru")


def _no(what: str, why: str) -> str:
    return f"{what} {why}; a seq2seq does not support it: remove it"


def _recurrent(layer: Any) -> bool:
    return LAYERS.canonical(layer.type) in RECURRENT_TYPES


def decoder_state_index(decoder: list) -> int | None:
    """The decoder's first recurrent layer: it starts from the encoder's final state."""
    return next((i for i, layer in enumerate(decoder) if _recurrent(layer)), None)


@register_kind
class Seq2seq(ModelKind):
    name = "seq2seq"
    parts = ("encoder", "decoder")
    doc = "sequence-to-sequence encoder-decoder: teacher-forced training, free-running (greedy) decoding"
    losses = ("categorical_crossentropy",)
    loss_names = "categorical_crossentropy (over the target classes of each step)"
    can_encode = False
    kernel_regularizer = "kernel_regularizer is not supported in a seq2seq (use train.weight_decay)"
    unsupported = (
        (("train", "generator"), "train.generator is a gan's optimizer; a seq2seq uses train.optimizer"),
        (("train", "discriminator"), "train.discriminator is a gan's optimizer; a seq2seq uses train.optimizer"),
        (("train", "class_weight"), _no("train.class_weight", "weights whole examples")),
        (("train", "regularizers"), _no("train.regularizers", "are activity penalties of sequential models")),
        (("train", "precision"), _no("train.precision", "would cast the token ids")),
        (("data", "corruption"), _no("data.corruption", "is not applied by the seq2seq objective")),
        (("data", "augment"), _no("data.augment", "is not applied by the seq2seq objective")),
        (
            ("train", "metrics"),
            _no(
                "train.metrics",
                "are fixed for a seq2seq (it reports loss, teacher_forced_accuracy, free_running_accuracy and "
                "free_running_sequence_accuracy)",
            ),
        ),
    )

    def network(self, model, num_classes):
        dec = decoder_state_index(model.decoder)
        return Seq2SeqNet(tuple(model.encoder), tuple(model.decoder), len(model.encoder) - 1, dec or 0)

    def thread(self, loaded, input_shape, info):
        m = loaded.spec.model
        sink: tuple[list, list, dict] = ([], [], {})
        problems = sink[0]
        for part in self.parts:
            problems.extend(_chain_problems(loaded, part, getattr(m, part)))
        part_shapes(loaded, "encoder", m.encoder, tuple(input_shape), sink)
        problems.extend(_state_problems(loaded, m.encoder, m.decoder))
        steps = tuple(input_shape[:1])  # a placeholder: the decoder's shapes do not depend on the target's length
        out = part_shapes(loaded, "decoder", m.decoder, steps, sink)
        classes = info.num_classes if info is not None else None
        if out is not None and (len(out) != 2 or (classes and out[-1] != classes)):
            want = f"{classes} classes" if classes else "the target classes"
            msg = f"the decoder must output one distribution over {want} per step, got {list(out)}"
            problems.append(loaded.problem(("model", "decoder", len(m.decoder) - 1), msg))
        if loaded.spec.data.task not in (None, "classification"):
            problems.append(loaded.problem(("data", "task"), "a seq2seq predicts target classes: remove data.task"))
        if loaded.spec.data.normalize != "none" and LAYERS.canonical(m.encoder[0].type) == "embedding":
            msg = "the encoder's embedding reads token ids: set data.normalize: none so they reach it unchanged"
            problems.append(loaded.problem(("data", "normalize"), msg))
        return sink[2], out, problems, sink[1]

    def implied_task(self, spec, info):
        return "classification"

    def objective(self, ctx: BuildContext) -> Seq2Seq:
        m, t, y = ctx.spec.model, ctx.spec.train, ctx.data.y_train
        if y.ndim != 2:
            raise DataError(
                f"a seq2seq needs target sequences (examples, steps) of class ids; the targets have shape "
                f"{list(y.shape)}",
                ("data",),
            )
        chain = build_chain(
            t, ctx.params_shape, ctx.total_steps, ctx.steps_per_epoch, self.frozen_layers(m), t.param_groups
        )
        return Seq2Seq(
            net=ctx.net,
            head=head_activation(m.decoder[-1].activation, t.loss.type),
            loss_opts=t.loss,
            chain=chain,
            num_classes=ctx.data.num_classes,
            steps=int(y.shape[1]),
            clip=t.gradient_clipping,
        )


def _chain_problems(loaded: Any, part: str, layers: list) -> list:
    """Each layer of a part reads the one before it (no branches), and none makes a mask."""
    problems, prev = [], INPUT
    for i, layer in enumerate(layers):
        if list(layer.inputs) != [prev]:
            msg = f"a seq2seq {part} is a chain: each layer reads the one before it (remove `inputs`)"
            problems.append(loaded.problem(("model", part, i, "inputs"), msg))
        if layer.makes_mask():
            msg = "masks of padded steps are not supported in a seq2seq: use fixed-length sequences"
            problems.append(loaded.problem(("model", part, i), msg))
        prev = layer.name
    return problems


def _state_problems(loaded: Any, encoder: list, decoder: list) -> list:
    """The encoder ends in a one-directional recurrent layer whose state fits the decoder's first recurrent
    layer; the decoder is causal."""
    problems = []
    last, where = encoder[-1], ("model", "encoder", len(encoder) - 1)
    if not _recurrent(last) or last.bidirectional:
        msg = "a seq2seq encoder ends in a one-directional recurrent layer (simple_rnn, lstm or gru): its final "
        problems.append(loaded.problem(where, msg + "state starts the decoder"))
        return problems
    for i, layer in enumerate(decoder):
        kind = LAYERS.canonical(layer.type)
        if kind not in CAUSAL:
            msg = (
                f"a seq2seq decoder must be causal (step t reads steps <= t only) for free-running decoding: "
                f"{layer.type} is not allowed; use {', '.join(CAUSAL)}"
            )
            problems.append(loaded.problem(("model", "decoder", i, "type"), msg))
        elif kind in RECURRENT_TYPES and (layer.bidirectional or not layer.return_sequences):
            msg = "a decoder's recurrent layer runs forwards over every step: return_sequences: true, no bidirectional"
            problems.append(loaded.problem(("model", "decoder", i), msg))
    first = decoder_state_index(decoder)
    if first is None:
        problems.append(loaded.problem(("model", "decoder"), "a seq2seq decoder needs a recurrent layer"))
    else:
        d = decoder[first]
        if LAYERS.canonical(d.type) != LAYERS.canonical(last.type) or d.units != last.units:
            msg = (
                f"the decoder's first recurrent layer starts from the encoder's final state: it must be a "
                f"{LAYERS.canonical(last.type)} of {last.units} units like '{last.name}'"
            )
            problems.append(loaded.problem(("model", "decoder", first), msg))
    return problems
