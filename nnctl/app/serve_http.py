"""The HTTP service of `nnctl serve` (FastAPI): /predict, /predict/csv, /healthz, /metadata, the OpenAPI docs
at /docs and a page at /. Every bad request is a 4xx JSON {"detail": message naming the field}; no
traceback ever reaches a client, and an unexpected failure is a 500 with a short message."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.middleware.base import BaseHTTPMiddleware

from nnctl.app.predict_io import write_predictions
from nnctl.app.serve_batch import MicroBatcher
from nnctl.app.serve_model import ServedModel
from nnctl.app.serve_page import page_html
from nnctl.data.inputs import read_inputs
from nnctl.errors import NnctlError

MAX_BODY = 8 * 1024 * 1024  # bytes per request
OPEN_PATHS = {"/", "/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect"}
BODY_SCHEMA = {
    "description": '{"inputs": [[...], ...]} (arrays: one example or a list, in the input shape or flat), '
    'or {"feature": value, ...} by the CSV column names, or a list of those objects',
    "anyOf": [
        {"type": "object", "properties": {"inputs": {"type": "array"}}, "required": ["inputs"]},
        {"type": "object", "additionalProperties": {"type": ["number", "string", "null"]}},
        {"type": "array"},
    ],
    "example": {"inputs": [[5.1, 3.5, 1.4, 0.2]]},
}


class Guard(BaseHTTPMiddleware):
    """Refuses bodies over MAX_BODY (413) and, with an API key, requests without it (401)."""

    def __init__(self, app: Any, api_key: str | None) -> None:
        super().__init__(app)
        self.api_key = api_key

    async def dispatch(self, request: Request, call_next: Any) -> Any:
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return JSONResponse({"detail": f"body: larger than {MAX_BODY} bytes"}, status_code=413)
        if self.api_key and request.url.path not in OPEN_PATHS and request.headers.get("x-api-key") != self.api_key:
            return JSONResponse({"detail": "header X-API-Key: missing or wrong"}, status_code=401)
        return await call_next(request)


def make_app(model: ServedModel, api_key: str | None = None) -> FastAPI:
    """The FastAPI application serving `model` (start it with uvicorn, or FastAPI's TestClient)."""
    batcher = MicroBatcher(model)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"nnctl: {model.meta['name']}", version=model.meta["versions"]["nnctl"], lifespan=lifespan)
    app.add_middleware(Guard, api_key=api_key)

    @app.exception_handler(NnctlError)
    async def user_error(_request: Request, e: NnctlError) -> JSONResponse:
        with model.stats.lock:
            model.stats.errors += 1
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(Exception)
    async def failure(_request: Request, e: Exception) -> JSONResponse:
        with model.stats.lock:
            model.stats.errors += 1
        return JSONResponse({"detail": f"internal error ({type(e).__name__})"}, status_code=500)

    async def answer(x: np.ndarray) -> dict:
        out = await batcher.predict(x)
        return {"task": model.data.task, "predictions": model.rows(out)}

    @app.post(
        "/predict",
        summary="Predict one example or a list (by feature name, or arrays)",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BODY_SCHEMA}}}},
    )
    async def predict(request: Request) -> dict:
        raw = await request.body()
        try:
            body = json.loads(raw, parse_constant=lambda c: float(c))  # NaN/Infinity reach the finite check
        except (ValueError, UnicodeDecodeError) as e:
            raise HTTPException(400, f"body: not JSON ({e})") from None
        return await answer(model.inputs(body))

    @app.post("/predict/csv", summary="Upload a CSV (a header, one example per row); get the predictions as CSV")
    async def predict_csv(file: UploadFile = File(...)) -> PlainTextResponse:
        text = await csv_answer(model, batcher, file.filename or "upload.csv", await file.read())
        return PlainTextResponse(text, media_type="text/csv")

    @app.get("/healthz", summary="Liveness, and the requests served with their latency")
    async def healthz() -> dict:
        return {"status": "ok", **model.stats.summary()}

    @app.get("/metadata", summary="The run: spec summary, input schema, classes, compiled batch sizes")
    async def metadata() -> dict:
        return {**model.describe(), "api_key_required": bool(api_key)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return page_html(model.meta["name"])

    return app


async def csv_answer(model: ServedModel, batcher: MicroBatcher, name: str, data: bytes) -> str:
    """An uploaded CSV's predictions, as the CSV `nnctl predict --output x.csv` writes: the upload is read by
    the same code as `predict --input` (errors name the uploaded file, row and column)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "upload.csv"
        p.write_bytes(data)
        try:
            x = read_inputs(str(p), model.spec_data, model.data)
        except NnctlError as e:
            raise HTTPException(422, str(e).replace(str(p), name)) from None
        out = await batcher.predict(np.asarray(x, model.graph.dtype))
        task = model.data.task
        result: dict[str, Any] = {"probabilities": out.tolist()} if task in ("classification", "binary") else {}
        if task == "classification":
            result["classes"] = out.argmax(-1).tolist()
        elif task == "binary":
            result["classes"] = (out > 0.5).astype(int).reshape(len(out), -1).tolist()
        else:
            result = {"values": out.tolist()}
        q = Path(d) / "predictions.csv"
        write_predictions(q, result, model.names)
        return q.read_text()
