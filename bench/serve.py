"""Serving speed: /predict latency and throughput under gunicorn, the workers' CPU time a request,
where a request's time goes, and the naive reference server side by side.

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
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from app.core.classifier import Classifier, fold_batchnorm
from app.core.explain import explain
from app.core.preprocess import ImageError, decode, ink, preprocess, to_mnist
from model import checkpoint
from tests.drawing import draw, encode, photo

ROOT = Path(__file__).resolve().parents[1]


# The kinds of drawing people send, as bench/drawn.py names them: (paper, ink, format).
KINDS = {
    "transparent PNG": (None, (20, 20, 20, 255), "PNG"),
    "white PNG": ((250, 250, 250, 255), (30, 30, 30, 255), "PNG"),
    "white JPEG": ((245, 245, 245, 255), (20, 20, 20, 255), "JPEG"),
    "dark PNG": ((25, 25, 30, 255), (240, 240, 240, 255), "PNG"),
    "dark JPEG": ((15, 15, 15, 255), (230, 230, 230, 255), "JPEG"),
    "coloured PNG": ((250, 230, 120, 255), (30, 60, 200, 255), "PNG"),
    "coloured JPEG": ((30, 90, 60, 255), (250, 220, 60, 255), "JPEG"),
}


CONCURRENCY = (1, 4, 16, 64)


def mix(count: int = 140, seed: int = 0) -> list[tuple[str, bytes]]:
    """Drawings of every kind: canvases of 240-512 px, digits tiny to canvas-filling, thin to fat
    brushes, PNG and JPEG, in turn."""
    rng = random.Random(seed)
    drawings = []
    for n in range(count):
        kind = list(KINDS)[n % len(KINDS)]
        paper, ink_colour, fmt = KINDS[kind]
        width, height = rng.choice([(240, 240), (280, 280), (400, 400), (512, 512), (512, 320), (320, 512)])
        size = float(np.exp(rng.uniform(np.log(14), np.log(0.9 * min(width / 0.7, height)))))
        brush = max(1.5, size * float(np.exp(rng.uniform(np.log(0.04), np.log(0.22)))))
        box = (rng.uniform(brush, max(brush, width - 0.7 * size - brush)),
               rng.uniform(brush, max(brush, height - size - brush)), size)
        image = draw(n % 10, canvas=(width, height), box=box, brush=brush, ink=ink_colour, paper=paper,
                     angle=rng.uniform(-0.15, 0.15), supersample=2)
        drawings.append((kind, encode(image, fmt, **({"quality": rng.randint(70, 92)} if fmt == "JPEG" else {}))))
    return drawings


def phone_photo() -> bytes:
    """A 12-megapixel phone photo of a digit on a notebook page."""
    return photo(4, (246, 244, 238), (25, 45, 140), seed=0, size=(3024, 4032))


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

    def workers(self) -> list[str]:
        """The process ids of its workers."""
        pid = self.process.pid
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()

    def worker_cpu_seconds(self) -> float:
        """CPU time its workers have used so far, user and system."""
        ticks = 0
        for worker in self.workers():
            fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def worker_peak_rss_mb(self) -> list[float]:
        return [int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{w}/status").read_text()).group(1)) / 1024
                for w in self.workers()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def latencies(server: Gunicorn, bodies: list[bytes], count: int) -> np.ndarray:
    """Milliseconds per request, one client, cycling through `bodies`."""
    for data in bodies[:20]:
        server.post(data)
    times = []
    for n in range(count):
        data = bodies[n % len(bodies)]
        started = time.perf_counter()
        server.post(data)
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def wrk(server: Gunicorn, bodies: list[bytes], connections: int, seconds: int) -> float:
    """Requests per second from wrk, each connection cycling through `bodies`."""
    with tempfile.TemporaryDirectory() as tmp:
        for n, data in enumerate(bodies):
            (Path(tmp) / f"{n}").write_bytes(data)
        script = Path(tmp) / "post.lua"
        script.write_text(
            f'local bodies, types, i = {{}}, {{}}, 0\n'
            f'for n = 0, {len(bodies) - 1} do\n'
            f'  local f = io.open("{tmp}/" .. n, "rb"); bodies[n + 1] = f:read("*all"); f:close()\n'
            f'  types[n + 1] = bodies[n + 1]:sub(1, 2) == "\\255\\216" and "image/jpeg" or "image/png"\n'
            f'end\n'
            f'request = function()\n'
            f'  i = i % #bodies + 1\n'
            f'  return wrk.format("POST", "/predict", {{["Content-Type"] = types[i]}}, bodies[i])\n'
            f'end\n')
        out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script),
                              f"http://127.0.0.1:{server.port}/predict"], capture_output=True, text=True, check=True)
    if "Non-2xx" in out.stdout or "Socket errors" in out.stdout and "timeout" in out.stdout:
        print(out.stdout, file=sys.stderr)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))


def timeit(fn, repeat: int = 5) -> float:
    """Best of `repeat` calls, in ms: the machine's noise only ever adds time."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def preprocessing_by_kind(drawings: list[tuple[str, bytes]], photo_jpeg: bytes) -> dict[str, dict[str, np.ndarray]]:
    """Where preprocessing's time goes, per kind of image, in this process, one thread like a worker."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    steps: dict[str, dict[str, list[float]]] = {}
    for kind, data in [*drawings, ("phone photo 12 MP JPEG", photo_jpeg)]:
        image = decode(data)
        ink_map = ink(image)
        row = steps.setdefault(kind, {"decode": [], "ink map": [], "crop, stroke, 28x28": [], "whole": []})
        row["decode"].append(timeit(lambda: decode(data)))
        row["ink map"].append(timeit(lambda: ink(image)))
        row["crop, stroke, 28x28"].append(timeit(lambda: to_mnist(ink_map)))
        row["whole"].append(timeit(lambda: preprocess(data)))
    return {kind: {step: np.array(times) for step, times in row.items()} for kind, row in steps.items()}


def explaining(drawings: list[tuple[str, bytes]]) -> np.ndarray:
    """/explain's work for each drawing of the mix, in this process, one thread (ms)."""
    classifier = Classifier(checkpoint.DEFAULT_WEIGHTS, "cpu")
    times = []
    for _, data in drawings:
        try:
            times.append(timeit(lambda: explain(data, classifier), 3))
        except ImageError:
            pass
    return np.array(times)


