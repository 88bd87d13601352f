"""`nnctl serve`: the endpoints in-process (FastAPI's TestClient), the bad-request catalogue (4xx naming the
field, never a traceback, the server lives on), micro-batching onto the compiled sizes, the API key, and the
page at / in a real headless browser (Debian's chromium driven by Playwright) for a tabular and an image run."""

import asyncio
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi, uvicorn) is not installed")

import uvicorn
from fastapi.testclient import TestClient

from nnctl.app import predict_run, train_run
from nnctl.app import serve as serve_mod
from nnctl.app.serve_batch import MicroBatcher
from nnctl.app.serve_http import MAX_BODY, make_app
from nnctl.app.serve_model import ServedModel, bucket_sizes

SPECS = Path(__file__).resolve().parents[1] / "specs"
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    run = train_run(str(SPECS / "iris.yaml"), str(tmp_path_factory.mktemp("s") / "iris"), ("train.epochs=1",)).run_dir
    return run, ServedModel(run, max_batch=8)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    run = train_run(str(SPECS / "digits_cnn.yaml"), str(tmp_path_factory.mktemp("s") / "cnn"), ("train.epochs=1",))
    return run.run_dir, ServedModel(run.run_dir, max_batch=8)


@pytest.fixture(scope="module")
def client(iris):
    with TestClient(make_app(iris[1])) as c:
        yield c


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_bucket_sizes():
    assert bucket_sizes(1) == [1] and bucket_sizes(8) == [1, 2, 4, 8] and bucket_sizes(12) == [1, 2, 4, 8, 12]


def test_predict_by_name_and_by_array_equals_nnctl_predict(iris, client, tmp_path):
    run, _ = iris
    (tmp_path / "x.csv").write_text("a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n")
    want = np.asarray(predict_run(run, str(tmp_path / "x.csv"))["probabilities"])
    one = client.post("/predict", json=dict(zip(["x0", "x1", "x2", "x3"], ROWS[0])))
    assert one.status_code == 200
    assert np.abs(np.asarray(one.json()["predictions"][0]["probabilities"]) - want[0]).max() <= 1e-5
    many = client.post("/predict", json=[dict(zip(["x0", "x1", "x2", "x3"], r)) for r in ROWS]).json()
    arrays = client.post("/predict", json={"inputs": ROWS}).json()
    bare = client.post("/predict", json=ROWS[1]).json()
    assert [p["class"] for p in many["predictions"]] == [p["class"] for p in arrays["predictions"]]
    assert np.abs(np.asarray([p["probabilities"] for p in arrays["predictions"]]) - want).max() <= 1e-5
    assert bare["predictions"][0]["index"] == int(want[1].argmax()) and len(bare["predictions"]) == 1


