"""One log line and a set of Prometheus metrics per request.

Under gunicorn the metrics are kept in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets it
up), so /metrics adds up every worker, not just the one that happens to answer.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

REQUESTS = Counter("digitpad_requests_total", "HTTP requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("digitpad_request_duration_seconds", "Time to answer a request", ["endpoint"],
                    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
PREDICTIONS = Counter("digitpad_predictions_total", "Digits predicted", ["digit"])
ERRORS = Counter("digitpad_errors_total", "Errors returned, whole requests and batch items, by kind", ["kind"])

ERROR_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 415: "unsupported_media_type", 422: "no_digit", 429: "rate_limited",
               503: "unavailable", 507: "store_full"}

bp = Blueprint("observability", __name__)
log = logging.getLogger("digitpad.requests")


def error_kind(status: int) -> str:
    return ERROR_KINDS.get(status, "server_error" if status >= 500 else "client_error")


@bp.get("/metrics")
def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), **record.fields})


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        f = record.fields
        digits = f" digit={','.join(map(str, f['digits']))}" if f.get("digits") else ""
        error = f" error={f['error']!r}" if f.get("error") else ""
        return (f"{self.formatTime(record)} {f['method']} {f['path']} {f['status']} "
                f"{f['latency_ms']:.1f}ms{digits}{error}")


def register(app: Flask) -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    formatter = _JsonFormatter() if app.config["LOG_FORMAT"] == "json" else _TextFormatter()
    for handler in log.handlers:
        handler.setFormatter(formatter)
    app.register_blueprint(bp)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        latency = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(latency)
        digits = g.get("digits", [])
        for digit in digits:
            PREDICTIONS.labels(str(digit)).inc()
        if response.status_code >= 400:
            ERRORS.labels(error_kind(response.status_code)).inc()
        for status in g.get("item_errors", []):
            ERRORS.labels(error_kind(status)).inc()
        log.info("request", extra={"fields": {
            "method": request.method, "path": request.path, "status": response.status_code,
            "latency_ms": round(latency * 1000, 2), "digits": digits, "error": g.get("error")}})
        return response
