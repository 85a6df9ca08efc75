"""Configuration from the environment (DIGITPAD_*), with defaults that suit a laptop and a server."""

from __future__ import annotations

import os
from typing import Any

from model.checkpoint import DEFAULT_WEIGHTS, LINES_WEIGHTS, SEGMENTS_WEIGHTS


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise SystemExit(f"digitpad: {name} must be a whole number, not {value!r}") from None


def from_environment() -> dict[str, Any]:
    """The app's settings; every key can also be overridden in create_app(overrides)."""
    return {
        "MODEL_PATH": os.environ.get("DIGITPAD_MODEL") or str(DEFAULT_WEIGHTS),
        "SEGMENTS_MODEL_PATH": os.environ.get("DIGITPAD_SEGMENTS_MODEL") or str(SEGMENTS_WEIGHTS),
        "LINES_MODEL_PATH": os.environ.get("DIGITPAD_LINES_MODEL") or str(LINES_WEIGHTS),
        "DEVICE": os.environ.get("DIGITPAD_DEVICE", "auto"),
        "RUNTIME": os.environ.get("DIGITPAD_RUNTIME", "auto"),
        "TORCH_THREADS": _int("DIGITPAD_TORCH_THREADS", 1),
        "MAX_CONTENT_LENGTH": _int("DIGITPAD_MAX_CONTENT_LENGTH", 16 * 1024 * 1024),
        "MAX_IMAGE_PIXELS": _int("DIGITPAD_MAX_IMAGE_PIXELS", 40_000_000),
        "MAX_BATCH": _int("DIGITPAD_MAX_BATCH", 256),
        "MAX_DIGITS": _int("DIGITPAD_MAX_DIGITS", 16),
        "CORS_ORIGINS": [o.strip() for o in os.environ.get("DIGITPAD_CORS_ORIGINS", "").split(",") if o.strip()],
        "LOG_FORMAT": os.environ.get("DIGITPAD_LOG_FORMAT", "text"),
        # Corrections: where they are kept (default: SQLite in the instance folder), who may read them.
        "DATABASE_URL": os.environ.get("DIGITPAD_DATABASE_URL") or None,
        "ADMIN_TOKEN": os.environ.get("DIGITPAD_ADMIN_TOKEN") or None,
        "CORRECTIONS_PER_MINUTE": _int("DIGITPAD_CORRECTIONS_PER_MINUTE", 30),
        "MAX_CORRECTIONS": _int("DIGITPAD_MAX_CORRECTIONS", 100_000),
        "MAX_ORIGINAL_BYTES": _int("DIGITPAD_MAX_ORIGINAL_BYTES", 1024 * 1024),
        # memory:// counts per worker process; redis://host:6379 shares the limit across workers and servers.
        "RATELIMIT_STORAGE_URI": os.environ.get("DIGITPAD_RATELIMIT_STORAGE_URI") or "memory://",
    }