def forward_variants(field: np.ndarray) -> list[tuple[str, float]]:
    """The model's forward pass, as trained and as served, by PyTorch and by ONNX Runtime."""
    x = torch.from_numpy(field)[None, None]
    net, _ = checkpoint.load(checkpoint.DEFAULT_WEIGHTS)
    folded = fold_batchnorm(copy.deepcopy(net))
    rows = []
    with torch.inference_mode():
        rows.append(("PyTorch forward, batch 1: as trained (BatchNorm)", timeit(lambda: net(x), 200)))
        rows.append(("PyTorch forward, batch 1: BatchNorm folded", timeit(lambda: folded(x), 200)))
        channels_last = x.contiguous(memory_format=torch.channels_last)
        folded_cl = copy.deepcopy(folded).to(memory_format=torch.channels_last)
        rows.append(("PyTorch forward, batch 1: folded + channels-last", timeit(lambda: folded_cl(channels_last), 200)))
    served = Classifier(checkpoint.DEFAULT_WEIGHTS, "cpu")
    batch = x.numpy().repeat(256, 0)
    rows.append(("ONNX Runtime forward, batch 1 (served)", timeit(lambda: served.runner(x.numpy()), 200)))
    for label, classifier in (("PyTorch", Classifier(checkpoint.DEFAULT_WEIGHTS, "cpu", "torch")), ("ONNX Runtime", served)):
        rows.append((f"{label} forward, batch 256, per image", timeit(lambda: classifier.runner(batch), 10) / 256))
        rows.append((f"{label}: classifier.probabilities, batch 1", timeit(lambda: classifier.probabilities(x[0].numpy()), 200)))
    return rows