def test_predict_csv_returns_the_csv_predict_writes(iris, client, tmp_path):
    run, _ = iris
    text = "a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n"
    (tmp_path / "x.csv").write_text(text)
    predict_run(run, str(tmp_path / "x.csv"), str(tmp_path / "p.csv"))
    r = client.post("/predict/csv", files={"file": ("mine.csv", text, "text/csv")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    got = [line.split(",") for line in r.text.splitlines()]
    want = [line.split(",") for line in (tmp_path / "p.csv").read_text().splitlines()]
    assert got[0] == want[0] and [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose(np.array(got[1:])[:, 1:].astype(float), np.array(want[1:])[:, 1:].astype(float), 1e-4)
    bad = client.post("/predict/csv", files={"file": ("mine.csv", "a,b,c,d\n1,2,x,4\n", "text/csv")})
    assert bad.status_code == 422 and "mine.csv" in bad.json()["detail"] and "'x'" in bad.json()["detail"]


def test_healthz_metadata_and_docs(client):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["requests"] >= 0
    m = client.get("/metadata").json()
    assert m["task"] == "classification" and len(m["class_names"]) == 3
    assert m["input"]["kind"] == "tabular" and m["input"]["features"] == ["x0", "x1", "x2", "x3"]
    assert m["batch_sizes"] == [1, 2, 4, 8] and m["layers"][0] == "dense_0 (dense)"
    assert client.get("/docs").status_code == 200 and "/predict/csv" in client.get("/openapi.json").json()["paths"]
    assert "<canvas" not in client.get("/").text and "metadata" in client.get("/").text


BAD = [  # (body, status, words the message must contain)
    ({"x0": 1, "x1": 2, "x2": 3, "x4": 4}, 422, ["unknown field 'x4'", "x3"]),
    ({"x0": 1, "x1": 2, "x2": 3}, 422, ["missing field 'x3'"]),
    ({"x0": 1, "x1": 2, "x2": "tall", "x3": 4}, 422, ["column 'x2'", "'tall'"]),
    ({"x0": 1, "x1": True, "x2": 3, "x3": 4}, 422, ["field 'x1'"]),
    ({"x0": 1, "x1": [2], "x2": 3, "x3": 4}, 422, ["field 'x1'"]),
    ({"x0": 1, "x1": None, "x2": 3, "x3": 4}, 422, ["column 'x1'", "missing"]),
    ({"inputs": [[1, 2, 3]]}, 422, ["inputs", "[1, 3]", "[4]"]),
    ({"inputs": [[1, 2, "a", 4]]}, 422, ["inputs", "numbers"]),
    ({"inputs": []}, 422, ["inputs"]),
    ({"inputs": [[1, 2, 3, 4]] * 5000}, 422, ["inputs", "5000 examples"]),
    ("just text", 422, ["body"]),
    (7, 422, ["body"]),
]


@pytest.mark.parametrize("body,status,words", BAD)
def test_bad_requests_are_4xx_naming_the_field(client, body, status, words):
    r = client.post("/predict", json=body)
    assert r.status_code == status, r.text
    assert all(w in r.json()["detail"] for w in words), r.json()
    assert "Traceback" not in r.text


def test_nan_not_json_and_oversized_bodies(client):
    r = client.post("/predict", content='{"inputs": [[1, NaN, 3, 4]]}', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "non-finite" in r.json()["detail"] and "inputs" in r.json()["detail"]
    r = client.post("/predict", content="{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "body: not JSON" in r.json()["detail"]
    r = client.post("/predict", content=b"[" + b"1," * (MAX_BODY // 2) + b"1]")
    assert r.status_code == 413 and "body" in r.json()["detail"]
    assert client.get("/healthz").json()["status"] == "ok" and client.get("/healthz").json()["errors"] >= 3


def test_every_request_size_runs_on_a_compiled_batch(iris):
    _, model = iris
    x = np.tile(np.asarray(ROWS, np.float32), (30, 1))
    whole = model.run(x)  # 90 rows: chunks of 8, the last padded to 2
    for n in (1, 3, 5, 8, 9):
        np.testing.assert_allclose(model.run(x[:n]), whole[:n], atol=1e-6)
    assert set(model.compiled) == {1, 2, 4, 8}


def test_concurrent_requests_share_one_batch(iris):
    _, model = iris

    async def go():
        b = MicroBatcher(model, wait_ms=300)
        await b.start()
        before = model.stats.batches
        outs = await asyncio.gather(*(b.predict(np.asarray([r], np.float32)) for r in ROWS * 2))
        await b.stop()
        return outs, model.stats.batches - before

    outs, batches = asyncio.run(go())
    assert batches == 1 and [o.shape for o in outs] == [(1, 3)] * 6
    np.testing.assert_allclose(np.concatenate(outs[:3]), model.run(np.asarray(ROWS, np.float32)), atol=1e-6)


def test_api_key_and_exposed_host_warning(iris, monkeypatch):
    run, model = iris
    with TestClient(make_app(model, api_key="s3cret")) as c:
        assert c.post("/predict", json={"inputs": ROWS}).status_code == 401
        assert "X-API-Key" in c.get("/metadata").json()["detail"]
        assert c.post("/predict", json={"inputs": ROWS}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
    started, said = [], []
    monkeypatch.setattr(serve_mod.uvicorn, "run", lambda app, **kw: started.append(kw))
    serve_mod.serve_run(run, host="0.0.0.0", port=8123, max_batch=2, say=said.append)
    assert started == [{"host": "0.0.0.0", "port": 8123, "log_level": "warning"}]
    assert "warning" in said[0] and "--api-key" in said[0]
    assert serve_mod.exposure_warning("127.0.0.1") is None and serve_mod.exposure_warning("::") is not None


def test_image_run_takes_images_flat_or_shaped(digits):
    run, model = digits
    with TestClient(make_app(model)) as c:
        m = c.get("/metadata").json()
        assert m["input"]["kind"] == "image" and m["input"]["shape"] == [8, 8, 1] and m["input"]["value_range"][1] > 1
        img = np.zeros((8, 8, 1))
        img[1:7, 3:5] = 16.0
        shaped = c.post("/predict", json={"inputs": [img.tolist()]}).json()
        flat = c.post("/predict", json={"inputs": img.reshape(-1).tolist()}).json()
        assert shaped == flat and len(shaped["predictions"][0]["probabilities"]) == 10
        named = c.post("/predict", json={"x0": 1})
        assert named.status_code == 422 and "inputs" in named.json()["detail"]


class Server:
    """uvicorn on a free 127.0.0.1 port in a thread, for the browser."""

    def __init__(self, app):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the 'test' extra) is not installed")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium; apt-get failed here)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


def test_page_form_for_a_tabular_run(iris, browser, tmp_path):
    run, model = iris
    with Server(make_app(model)) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#f_x3")
        for name, v in zip(["x0", "x1", "x2", "x3"], ROWS[1]):
            page.fill(f"#f_{name}", str(v))
        page.click("#predict")
        page.wait_for_selector("#bars .bar")
        shown = page.inner_text("#result")
        bars = page.eval_on_selector_all("#bars .bar", "els => els.map(e => [e.dataset.cls, Number(e.dataset.p)])")
        page.screenshot(path=str(tmp_path / "iris-page.png"))
    want = model.rows(model.run(np.asarray([ROWS[1]], np.float32)))[0]
    assert shown == f"class: {want['class']}" and len(bars) == 3
    np.testing.assert_allclose([p for _, p in bars], want["probabilities"], atol=1e-6)
    assert (tmp_path / "iris-page.png").stat().st_size > 1000


def test_page_canvas_for_an_image_run(digits, browser, tmp_path):
    run, model = digits
    with Server(make_app(model)) as url:
        page = browser.new_page()
        page.goto(url)
        box = page.wait_for_selector("#pad").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
        page.mouse.down()
        for k in range(1, 11):  # a vertical stroke: a "1"
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.15 + 0.07 * k))
        page.mouse.up()
        drawn = np.asarray(page.evaluate("draw()"), np.float32)
        page.click("#predict")
        page.wait_for_selector("#bars .bar")
        shown = page.inner_text("#result")
        bars = page.eval_on_selector_all("#bars .bar", "els => els.map(e => Number(e.dataset.p))")
        page.screenshot(path=str(tmp_path / "digits-page.png"))
    assert drawn.shape == (8, 8, 1) and drawn.max() > drawn.min()  # ink was drawn, in the data's range
    want = model.rows(model.run(drawn[None]))[0]
    assert shown == f"class: {want['class']}" and len(bars) == 10 and abs(sum(bars) - 1) < 1e-3
    np.testing.assert_allclose(bars, want["probabilities"], atol=1e-6)
    assert json.loads(json.dumps(want))["index"] == int(np.argmax(bars))


def test_cli_serve_refuses_a_missing_run_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from nnctl.cli import app as cli_app

    res = CliRunner().invoke(cli_app, ["serve", str(tmp_path / "nope"), "--port", "8765"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "nope" in res.output
    helptext = CliRunner().invoke(cli_app, ["serve", "--help"]).output
    assert all(opt in helptext for opt in ("--host", "--port", "--max-batch", "--api-key"))
