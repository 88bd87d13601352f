"""`nnctl export`: ONNX files run in onnxruntime and StableHLO programs reloaded with jax.export.deserialize
predict what `nnctl predict` predicts (max abs difference <= 1e-5, float32), for tiny runs trained one epoch:
iris (dense, normalisation in the graph, dynamic and fixed batch) in the fast tests; a digits CNN, every layer family
(recurrent, attention, norm, embedding, ...) over the shipped example specs (autoencoders, VAE and GANs
included) and tiny models for the layer types no example uses, in the slow ones."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the 'export' extra (jax2onnx, onnx, onnxruntime) is not installed")

import onnxruntime as ort
from typer.testing import CliRunner

from nnctl.app import (
    export_formats,
    predict_run,
    restore,
    train_run,
)
from nnctl.app.export import export_run, parse_batch
from nnctl.app.export_formats import unsupported_message
from nnctl.app.export_graph import ExportError, held_out
from nnctl.cli import app as cli_app

SPECS = Path(__file__).resolve().parents[1] / "specs"
TOL = 1e-5


def close(got: np.ndarray, want: np.ndarray) -> bool:
    """Within TOL, absolute up to 1 and relative above (regression values in the hundreds carry float32's
    rounding: 2e-5 at 200)."""
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= TOL * np.maximum(1.0, np.abs(want))))


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    return train_run(str(SPECS / "iris.yaml"), str(tmp_path_factory.mktemp("x") / "iris"), ("train.epochs=1",)).run_dir


def predicted(run_dir, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    """The held-out raw inputs of a run and what `nnctl predict` (predict_run) says for them."""
    _, x = held_out(restore(run_dir))
    np.savez(tmp / "x.npz", x=x)
    res = predict_run(run_dir, str(tmp / "x.npz"))
    return x, np.asarray(res.get("probabilities", res.get("values")), np.float32)


def onnx_predict(path: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def stablehlo_predict(path: str, x: np.ndarray) -> np.ndarray:
    exp = jax.export.deserialize(bytearray(Path(path).read_bytes()))
    return np.asarray(exp.call(x))


def test_iris_onnx_matches_predict_with_normalisation_in_the_graph(iris, tmp_path):
    meta = export_run(iris, "onnx", str(tmp_path / "onnx"))
    x, want = predicted(iris, tmp_path)
    got = onnx_predict(meta["path"], x)  # raw measurements in: the standardisation is inside the graph
    assert got.shape == want.shape and np.abs(got - want).max() <= TOL
    assert meta["verification"]["max_abs_diff"] <= TOL and meta["verification"]["examples"] == len(x)
    written = json.loads((tmp_path / "onnx" / "metadata.json").read_text())
    assert written["class_names"] == ["setosa", "versicolor", "virginica"] or len(written["class_names"]) == 3
    assert written["versions"]["jax"] == jax.__version__ and "nnctl" in written["versions"]
    assert "name: iris-mlp" in written["spec"]
    step = written["preprocessing"]["in_graph"][0]
    assert step["kind"] == "standard" and len(step["shift"]) == 4
    # the documented formula reproduces the run's normaliser
    r = restore(iris)
    np.testing.assert_allclose((x - np.array(step["shift"])) / np.array(step["scale"]), r.scalers[0].apply(x), 1e-5)


def test_iris_stablehlo_reloads_and_matches_predict_dynamic_and_fixed_batch(iris, tmp_path):
    x, want = predicted(iris, tmp_path)
    meta = export_run(iris, "stablehlo", str(tmp_path / "dyn"))
    manifest = json.loads((tmp_path / "dyn" / "metadata.json").read_text())["model"]
    assert manifest["inputs"][0]["shape"] == ["b", "4"] and manifest["calling_convention_version"] >= 9
    assert manifest["platforms"] == ["cpu", "cuda"]
    for n in (1, len(x)):
        got = stablehlo_predict(meta["path"], x[:n])
        assert np.abs(got - want[:n]).max() <= TOL
    fixed = export_run(iris, "stablehlo", str(tmp_path / "fixed"), "8")
    assert fixed["model"]["inputs"][0]["shape"] == ["8", "4"] and fixed["verification"]["max_abs_diff"] <= TOL
    assert np.abs(stablehlo_predict(fixed["path"], x[:8]) - want[:8]).max() <= TOL


@pytest.mark.slow  # ~10 s: conv and pool are also in the slow matrix below; CI keeps iris
def test_digits_cnn_onnx_fixed_batch_matches_predict(tmp_path):
    run = train_run(str(SPECS / "digits_cnn.yaml"), str(tmp_path / "cnn"), ("train.epochs=1",)).run_dir
    meta = export_run(run, "onnx", None, 16)
    assert Path(meta["path"]) == Path(run) / "export-onnx" / "model.onnx"
    x, want = predicted(run, tmp_path)
    got = onnx_predict(meta["path"], x[:16])
    assert got.shape == (16, 10) and np.abs(got - want[:16]).max() <= TOL
    with pytest.raises(Exception, match="16"):  # the batch size is fixed in the graph
        onnx_predict(meta["path"], x[:3])


def test_bad_format_and_batch_are_user_errors(iris, tmp_path):
    with pytest.raises(ExportError, match="onnx, stablehlo"):
        export_run(iris, "tflite")
    for bad in ("0", "-3", "many"):
        with pytest.raises(ExportError, match="dynamic"):
            parse_batch(bad)
    assert parse_batch("dynamic") is None and parse_batch("32") == 32


def test_an_operation_without_conversion_names_the_layer_and_leaves_no_file(iris, tmp_path, monkeypatch):
    # jax2onnx's own error for a primitive it has no plugin for, raised here for the dense layers' matmul
    def lacks_matmul(*a, **k):
        raise NotImplementedError("[jaxpr] No plugins registered for primitive 'dot_general'")

    monkeypatch.setattr(export_formats, "to_onnx", lacks_matmul)
    with pytest.raises(ExportError) as e:
        export_run(iris, "onnx", str(tmp_path / "o"))
    msg = str(e.value)
    # found in the traced graph: the dense layers, not the dropout between them
    assert "'dot_general'" in msg and "layer 'dense_0' (dense), 'dense_2' (dense)" in msg and "dropout" not in msg
    assert list((tmp_path / "o").iterdir()) == []
    assert "'dense_0' (dense), 'dropout_1'" in unsupported_message(
        "", [], [("dense_0", "dense"), ("dropout_1", "dropout")]
    )


def test_cli_export_prints_the_check(iris, tmp_path):
    res = CliRunner().invoke(cli_app, ["export", str(iris), "--format", "stablehlo", "-o", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    assert "max abs difference" in res.output and (tmp_path / "e" / "model.stablehlo").exists()
    res = CliRunner().invoke(cli_app, ["export", str(iris), "--format", "tflite"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "onnx, stablehlo" in res.output


EXAMPLES = [  # every spec in specs/ but transfer_digits.yaml, which starts from another run's weights
    "iris.yaml",
    "digits_mlp.yaml",
    "digits_cnn.yaml",
    "digits_resnet.yaml",
    "digits_inception.yaml",
    "residual_mlp.yaml",
    "loans_csv.yaml",
    "diabetes_regression.yaml",
    "sine_regression.yaml",
    "xor.yaml",
    "backprop_worked_example.yaml",
    "majority_attention.yaml",
    "parity_bigru.yaml",
    "signal_bigru.yaml",
    "waveforms_lstm.yaml",
    "token_tagger.yaml",
    "augment_digits.yaml",
    "autoencoder_digits.yaml",
    "sparse_autoencoder_digits.yaml",
    "denoising_autoencoder_digits.yaml",
    "contractive_autoencoder_digits.yaml",
    "vae_digits.yaml",
    "gan_ring.yaml",
    "cgan_ring.yaml",
]


@pytest.mark.slow
@pytest.mark.parametrize("spec", EXAMPLES)
def test_every_example_spec_exports_to_both_formats(spec, tmp_path):
    run = train_run(str(SPECS / spec), str(tmp_path / "run"), ("train.epochs=1",)).run_dir
    x, want = predicted(run, tmp_path)
    onnx_meta = export_run(run, "onnx", str(tmp_path / "onnx"))
    assert close(onnx_predict(onnx_meta["path"], x), want)
    hlo = export_run(run, "stablehlo", str(tmp_path / "hlo"))
    assert close(stablehlo_predict(hlo["path"], x), want)


TINY = """name: tiny-{name}
seed: 0
data: {{source: builtin:digits, test_split: 0.2, normalize: minmax}}
model:
  input_shape: [8, 8, 1]
  layers:
{layers}
    - {{type: flatten}}
    - {{type: dense, units: 10, activation: softmax}}
