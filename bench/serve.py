"""Serving speed: /predict latency and throughput under gunicorn, where a request's time goes,
and the naive reference server side by side.

Needs wrk (`apt-get install -y wrk`) for the throughput runs.

    python -m bench.serve                 # 2 workers, as on a 2-core machine
    python -m bench.serve --workers 4 --duration 20
"""

from __future__ import annotations

import argparse
import base64
import copy
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app.classifier import Classifier, fold_batchnorm
from app.preprocess import decode, ink, preprocess, to_mnist
from model import checkpoint
from tests.drawing import draw, encode

ROOT = Path(__file__).resolve().parents[1]


def payloads() -> dict[str, bytes]:
    """A 280x280 transparent canvas PNG, and a 12-megapixel phone photo of a digit on paper."""
    canvas = encode(draw(7, canvas=(280, 280), brush=16))
    rng = np.random.default_rng(0)
    photo = draw(4, canvas=(3024, 4032), paper=(228, 224, 214, 255), ink=(35, 38, 60, 255), brush=70, supersample=1)
    pixels = np.asarray(photo.convert("RGB"), np.float32)
    shade = np.linspace(1.0, 0.82, pixels.shape[0])[:, None, None]  # uneven light across the sheet
    pixels = np.clip(pixels * shade + rng.normal(0, 4, pixels.shape), 0, 255).astype(np.uint8)
    return {"canvas PNG 280x280": canvas,
            "phone JPEG 3024x4032": encode(Image.fromarray(pixels), "JPEG", quality=85)}


def mime(data: bytes) -> str:
    return "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png"


class Gunicorn:
    def __init__(self, app: str, workers: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {**os.environ, "DIGITPAD_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers)}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "gunicorn", app], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # gunicorn.conf.py preloads the app, so the port opens only once the model is loaded.
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"{app} did not start")

    def post(self, data: bytes, path: str = "/predict", content_type: str | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", path, body=data, headers={"Content-Type": content_type or mime(data)})
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        if response.status != 200:
            raise RuntimeError(body)
        return body

    def worker_peak_rss_mb(self) -> list[float]:
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{c}/status").read_text()).group(1)) / 1024
                for c in children]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def latencies(server: Gunicorn, data: bytes, count: int) -> np.ndarray:
    for _ in range(20):
        server.post(data)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        server.post(data)
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def wrk(server: Gunicorn, data: bytes, connections: int, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(data)
        script = Path(tmp) / "post.lua"
        script.write_text(f'local f = io.open("{body}", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*all")\n'
                          f'f:close()\nwrk.headers["Content-Type"] = "{mime(data)}"\n')
        out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
                              f"http://127.0.0.1:{server.port}/predict"], capture_output=True, text=True, check=True)
    if "Non-2xx" in out.stdout or "Socket errors" in out.stdout and "timeout" in out.stdout:
        print(out.stdout, file=sys.stderr)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))


def timeit(fn, repeat: int = 300) -> float:
    for _ in range(10):
        fn()
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat * 1000


