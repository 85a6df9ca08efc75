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
from app.core.store import Store, StoreError
from app.web import api, corrections, errors, explain, observability, pages, security
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
        classifier = Classifier(app.config["MODEL_PATH"], app.config["DEVICE"], app.config["RUNTIME"])
        reader = NumberReader.load(classifier, app.config["SEGMENTS_MODEL_PATH"], app.config["LINES_MODEL_PATH"],
                                   app.config["DEVICE"], app.config["RUNTIME"])
        store = Store(_database_url(app), max_corrections=app.config["MAX_CORRECTIONS"])
    except (ModelError, ValueError, StoreError) as exc:
        print(f"digitpad: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    app.extensions["digitpad.classifier"] = classifier
    app.extensions["digitpad.reader"] = reader
    app.extensions["digitpad.store"] = store

    app.register_blueprint(api.bp)
    app.register_blueprint(explain.bp)
    app.register_blueprint(pages.bp)
    observability.register(app)
    corrections.register(app)  # after the request timer: a refused request is still timed and logged
    errors.register(app)
    security.register(app)
    return app


def _database_url(app: Flask) -> str:
    """The configured database, or an SQLite file in the instance folder, made on first start."""
    if app.config["DATABASE_URL"]:
        return app.config["DATABASE_URL"]
    os.makedirs(app.instance_path, exist_ok=True)
    return f"sqlite:///{os.path.join(app.instance_path, 'corrections.sqlite3')}"