train: {{loss: categorical_crossentropy, optimizer: {{type: adam, learning_rate: 0.01}}, batch_size: 512, epochs: 1}}
"""
FAMILIES = {  # layer types no shipped example spec uses, a few steps on digits
    "pools": ["{type: avg_pool2d, pool_size: 2}", "{type: global_max_pool}"],
    "prelu_depthwise": ["{type: prelu}", "{type: depthwise_conv2d, kernel_size: 3}", "{type: global_avg_pool}"],
    "norms": ["{type: batch_norm}", "{type: layer_norm}"],
}


def tiny_run(tmp_path, name, layers):
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(TINY.format(name=name, layers="\n".join(f"    - {x}" for x in layers)))
    return train_run(str(spec), str(tmp_path / name)).run_dir


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_more_layer_families_export_to_onnx(family, tmp_path):
    run = tiny_run(tmp_path, family, FAMILIES[family])
    x, want = predicted(run, tmp_path)
    meta = export_run(run, "onnx", str(tmp_path / "onnx"))
    assert np.abs(onnx_predict(meta["path"], x) - want).max() <= TOL


@pytest.mark.slow
def test_a_layer_jax2onnx_cannot_convert_is_named_and_stablehlo_still_works(tmp_path):
    run = tiny_run(tmp_path, "deconv", ["{type: conv2d_transpose, filters: 2, kernel_size: 3}"])
    with pytest.raises(ExportError, match=r"layer 'conv2d_transpose_0' \(conv2d_transpose\)"):
        export_run(run, "onnx", str(tmp_path / "onnx"))
    assert list((tmp_path / "onnx").iterdir()) == []
    x, want = predicted(run, tmp_path)
    hlo = export_run(run, "stablehlo", str(tmp_path / "hlo"))
    assert np.abs(stablehlo_predict(hlo["path"], x) - want).max() <= TOL
    res = CliRunner().invoke(cli_app, ["export", str(run)])
    assert res.exit_code == 2 and "Traceback" not in res.output and "conv2d_transpose_0" in res.output
