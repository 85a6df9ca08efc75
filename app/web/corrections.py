"""Corrections: anyone may tell the model what a digit really was; only the operator may read them.

POST /api/corrections is public, rate-limited per client and capped in total. Reviewing,
deleting and exporting need `Authorization: Bearer $DIGITPAD_ADMIN_TOKEN`, and do not exist
(404) on a server with no token configured.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import timezone

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import NotFound, Unauthorized

from app.core.preprocess import preprocess, quantize, to_png
from app.core.store import Correction, Store, StoreFullError
from app.web import inputs
from app.web.api import classifier, data_url
from app.web.errors import json_error
from model import corrections as export_formats

bp = Blueprint("corrections", __name__)
MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases
EXPORT_TYPES = {"npz": ("application/octet-stream", "npz"), "idx": ("application/zip", "zip")}


def store() -> Store:
    return current_app.extensions["digitpad.store"]


def client_key() -> str:
    """Whom the rate limit counts: a hash of the client's address, so no store ever holds the address."""
    return hashlib.sha256(f"digitpad:{request.remote_addr}".encode()).hexdigest()[:24]


def operator_only(view: Callable) -> Callable:
    """The view answers only to the operator's token, and is not there at all without one."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        token = current_app.config["ADMIN_TOKEN"]
        if not token:
            raise NotFound()
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("this needs the operator's token: Authorization: Bearer <DIGITPAD_ADMIN_TOKEN>",
                               www_authenticate=WWWAuthenticate("bearer", {"realm": "digitpad operator"}))
        return view(*args, **kwargs)

    return guarded


@bp.post("/api/corrections")
def submit():
    data, label, predicted = inputs.correction(request)
    field = preprocess(data, current_app.config["MAX_IMAGE_PIXELS"])
    original = data if len(data) <= current_app.config["MAX_ORIGINAL_BYTES"] else None
    saved = store().add(quantize(field), label, predicted, classifier().version, original)
    return jsonify({"id": saved.id, "label": label, "created": saved.created}), 201 if saved.created else 200


def _described(row: Correction) -> dict:
    created = row.created_at.replace(tzinfo=row.created_at.tzinfo or timezone.utc)  # SQLite's are naive, in UTC
    return {
        "id": row.id,
        "label": row.label,
        "predicted": row.predicted,
        "model_version": row.model_version,
        "created_at": created.isoformat(timespec="seconds"),
        "field": data_url(to_png(row.image())),
    }


@bp.get("/api/corrections")
@operator_only
def review():
    limit = inputs.whole_number(request.args, "limit", 50, 1, 500)
    offset = inputs.whole_number(request.args, "offset", 0, 0, MAX_ID)
    total, rows = store().page(limit, offset)
    return jsonify({"total": total, "limit": limit, "offset": offset, "corrections": [_described(r) for r in rows]})


@bp.delete("/api/corrections/<int:correction_id>")
@operator_only
def remove(correction_id: int):
    if correction_id > MAX_ID or not store().delete(correction_id):
        raise inputs.RequestError(f"there is no correction {correction_id}", 404)
    return Response(status=204)


@bp.get("/api/corrections/export")
@operator_only
def export():
    formats = request.args.getlist("format") or ["npz"]
    fmt = formats[0]
    if len(formats) > 1 or fmt not in EXPORT_TYPES:
        raise inputs.RequestError(f"'format' must be one of {', '.join(EXPORT_TYPES)}, not {fmt!r:.40}")
    mimetype, extension = EXPORT_TYPES[fmt]
    body = export_formats.encode(store().dataset(), fmt)
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename=digitpad-corrections.{extension}"})


@bp.errorhandler(StoreFullError)
def full(exc: StoreFullError):
    return json_error(str(exc), 507)


@bp.errorhandler(SQLAlchemyError)
def unavailable(exc: SQLAlchemyError):
    # The driver's own words, not SQLAlchemy's, which carry the statement and its parameters (images).
    reason = " ".join(str(getattr(exc, "orig", None) or type(exc).__name__).split())
    current_app.logger.error("corrections store unavailable: %s", reason)
    return json_error("the corrections store is unavailable right now; try again shortly", 503, {"Retry-After": "30"})


def register(app: Flask) -> None:
    """The corrections endpoints, with their rate limit (shared through Redis when configured)."""
    # Only corrections are limited, so the limiter's hooks run for their requests alone: a prediction
    # does not pay for them (~80 Python calls, 2-3% of a /predict request under load).
    with _request_hooks_for(app, bp.name):
        # If Redis goes away, each worker counts on its own until it is back, rather than refusing everyone.
        limiter = Limiter(client_key, app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
                          strategy="moving-window", headers_enabled=True, key_prefix="digitpad",
                          swallow_errors=True, in_memory_fallback_enabled=True)
    per_minute = app.config["CORRECTIONS_PER_MINUTE"]
    limiter.limit(f"{per_minute}/minute", methods=["POST"],
                  error_message=f"too many corrections from this client: at most {per_minute} a minute")(bp)
    app.register_blueprint(bp)


@contextlib.contextmanager
def _request_hooks_for(app: Flask, blueprint: str) -> Iterator[None]:
    """Request hooks that the block adds for the whole app (`before_request`, `after_request`,
    `teardown_request`) apply to `blueprint`'s requests only."""
    registries = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    existing = [list(registry.get(None, ())) for registry in registries]
    yield
    for registry, kept in zip(registries, existing):
        added = [hook for hook in registry.get(None, ()) if hook not in kept]
        if added:
            registry[None] = kept
            registry.setdefault(blueprint, []).extend(added)