def in_process(data: dict[str, bytes]) -> list[tuple[str, float]]:
    """Where a request's time goes, in this process, one torch thread like a worker."""
    torch.set_num_threads(1)
    rows = []
    for name, blob in data.items():
        image = decode(blob)
        ink_map = ink(image)
        rows.append((f"{name}: decode", timeit(lambda: decode(blob), 30 if "phone" in name else 300)))
        rows.append((f"{name}: ink map", timeit(lambda: ink(image), 30 if "phone" in name else 300)))
        rows.append((f"{name}: crop, stroke, 28x28", timeit(lambda: to_mnist(ink_map))))
        rows.append((f"{name}: whole preprocess", timeit(lambda: preprocess(blob), 30 if "phone" in name else 300)))
    x = torch.from_numpy(preprocess(data["canvas PNG 280x280"]))[None, None]
    net, _ = checkpoint.load(checkpoint.DEFAULT_WEIGHTS)
    folded = fold_batchnorm(copy.deepcopy(net))
    with torch.inference_mode():
        rows.append(("forward, batch 1: as trained (BatchNorm)", timeit(lambda: net(x), 2000)))
        rows.append(("forward, batch 1: BatchNorm folded", timeit(lambda: folded(x), 2000)))
        channels_last = x.contiguous(memory_format=torch.channels_last)
        folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
        rows.append(("forward, batch 1: folded + channels-last (served)", timeit(lambda: folded_cl(channels_last), 2000)))
        scripted = torch.jit.freeze(torch.jit.trace(folded, x))
        rows.append(("forward, batch 1: folded + TorchScript frozen", timeit(lambda: scripted(x), 2000)))
        batch = x.repeat(256, 1, 1, 1)
        rows.append(("forward, batch 256, per image", timeit(lambda: folded(batch), 20) / 256))
    classifier = Classifier(checkpoint.DEFAULT_WEIGHTS, "cpu")
    rows.append(("classifier.probabilities, batch 1 (served)", timeit(lambda: classifier.probabilities(x[0].numpy()))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=500, help="sequential requests for latency")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed for the throughput runs: apt-get install -y wrk")
    data = payloads()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}; "
          f"gunicorn with {args.workers} sync workers, 1 torch thread each\n")

    results = {}
    for label, app in (("digitpad", "app:create_app()"), ("naive", "bench.naive_server:create_app()")):
        server = Gunicorn(app, args.workers)
        try:
            row = {}
            for name, blob in data.items():
                count = args.requests if "canvas" in name else max(20, args.requests // 10)
                row[name] = np.percentile(latencies(server, blob, count), [50, 90, 99])
            row["throughput"] = {c: wrk(server, data["canvas PNG 280x280"], c, args.duration) for c in (1, 4, 16, 64)}
            if label == "digitpad":
                images = [base64.b64encode(data["canvas PNG 280x280"]).decode()] * 256
                body = json.dumps({"images": images}).encode()
                server.post(body, "/predict/batch", "application/json")
                # One client per worker, so both cores work, as they do for single requests.
                rounds = 4
                started = time.perf_counter()
                with ThreadPoolExecutor(args.workers) as pool:
                    list(pool.map(lambda _: server.post(body, "/predict/batch", "application/json"),
                                  range(rounds * args.workers)))
                row["batch"] = 256 * rounds * args.workers / (time.perf_counter() - started)
            row["rss"] = server.worker_peak_rss_mb()
            results[label] = row
        finally:
            server.stop()

    ours, naive = results["digitpad"], results["naive"]
    print("Latency, one client, ms (p50 / p90 / p99):\n")
    print("| payload | digitpad | naive reference | ratio (p50) |")
    print("|---|---:|---:|---:|")
    for name in data:
        a, b = ours[name], naive[name]
        print(f"| {name} | {a[0]:.2f} / {a[1]:.2f} / {a[2]:.2f} | {b[0]:.2f} / {b[1]:.2f} / {b[2]:.2f} | {a[0] / b[0]:.2f}x |")
    print("\nThroughput, canvas PNG, requests/s (wrk, 1 thread):\n")
    print("| concurrency | digitpad | naive reference | ratio |")
    print("|---:|---:|---:|---:|")
    for c, rps in ours["throughput"].items():
        print(f"| {c} | {rps:,.0f} | {naive['throughput'][c]:,.0f} | {rps / naive['throughput'][c]:.2f}x |")
    single = ours["throughput"][16]
    print(f"\n/predict/batch, 256 canvas PNGs per request: {ours['batch']:,.0f} images/s "
          f"({ours['batch'] / single:.1f}x single requests at concurrency 16)")
    print(f"peak RSS per worker: digitpad {', '.join(f'{m:.0f}' for m in ours['rss'])} MB; "
          f"naive {', '.join(f'{m:.0f}' for m in naive['rss'])} MB")

    print("\nIn-process, one torch thread, ms per call:\n")
    print("| step | ms |")
    print("|---|---:|")
    for name, ms in in_process(data):
        print(f"| {name} | {ms:.3f} |")


if __name__ == "__main__":
    main()
