"""The JSON API: predictions, model metadata and health checks."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
from flask import Blueprint, current_app, g, jsonify, request

from app.core import segment
from app.core.classifier import Classifier, answer
from app.core.preprocess import ImageError, preprocess, to_png
from app.web import inputs

bp = Blueprint("api", __name__)
OPENAPI = (Path(__file__).with_name("openapi.json")).read_bytes()


def classifier() -> Classifier:
    return current_app.extensions["digitpad.classifier"]


def _prepare(data: bytes) -> np.ndarray:
    return preprocess(data, current_app.config["MAX_IMAGE_PIXELS"])


def data_url(png: bytes) -> str:
    """A PNG as the API hands pictures out: a data URL."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _preview(field: np.ndarray) -> str:
    return data_url(to_png(field))


def _prediction(field: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    return {**answer(probabilities), "preview": _preview(field), "model": classifier().info()}


@bp.post("/predict")
def predict():
    field = _prepare(inputs.single_image(request))
    result = _prediction(field, classifier().probabilities(field[None])[0])
    g.digits = [result["digit"]]
    return jsonify(result)


@bp.post("/predict/number")
def predict_number():
    image, strokes = inputs.number_source(request)
    limit, max_pixels = current_app.config["MAX_DIGITS"], current_app.config["MAX_IMAGE_PIXELS"]
    reader = current_app.extensions["digitpad.reader"]
    if strokes is None:
        digits = segment.read_image(image, reader, limit, max_pixels)
    else:
        digits = segment.read_strokes(strokes, reader, limit, image, max_pixels)
    result = segment.answer(digits)
    for read, digit in zip(result["digits"], digits):
        read["preview"] = _preview(digit.field)
    g.digits = [read["digit"] for read in result["digits"]]
    return jsonify({**result, "model": classifier().info()})


@bp.post("/predict/batch")
def predict_batch():
    items = inputs.batch_items(request)
    limit = current_app.config["MAX_BATCH"]
    if not items:
        raise inputs.RequestError("no images in the batch")
    if len(items) > limit:
        raise inputs.RequestError(f"too many images in one batch: {len(items)} (the limit is {limit})", 413)
    fields: list[np.ndarray | None] = []
    errors: dict[int, ImageError] = {}
    for i, item in enumerate(items):
        try:
            data = item if isinstance(item, bytes) else inputs.decode_base64(item, f"images[{i}]")
            fields.append(_prepare(data))
        except ImageError as exc:
            fields.append(None)
            errors[i] = exc
    good = [f for f in fields if f is not None]
    probabilities = iter(classifier().probabilities(np.stack(good)) if good else [])
    predictions = [
        {"error": errors[i].message, "status": errors[i].status} if field is None
        else _prediction(field, next(probabilities))
        for i, field in enumerate(fields)
    ]
    g.digits = [p["digit"] for p in predictions if "digit" in p]
    g.item_errors = [e.status for e in errors.values()]
    return jsonify({"predictions": predictions})


@bp.get("/api/model")
def model_info():
    return jsonify(classifier().metadata)


@bp.get("/openapi.json")
def openapi():
    return current_app.response_class(OPENAPI, mimetype="application/json")


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    model = classifier()
    probabilities = model.probabilities(np.zeros((1, 28, 28), np.float32))
    if not np.isfinite(probabilities).all():
        return jsonify({"status": "model answers with non-finite values"}), 503
    return jsonify({"status": "ready", "model": model.info(), "device": str(model.device),
                    "runtime": model.runner.runtime})
