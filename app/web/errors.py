"""Every error leaves the app as JSON {"error": "..."} with a fitting status, never a traceback."""

from __future__ import annotations

import time

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.core.preprocess import ImageError

# How long, and how much, to keep reading a body not yet read (over the limit, or refused
# before it was needed) before answering with an error.
DRAIN_SECONDS = 5.0
DRAIN_BYTES = 256 * 1024 * 1024


def json_error(message: str, status: int, headers: dict[str, str] | None = None):
    g.error = message  # for the request log line, without parsing the response again
    return jsonify({"error": message}), status, headers or {}


def _drain(seconds: float = DRAIN_SECONDS, limit: int = DRAIN_BYTES) -> bool:
    """Read and discard what the client is still sending, within bounds; True if it all came.

    A client that sends its whole body before reading the answer (curl, requests, http.client)
    sees a connection reset instead of our error if we close the socket under it while it is
    still sending. Like nginx's lingering close, read on for a bounded time and amount; a slow or
    endless sender is cut off at the bound, so it cannot hold a worker for long.
    """
    stream = request.environ.get("wsgi.input")
    if stream is None:
        return True
    sock = request.environ.get("gunicorn.socket")
    deadline = time.monotonic() + seconds
    total = 0
    try:
        while total < limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if sock is not None:
                sock.settimeout(remaining)
            chunk = stream.read(min(1 << 16, limit - total))
            if not chunk:
                return True
            total += len(chunk)
    except (OSError, ValueError):  # a timeout or a client gone: stop reading, answer anyway
        pass
    return False


def register(app: Flask) -> None:
    @app.errorhandler(ImageError)
    def image_error(exc: ImageError):
        return json_error(exc.message, exc.status)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return json_error(f"the request body is larger than the limit of {limit:,} bytes", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep the headers the error carries (Allow on a 405, as RFC 9110 requires); the body is ours.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return json_error(exc.description or exc.name, exc.code or 500, headers)

    @app.after_request
    def drain_unread_body(response):
        # An error can be decided before the body is read (too large, wrong Content-Type): take
        # in the rest before answering, and end the connection if it did not all come.
        if response.status_code >= 400 and not _drain():
            response.headers["Connection"] = "close"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return json_error("internal error: the server could not handle this request", 500)
