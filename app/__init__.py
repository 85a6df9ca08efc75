"""digitpad: handwritten digit recognition as a web app and a JSON API."""

from __future__ import annotations

import os
import sys
from typing import Any

import cv2
import torch
from flask import Flask

from app import config
from app.core.classifier import Classifier, NumberReader
from app.web import api, errors, explain, observability, pages, security
from model.checkpoint import ModelError


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then `overrides`; the model loads once, here."""
    app = Flask(__name__, static_folder="../static", template_folder="../templates")
    app.config.from_mapping(config.from_environment())
    app.config.update(overrides or {})
    if os.environ.get("DIGITPAD_ENV") == "production":
        app.config["DEBUG"] = False  # gunicorn.conf.py sets this: no debug mode in production
    app.json.sort_keys = False

    # One worker per core: neither torch nor OpenCV may start threads that fight the other workers.
    torch.set_num_threads(app.config["TORCH_THREADS"])
    cv2.setNumThreads(app.config["TORCH_THREADS"])
    try:
        classifier = Classifier(app.config["MODEL_PATH"], app.config["DEVICE"])
        segments = Classifier(app.config["SEGMENTS_MODEL_PATH"], app.config["DEVICE"])
    except (ModelError, ValueError) as exc:
        print(f"digitpad: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    app.extensions["digitpad.classifier"] = classifier
    app.extensions["digitpad.reader"] = NumberReader(classifier, segments)

    app.register_blueprint(api.bp)
    app.register_blueprint(explain.bp)
    app.register_blueprint(pages.bp)
    observability.register(app)
    errors.register(app)
    security.register(app)
    return app
