"""gunicorn settings for digitpad, read automatically by `gunicorn "app:create_app()"` run from
the repository root. Every value can be changed from the environment or the command line."""

import os

# This is the production configuration: Flask's debug mode stays off whatever the environment says.
os.environ["DIGITPAD_ENV"] = "production"
os.environ["FLASK_DEBUG"] = "0"

# Every request allocates and frees image-sized buffers (a few hundred KB to a few MB). By default
# glibc hands such buffers back to the kernel on free and faults fresh pages in on the next
# request, which costs more than decoding a canvas on a virtual machine; keep them in the heap
# instead (the workers inherit this from the master), and let Pillow reuse its image blocks.
os.environ.setdefault("PILLOW_BLOCKS_MAX", "64")
try:
    import ctypes

    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallopt(-3, 64 << 20)   # M_MMAP_THRESHOLD: buffers under 64 MB come from the heap
    _libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of freed heap
except (OSError, AttributeError):  # not glibc: nothing to tune
    pass

# Where to listen. The Docker image sets DIGITPAD_BIND=0.0.0.0:8000.
bind = os.environ.get("DIGITPAD_BIND", "127.0.0.1:8000")

# Predictions are CPU-bound: one synchronous worker per core, each with one torch thread
# (DIGITPAD_TORCH_THREADS), beats fewer workers with more threads.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "sync"

# Load the model once in the master; workers share its memory copy-on-write, and a broken
# model stops the server at start-up with one line instead of failing in every worker.
preload_app = True

# A worker silent for this long is killed and replaced; no prediction takes near this.
timeout = int(os.environ.get("DIGITPAD_TIMEOUT", 30))
# On SIGTERM, workers finish the requests they hold for up to this long, then exit.
graceful_timeout = int(os.environ.get("DIGITPAD_GRACEFUL_TIMEOUT", 20))
keepalive = 2

# Bounds on the request head; the body is bounded by DIGITPAD_MAX_CONTENT_LENGTH in the app.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Request lines go through the app's own structured log (one line per request, with the
# predicted digit); gunicorn's access log stays off unless asked for.
accesslog = os.environ.get("DIGITPAD_ACCESS_LOG") or None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("DIGITPAD_LOG_LEVEL", "info")

# Prometheus metrics from every worker, added up at /metrics: each process writes its own
# files in one folder, fresh for each server start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import atexit
    import shutil
    import tempfile

    _own_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="digitpad-metrics-")
    _master = os.getpid()

    @atexit.register
    def _remove_own_metrics_dir() -> None:
        # However the master exits (stopped, or an app that would not load); never as a worker exits.
        if os.getpid() == _master:
            shutil.rmtree(_own_metrics_dir, ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # ONNX Runtime must not cross the fork (app/core/runtime.py): each worker makes its own
    # sessions here, before its first request, instead of during it.
    from app.core import runtime

    runtime.open_sessions()


# Requests too malformed to reach the app (a control character in a header, a broken
# request line) are answered by gunicorn itself, as HTML by default. Answer them in the
# API's JSON shape instead, so every error a client sees is {"error": "..."}.
def _write_json_error(sock, status_int, reason, mesg):
    import json

    from gunicorn import util

    if status_int == 501:  # an unknown Transfer-Encoding: the client's mistake, as gunicorn's reason says
        status_int, reason = 400, "Bad Request"
    body = json.dumps({"error": f"{reason}: {mesg}"}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin1") + body)


def on_starting(server):
    from gunicorn import util

    util.write_error = _write_json_error
