"""A catalogue of broken specs, one per mistake, across every section: each must give a SpecError whose
message holds the expected fragment at the expected `file:line:col`, and never a traceback (the CLI's
`validate` is run over the whole catalogue at once)."""

from __future__ import annotations

import pytest

from nnctl.errors import SpecError
from nnctl.spec import load_spec

BASE = """\
name: t
seed: 0
data:
  source: builtin:xor
model:
  layers:
    - {type: dense, units: 4, activation: tanh}
    - {type: dense, units: 1, activation: sigmoid}
train:
  loss: binary_crossentropy
  metrics: [accuracy]
  optimizer: {type: adam, learning_rate: 0.1}
  batch_size: full
  epochs: 5
"""

# (id, edit of BASE: (old, new) | [(old, new), ...] | whole text | None for empty, fragment, "line:col")
CASES = [
    ("data-source-unknown", ("builtin:xor", "bogus"), "unknown data source 'bogus'", "4:11"),
    (
        "model-init-from-nowhere",
        ("model:\n", "model:\n  init_from: /nonexistent/run\n"),
        "'/nonexistent/run' is not a finished run directory",
        "6:14",
    ),
    (
        "data-builtin-typo",
        ("builtin:xor", "builtin:xorr"),
        "unknown built-in dataset 'xorr'. Did you mean 'xor'?",
        "4:11",
    ),
    ("data-source-int", ("builtin:xor", "5"), "valid string", "4:11"),
    ("data-missing", ("data:\n  source: builtin:xor\n", ""), "this spec has no data", "1:1"),
    ("data-not-mapping", ("data:\n  source: builtin:xor\n", "data: [1, 2]\n"), "valid dictionary", "3:7"),
    (
        "data-unknown-key",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  shufle: true\n"),
        "unknown key 'shufle'. Did you mean 'shuffle'?",
        "5:3",
    ),
    (
        "data-val-split-big",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  validation_split: 1.5\n"),
        "less than 1",
        "5:21",
    ),
    (
        "data-val-split-neg",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  validation_split: -0.1\n"),
        "greater than or equal to 0",
        "5:21",
    ),
    (
        "data-splits-sum",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  validation_split: 0.6\n  test_split: 0.5\n"),
        "must leave some training data",
        "4:3",
    ),
    (
        "data-normalize-enum",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  normalize: zscore\n"),
        "'zscore' is not allowed. Choices: none, minmax, standard",
        "5:14",
    ),
    (
        "data-normalize-target-enum",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  normalize_target: log\n"),
        "'log' is not allowed",
        "5:21",
    ),
    (
        "data-shuffle-type",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  shuffle: maybe\n"),
        "valid boolean",
        "5:12",
    ),
    (
        "data-inline-no-x",
        ("  source: builtin:xor\n", "  source: inline\n  y: [0, 1]\n"),
        "source inline needs x",
        "4:3",
    ),
    ("data-csv-no-path", ("  source: builtin:xor\n", "  source: csv\n  target: y\n"), "source csv needs path", "4:3"),
    (
        "data-csv-missing-file",
        ("  source: builtin:xor\n", "  source: csv\n  path: nowhere.csv\n  target: y\n"),
        "no such CSV file",
        "5:9",
    ),
    (
        "data-npz-missing-file",
        ("  source: builtin:xor\n", "  source: npz\n  path: nowhere.npz\n  x: x\n  y: y\n"),
        "no such npz file",
        "5:9",
    ),
    (
        "data-npz-x-list",
        ("  source: builtin:xor\n", "  source: npz\n  path: a.npz\n  x: [1]\n  y: y\n"),
        "npz data needs x and y as array names",
        "4:3",
    ),
    (
        "data-n-samples-zero",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  n_samples: 0\n"),
        "greater than 0",
        "5:14",
    ),
    (
        "data-noise-neg",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  noise: -1\n"),
        "greater than or equal to 0",
        "5:10",
    ),
    (
        "data-task-enum",
        ("  source: builtin:xor\n", "  source: builtin:xor\n  task: multiclass\n"),
        "'multiclass' is not allowed",
        "5:9",
    ),
    (
        "data-inline-ragged",
        ("  source: builtin:xor\n", "  source: inline\n  x: [[1, 2], [3]]\n  y: [0, 1]\n"),
        "rows must be numbers, all of the same length",
        "4:3",
    ),
    (
        "data-inline-x-string",
        ("  source: builtin:xor\n", "  source: inline\n  x: abc\n  y: [0, 1]\n"),
        "inline data needs x and y as lists",
        "4:3",
    ),
    (
        "data-features-type",
        ("  source: builtin:xor\n", "  source: csv\n  path: a.csv\n  target: y\n  features: x1\n"),
        "valid list",
        "7:13",
    ),
    (
        "model-missing",
        (
            "model:\n"
            "  layers:\n"
            "    - {type: dense, units: 4, activation: tanh}\n"
            "    - {type: dense, units: 1, activation: sigmoid}\n",
            "",
        ),
        "missing required key 'model'",
        "1:1",
    ),
    (
        "model-no-layers",
        (
            "  layers:\n    - {type: dense, units: 4, activation: tanh}\n    - {type: dense, units: 1, activation: sigmoid}\n",
            "  input_shape: [2]\n",
        ),
        "needs layers",
        "6:3",
    ),
    (
        "model-layers-empty",
        (
            "  layers:\n    - {type: dense, units: 4, activation: tanh}\n    - {type: dense, units: 1, activation: sigmoid}\n",
            "  layers: []\n",
        ),
        "at least 1 item",
        "6:11",
    ),
    (
        "model-layers-not-list",
        (
            "  layers:\n    - {type: dense, units: 4, activation: tanh}\n    - {type: dense, units: 1, activation: sigmoid}\n",
            "  layers: {type: dense, units: 1}\n",
        ),
        "valid list",
        "6:11",
    ),
    (
        "layer-type-typo",
        ("    - {type: dense, units: 4, activation: tanh}", "    - {type: dens, units: 4}"),
        "unknown layer type 'dens'. Did you mean 'dense'?",
        "7:14",
    ),
    (
        "layer-no-type",
        ("    - {type: dense, units: 4, activation: tanh}", "    - {units: 4}"),
        "missing key 'type'",
        "7:7",
    ),
    ("layer-units-neg", ("units: 4", "units: -3"), "greater than 0", "7:28"),
    ("layer-units-str", ("units: 4", "units: four"), "valid integer", "7:28"),
    ("layer-units-float", ("units: 4", "units: 4.5"), "valid integer", "7:28"),
    ("layer-units-list", ("units: 4", "units: [4]"), "valid integer", "7:28"),
    ("layer-units-missing", ("units: 4, ", ""), "missing required key 'units' for type 'dense'", "7:7"),
    ("layer-activation-typo", ("activation: tanh", "activation: tanhh"), "tanhh", "7:43"),
    ("layer-unknown-key", ("units: 4", "unit: 4, units: 4"), "unknown key 'unit'. Did you mean 'units'?", "7:21"),
    (
        "layer-kernel-init-typo",
        ("activation: tanh", "activation: tanh, kernel_init: glorot_uniformm"),
        "glorot_uniformm",
        "7:62",
    ),
    (
        "layer-dropout-rate",
        (
            "    - {type: dense, units: 4, activation: tanh}",
            "    - {type: dense, units: 4, activation: tanh}\n    - {type: dropout, rate: 1.5}",
        ),
        "less than 1",
        "8:29",
    ),
    (
        "layer-dropout-missing-rate",
        (
            "    - {type: dense, units: 4, activation: tanh}",
            "    - {type: dense, units: 4, activation: tanh}\n    - {type: dropout}",
        ),
        "missing required key 'rate' for type 'dropout'",
        "8:7",
    ),
    (
        "layer-reshape-impossible",
        (
            "    - {type: dense, units: 4, activation: tanh}",
            "    - {type: reshape, shape: [3]}\n    - {type: dense, units: 4, activation: tanh}",
        ),
        "reshape",
        "7:7",
    ),
    (
        "layer-duplicate-name",
        (
            "    - {type: dense, units: 4, activation: tanh}",
            "    - {type: dense, units: 4, name: h}\n    - {type: dense, units: 4, name: h}",
        ),
        "'h'",
        "8:37",
    ),
    (
        "layer-inputs-unknown",
        (
            "    - {type: dense, units: 4, activation: tanh}",
            "    - {type: dense, units: 4, activation: tanh}\n    - {type: dense, units: 3, inputs: [nope]}",
        ),
        "nope",
        "8:39",
    ),
    ("layer-trainable-type", ("units: 4", "units: 4, trainable: sometimes"), "valid boolean", "7:42"),
    (
        "layer-regularizer-neg",
        ("units: 4", "units: 4, kernel_regularizer: {l2: -1}"),
        "greater than or equal to 0",
        "7:56",
    ),
    ("layer-not-mapping", ("    - {type: dense, units: 4, activation: tanh}", "    - dense"), "dense", "7:7"),
    ("model-input-shape-zero", ("model:\n", "model:\n  input_shape: [0]\n"), "positive sizes", "6:16"),
    (
        "model-input-shape-mismatch",
        ("model:\n", "model:\n  input_shape: [3]\n"),
        "cannot be reshaped to input_shape [3]",
        "6:16",
    ),
    ("model-type-enum", ("model:\n", "model:\n  type: cnn\n"), "'cnn' is not allowed", "6:9"),
    ("model-unknown-key", ("model:\n", "model:\n  layer: 3\n"), "unknown key 'layer'. Did you mean 'layers'?", "6:3"),
    ("model-latent-on-sequential", ("model:\n", "model:\n  latent_dim: 3\n"), "does not use latent_dim", "6:3"),
    ("model-vae-missing-parts", ("model:\n", "model:\n  type: vae\n"), "needs encoder, decoder", "6:3"),
    (
        "model-output-vs-loss",
        ("loss: binary_crossentropy", "loss: categorical_crossentropy"),
        "categorical_crossentropy needs one output unit per class",
        "10:9",
    ),
    (
        "model-classes-vs-units",
        [
            ("builtin:xor", "builtin:iris"),
            ("loss: binary_crossentropy", "loss: categorical_crossentropy"),
            ("units: 1, activation: sigmoid", "units: 2, activation: softmax"),
        ],
        "the data has 3 classes but the last layer outputs 2 values: set units: 3",
        "8:7",
    ),
    (
        "train-missing",
        (
            "train:\n"
            "  loss: binary_crossentropy\n"
            "  metrics: [accuracy]\n"
            "  optimizer: {type: adam, learning_rate: 0.1}\n"
            "  batch_size: full\n"
            "  epochs: 5\n",
            "",
        ),
        "missing required key 'train'",
        "1:1",
    ),
    ("train-loss-missing", ("  loss: binary_crossentropy\n", ""), "missing required key 'loss'", "10:3"),
    (
        "train-loss-typo",
        ("loss: binary_crossentropy", "loss: binary_crossentropyy"),
        "Did you mean 'binary_crossentropy'?",
        "10:9",
    ),
    ("train-loss-int", ("loss: binary_crossentropy", "loss: 3"), "loss", "10:9"),
    ("train-metric-typo", ("metrics: [accuracy]", "metrics: [acuracy]"), "acuracy", "11:12"),
    ("train-metrics-str", ("metrics: [accuracy]", "metrics: accuracy"), "valid list", "11:12"),
    ("train-optimizer-typo", ("type: adam", "type: adamm"), "Did you mean 'adam'?", "12:21"),
    ("train-optimizer-lr-neg", ("learning_rate: 0.1", "learning_rate: -1"), "learning_rate", "12:42"),
    ("train-optimizer-lr-str", ("learning_rate: 0.1", "learning_rate: fast"), "fast", "12:42"),
    ("train-optimizer-no-type", ("{type: adam, learning_rate: 0.1}", "{learning_rate: 0.1}"), "type", "12:14"),
    (
        "train-optimizer-unknown-key",
        ("learning_rate: 0.1}", "learning_rate: 0.1, betas: [0.9, 0.99]}"),
        "unknown key 'betas'",
        "12:47",
    ),
    (
        "train-schedule-typo",
        ("learning_rate: 0.1}", "learning_rate: {type: cosine_decayy, init_value: 0.1}}"),
        "cosine_decayy",
        "12:49",
    ),
    ("train-batch-zero", ("batch_size: full", "batch_size: 0"), "batch_size must be positive or 'full'", "13:15"),
    ("train-batch-str", ("batch_size: full", "batch_size: half"), "half", "13:15"),
    ("train-epochs-zero", ("epochs: 5", "epochs: 0"), "greater than 0", "14:11"),
    ("train-epochs-float", ("epochs: 5", "epochs: 2.5"), "valid integer", "14:11"),
    ("train-epochs-inf", ("epochs: 5", "epochs: .inf"), "epochs", "14:11"),
    ("train-epochs-and-steps", ("epochs: 5", "epochs: 5\n  steps: 10"), "give epochs or steps, not both", "10:3"),
    ("train-steps-neg", ("epochs: 5", "steps: -5"), "greater than 0", "14:10"),
    ("train-weight-decay-neg", ("epochs: 5", "epochs: 5\n  weight_decay: -0.1"), "greater than or equal to 0", "15:17"),
    (
        "train-weight-decay-twice",
        (
            "{type: adam, learning_rate: 0.1}",
            "{type: adamw, learning_rate: 0.1, weight_decay: 0.01}\n  weight_decay: 0.01",
        ),
        "weight decay is given twice",
        "13:17",
    ),
    ("train-clip-empty", ("epochs: 5", "epochs: 5\n  gradient_clipping: {}"), "give exactly one of max_norm", "15:22"),
    (
        "train-clip-both",
        ("epochs: 5", "epochs: 5\n  gradient_clipping: {max_norm: 1, max_value: 1}"),
        "give exactly one of max_norm",
        "15:22",
    ),
    (
        "train-clip-per-tensor",
        ("epochs: 5", "epochs: 5\n  gradient_clipping: {max_value: 1, per_tensor: true}"),
        "per_tensor applies to max_norm only",
        "15:22",
    ),
    ("train-clip-zero", ("epochs: 5", "epochs: 5\n  gradient_clipping: {max_norm: 0}"), "greater than 0", "15:33"),
    (
        "train-es-monitor-typo",
        ("epochs: 5", "epochs: 5\n  early_stopping: {monitor: acuracy}"),
        "unknown monitor 'acuracy'",
        "15:29",
    ),
    (
        "train-es-needs-val",
        ("epochs: 5", "epochs: 5\n  early_stopping: {monitor: val_loss}"),
        "needs validation data",
        "15:29",
    ),
    (
        "train-es-mode",
        ("epochs: 5", "epochs: 5\n  early_stopping: {monitor: loss, mode: maximize}"),
        "'maximize' is not allowed",
        "15:41",
    ),
    (
        "train-es-patience-neg",
        ("epochs: 5", "epochs: 5\n  early_stopping: {monitor: loss, patience: -1}"),
        "greater than or equal to 0",
        "15:45",
    ),
    (
        "train-es-unknown-key",
        ("epochs: 5", "epochs: 5\n  early_stopping: {monitor: loss, patiense: 3}"),
        "unknown key 'patiense'. Did you mean 'patience'?",
        "15:35",
    ),
    (
        "train-freeze-nomatch",
        ("epochs: 5", "epochs: 5\n  freeze: ['nope/*']"),
        "'nope/*' matches no parameter",
        "15:12",
    ),
    (
        "train-freeze-bad-glob",
        ("epochs: 5", "epochs: 5\n  freeze: ['dense_0/[kernel']"),
        "'dense_0/[kernel' matches no parameter",
        "15:12",
    ),
    ("train-freeze-str", ("epochs: 5", "epochs: 5\n  freeze: 'dense_0/*'"), "valid list", "15:11"),
    (
        "train-freeze-typo",
        ("epochs: 5", "epochs: 5\n  freeze: ['dense_0/kernell']"),
        "Did you mean 'dense_0/kernel'?",
        "15:12",
    ),
    (
        "train-on-nonfinite-enum",
        ("epochs: 5", "epochs: 5\n  on_nonfinite: ignore"),
        "'ignore' is not allowed. Choices: stop, skip_step",
        "15:17",
    ),
    ("train-fuse-enum", ("epochs: 5", "epochs: 5\n  fuse: always"), "'always' is not allowed", "15:9"),
    (
        "train-data-placement-enum",
        ("epochs: 5", "epochs: 5\n  data_placement: host"),
        "'host' is not allowed. Choices: auto, device, stream",
        "15:19",
    ),
    ("train-stream-window-zero", ("epochs: 5", "epochs: 5\n  stream: {window: 0}"), "greater than 0", "15:20"),
    (
        "train-stream-unknown-key",
        ("epochs: 5", "epochs: 5\n  stream: {prefetch: 2, buffer: 8}"),
        "unknown key 'buffer'. Allowed keys: prefetch, window",
        "15:25",
    ),
    (
        "train-checkpoint-every-zero",
        ("epochs: 5", "epochs: 5\n  checkpoint: {every_epochs: 0}"),
        "greater than 0",
        "15:30",
    ),
    (
        "train-checkpoint-keep-zero",
        ("epochs: 5", "epochs: 5\n  checkpoint: {every_epochs: 1, keep: 0}"),
        "greater than 0",
        "15:39",
    ),
    (
        "train-checkpoint-unknown-key",
        ("epochs: 5", "epochs: 5\n  checkpoint: {every: 5}"),
        "unknown key 'every'. Did you mean 'every_epochs'?",
        "15:16",
    ),
    ("train-checkpoint-int", ("epochs: 5", "epochs: 5\n  checkpoint: 5"), "valid dictionary", "15:15"),
    (
        "train-log-enum",
        ("epochs: 5", "epochs: 5\n  log: [csv, wandb]"),
        "'wandb' is not allowed. Choices: csv, tensorboard",
        "15:14",
    ),
    ("train-log-str", ("epochs: 5", "epochs: 5\n  log: csv"), "valid list", "15:8"),
    ("train-unknown-key", ("epochs: 5", "epoch: 5"), "unknown key 'epoch'. Did you mean 'epochs'?", "14:3"),
    (
        "train-devices-zero",
        ("epochs: 5", "epochs: 5\n  devices: 0"),
        "devices must be 'all' or a positive count",
        "15:12",
    ),
    ("train-precision-enum", ("epochs: 5", "epochs: 5\n  precision: fp8"), "'fp8' is not allowed", "15:14"),
    ("top-unknown-key", ("seed: 0\n", "seed: 0\ntrian: {}\n"), "unknown key 'trian'. Did you mean 'train'?", "3:1"),
    ("top-seed-neg", ("seed: 0", "seed: -1"), "greater than or equal to 0", "2:7"),
    ("top-seed-str", ("seed: 0", "seed: abc"), "valid integer", "2:7"),
    ("top-seed-huge", ("seed: 0", "seed: 1.0e+400"), "seed", "2:7"),
    ("top-name-list", ("name: t", "name: [1]"), "valid string", "1:7"),
    ("yaml-syntax", ("  epochs: 5\n", "  epochs: [5\n"), "invalid YAML", "15:1"),
    ("yaml-tab", ("  epochs: 5\n", "\tepochs: 5\n"), "invalid YAML", "14:1"),
    ("yaml-duplicate-key", ("seed: 0\n", "seed: 0\nseed: 1\n"), "key 'seed' appears twice in the same mapping", "3:1"),
    (
        "yaml-python-tag",
        ("seed: 0", "seed: !!python/object:os.system 0"),
        "could not determine a constructor for the tag",
        "2:7",
    ),
    ("yaml-custom-tag", ("seed: 0", "seed: !env SEED"), "could not determine a constructor for the tag '!env'", "2:7"),
    ("yaml-empty", None, "the spec is empty", "1:1"),
    ("yaml-list", "- 1\n- 2\n", "a spec is a mapping", "1:1"),
    ("yaml-scalar", "hello\n", "a spec is a mapping", "1:1"),
]