def paired_row(name: str, ours: list[float], naive: list[float]) -> str:
    """A table row from requests/s measured round by round: each server's median, the median of
    the rounds' ratios, and each round's ratio."""
    ratios = np.array(ours) / np.array(naive)
    return (f"| {name} | {np.median(ours):,.0f} | {np.median(naive):,.0f} | {np.median(ratios):.2f}x | "
            + ", ".join(f"{r:.2f}" for r in ratios) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of measurements, the servers in turn")
    parser.add_argument("--requests", type=int, default=840, help="sequential requests for latency, in all")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed for the throughput runs: apt-get install -y wrk")
    drawings = mix()
    bodies = [data for _, data in drawings]
    photo_jpeg = phone_photo()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}; "
          f"gunicorn with {args.workers} sync workers, 1 torch thread each; a mix of {len(drawings)} drawings "
          f"({', '.join(KINDS)}; canvases 240-512 px, tiny to canvas-filling digits, thin to fat brushes)\n")

    # Both servers run side by side (an idle one costs nothing) and are measured in turn, round after
    # round: a virtual machine's speed drifts by tens of percent over minutes, and each ratio below
    # compares measurements taken a few seconds apart.
    apps = {"digitpad": "app:create_app()", "naive": "bench.naive_server:create_app()"}
    servers = {}
    try:
        for label, app in apps.items():
            servers[label] = Gunicorn(app, args.workers)
        by_format = {fmt: [data for data in bodies if mime(data) == f"image/{fmt.lower()}"] for fmt in ("PNG", "JPEG")}
        results = {label: {"mix": [], "throughput": {c: [] for c in CONCURRENCY}, "format": {f: [] for f in by_format},
                           "cpu": []} for label in apps}
        for _ in range(args.rounds):
            for label, server in servers.items():
                results[label]["mix"].append(latencies(server, bodies, args.requests // args.rounds))
            for c in CONCURRENCY:
                for label, server in servers.items():
                    used = server.worker_cpu_seconds()
                    rate = wrk(server, bodies, c, args.duration)
                    results[label]["throughput"][c].append(rate)
                    if c == 16:  # what a request costs the workers, whatever else the machine is doing
                        spent = server.worker_cpu_seconds() - used
                        results[label]["cpu"].append(spent / (rate * args.duration) * 1000)
            for fmt, subset in by_format.items():
                for label, server in servers.items():
                    results[label]["format"][fmt].append(wrk(server, subset, 16, args.duration))
        for label, server in servers.items():
            results[label]["mix"] = np.concatenate(results[label]["mix"])
            results[label]["photo"] = latencies(server, [photo_jpeg], max(20, args.requests // 20))
        server = servers["digitpad"]
        images = [base64.b64encode(data).decode() for data in bodies[:128]] * 2
        body = json.dumps({"images": images}).encode()
        server.post(body, "/predict/batch", "application/json")
        # One client per worker, so both cores work, as they do for single requests.
        rounds = 4
        started = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(lambda _: server.post(body, "/predict/batch", "application/json"),
                          range(rounds * args.workers)))
        results["digitpad"]["batch"] = 256 * rounds * args.workers / (time.perf_counter() - started)
        for label, server in servers.items():
            results[label]["rss"] = server.worker_peak_rss_mb()
    finally:
        for server in servers.values():
            server.stop()

    ours, naive = results["digitpad"], results["naive"]
    print("Latency, one client, ms (p50 / p90 / p99):\n")
    print("| payload | digitpad | naive reference | ratio (p50) |")
    print("|---|---:|---:|---:|")
    for name, key in (("the mix of drawings", "mix"), ("phone photo, 12 MP JPEG", "photo")):
        a, b = np.percentile(ours[key], [50, 90, 99]), np.percentile(naive[key], [50, 90, 99])
        print(f"| {name} | {a[0]:.2f} / {a[1]:.2f} / {a[2]:.2f} | {b[0]:.2f} / {b[1]:.2f} / {b[2]:.2f} "
              f"| {a[0] / b[0]:.2f}x |")
    print(f"\nThroughput on the mix, requests/s (wrk, 1 thread, {args.duration} s a run; median of "
          f"{args.rounds} rounds, the servers in turn; the ratio is the median of each round's ratio):\n")
    print("| concurrency | digitpad | naive reference | ratio | each round's ratio |")
    print("|---:|---:|---:|---:|---|")
    for c in CONCURRENCY:
        print(paired_row(str(c), ours["throughput"][c], naive["throughput"][c]))
    for fmt in ours["format"]:
        print(paired_row(f"16, the mix's {fmt}s only", ours["format"][fmt], naive["format"][fmt]))
    cpu_ratios = np.array(ours["cpu"]) / np.array(naive["cpu"])
    print(f"| 16, the workers' CPU time a request, ms (less is better) | {np.median(ours['cpu']):.2f} "
          f"| {np.median(naive['cpu']):.2f} | {np.median(cpu_ratios):.2f}x | "
          + ", ".join(f"{r:.2f}" for r in cpu_ratios) + " |")
    single = np.median(ours["throughput"][16])
    print(f"\n/predict/batch, 256 drawings of the mix per request: {ours['batch']:,.0f} images/s "
          f"({ours['batch'] / single:.1f}x single requests at concurrency 16)")
    print(f"peak RSS per worker: digitpad {', '.join(f'{m:.0f}' for m in ours['rss'])} MB; "
          f"naive {', '.join(f'{m:.0f}' for m in naive['rss'])} MB")

    print("\nPreprocessing in-process, one thread, ms per image, median / p90 (best of 5 calls each):\n")
    by_kind = preprocessing_by_kind(drawings, photo_jpeg)
    steps = list(next(iter(by_kind.values())))
    print("| kind | " + " | ".join(steps) + " |")
    print("|---|" + "---:|" * len(steps))
    everything = {step: np.concatenate([by_kind[k][step] for k in KINDS]) for step in steps}
    for kind, row in [*by_kind.items(), ("**every drawing**", everything)]:
        print(f"| {kind} | " + " | ".join(f"{np.median(t):.2f} / {np.percentile(t, 90):.2f}" for t in row.values()) + " |")
    canvases = [(k, d) for k, d in drawings if k == "transparent PNG"]
    explained = explaining(canvases)
    print(f"\n/explain's work (stages, feature maps, Integrated Gradients for two digits), {len(explained)} canvas "
          f"drawings, one thread: p50 {np.median(explained):.1f} ms, p90 {np.percentile(explained, 90):.1f} ms")
    print("\n| model | ms |")
    print("|---|---:|")
    for name, ms in forward_variants(preprocess(bodies[0])):
        print(f"| {name} | {ms:.3f} |")


if __name__ == "__main__":
    main()
