"""Every error leaves the app as JSON {"error": "..."} with a fitting status, never a traceback."""

from __future__ import annotations

from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.preprocess import ImageError


def _json_error(message: str, status: int):
    g.error = message  # for the request log line, without parsing the response again
    return jsonify({"error": message}), status


def register(app: Flask) -> None:
    @app.errorhandler(ImageError)
    def image_error(exc: ImageError):
        return _json_error(exc.message, exc.status)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return _json_error(f"the request body is larger than the limit of {limit:,} bytes", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _json_error(exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return _json_error("internal error: the server could not handle this request", 500)