def spec_text(edit) -> str:
    if edit is None:
        return ""
    if isinstance(edit, str):
        return edit
    text = BASE
    for old, new in edit if isinstance(edit, list) else [edit]:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_catalogue_is_large_and_covers_every_section():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 80 and len(set(ids)) == len(ids)
    for section in ("data-", "model-", "layer-", "train-", "top-", "yaml-"):
        assert sum(i.startswith(section) for i in ids) >= 4, section


def test_base_spec_is_valid(tmp_path):
    (tmp_path / "spec.yaml").write_text(BASE)
    load_spec(tmp_path / "spec.yaml")


@pytest.mark.parametrize("cid, edit, fragment, where", CASES, ids=[c[0] for c in CASES])
def test_broken_spec(tmp_path, cid, edit, fragment, where):
    path = tmp_path / "spec.yaml"
    path.write_text(spec_text(edit))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    lines = str(e.value).splitlines()
    hits = [line for line in lines if fragment in line]
    assert hits, f"{fragment!r} not in {str(e.value)!r}"
    assert hits[0].startswith(f"{path}:{where}: "), hits[0]


# `nnctl validate` only warns about artefacts that may not exist yet (training refuses them)
VALIDATE_WARNS = {"model-init-from-nowhere"}


def test_cli_validate_over_the_catalogue_has_no_traceback(tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app

    files = []
    cases = [c for c in CASES if c[0] not in VALIDATE_WARNS]
    for cid, edit, fragment, where in cases:
        p = tmp_path / f"{cid}.yaml"
        p.write_text(spec_text(edit))
        files.append(str(p))
    r = CliRunner().invoke(app, ["validate", "--json", *files])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    import json

    doc = json.loads(r.output)
    assert [x["ok"] for x in doc["results"]] == [False] * len(cases)
    for (cid, edit, fragment, where), res in zip(cases, doc["results"]):
        assert any(fragment in p and f"{cid}.yaml:{where}:" in p for p in res["problems"]), (cid, res["problems"])
