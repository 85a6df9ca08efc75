"""Corrections that teach: a writer the model reads wrong corrects it N times, and it learns.

The writer writes continental 1s, with a long up-stroke, which the shipped model reads as 7,
and crosses their 7s. For each N, N of the writer's 1s go to POST /api/corrections on a real
gunicorn (an SQLite store, or --database-url), as every kind of image the endpoint takes
(transparent and white PNG, JPEG, a phone photo of paper). The operator exports them (npz),
`train.py --finetune` learns from the export, and the new model is measured on held-out
drawings in the writer's hand (1s, and crossed 7s it must not lose) and on the MNIST test set.

    python -m bench.corrections                   # N = 20, 50, 200
    python -m bench.corrections --sizes 20 --held-out 200
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests
import torch
from PIL import Image

from app.core.classifier import Classifier
from app.core.preprocess import preprocess
from bench.serve import Gunicorn, mime
from model import checkpoint
from tests.drawing import STYLES, camera, encode, handwritten, sheet

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["transparent PNG", "white PNG", "white JPEG", "photo of paper"]
TOKEN = "bench-operator"


def as_sent(drawing: Image.Image, kind: str, rng: random.Random) -> bytes:
    """The writer's drawing (RGBA, transparent) as a script or the page would send it."""
    if kind == "transparent PNG":
        return encode(drawing)
    white = Image.alpha_composite(Image.new("RGBA", drawing.size, (255, 255, 255, 255)), drawing).convert("RGB")
    if kind == "white PNG":
        return encode(white)
    if kind == "white JPEG":
        return encode(white, "JPEG", quality=rng.randint(75, 95))
    width, height = 1200, 900  # the drawing, three times its size, on a photographed sheet
    image = sheet(width, height, (246, 244, 238), rng)
    alpha = np.zeros((height, width, 1), np.float32)
    big = drawing.getchannel("A").resize((3 * drawing.width, 3 * drawing.height), Image.Resampling.BILINEAR)
    left, top = (width - big.width) // 2, (height - big.height) // 2
    alpha[top:top + big.height, left:left + big.width, 0] = np.asarray(big, np.float32) / 255
    image = image * (1 - alpha) + np.array((25, 30, 60), np.float32) * alpha
    return camera(image, rng)


def writer(style: str, count: int, seed: int) -> list[tuple[bytes, str]]:
    """`count` drawings in `style`, each sent as one of KINDS in turn."""
    rng = random.Random(seed)
    strokes = STYLES[style][1]
    return [(as_sent(handwritten(strokes, rng), KINDS[n % len(KINDS)], rng), KINDS[n % len(KINDS)])
            for n in range(count)]


def accuracies(weights: Path, fields: dict[str, np.ndarray]) -> dict[str, float]:
    """Each style's share of held-out drawings read as its digit, by the model in `weights`."""
    classifier = Classifier(weights, "cpu")
    return {style: float(np.mean(classifier.probabilities(f).argmax(1) == STYLES[style][0]))
            for style, f in fields.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200], help="numbers of corrections")
    parser.add_argument("--held-out", type=int, default=400, help="held-out drawings per style")
    parser.add_argument("--database-url", default=None, help="the store (default: a fresh SQLite file per N)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    held_out = {style: writer(style, args.held_out, seed=10_000 + i) for i, style in enumerate(STYLES)}
    held_fields = {style: np.stack([preprocess(data) for data, _ in drawings]) for style, drawings in held_out.items()}
    shipped = checkpoint.DEFAULT_WEIGHTS
    base_mnist = json.loads(checkpoint.metadata_path(shipped).read_text())["test_accuracy"]
    rows = [("shipped model", 0, accuracies(shipped, held_fields), base_mnist, None)]
    posting: dict[str, list[float]] = defaultdict(list)

    work = Path(tempfile.mkdtemp(prefix="digitpad-bench-corrections-"))
    for size in args.sizes:
        os.environ.update({
            "DIGITPAD_DATABASE_URL": args.database_url or f"sqlite:///{work}/corrections-{size}.sqlite3",
            "DIGITPAD_ADMIN_TOKEN": TOKEN, "DIGITPAD_CORRECTIONS_PER_MINUTE": "100000",
            "DIGITPAD_MAX_CORRECTIONS": "100000"})
        server = Gunicorn("app:create_app()", workers=2)
        operator = {"Authorization": f"Bearer {TOKEN}"}
        try:
            session = requests.Session()
            for data, kind in writer("continental 1", size, seed=size):
                said = session.post(f"{server.url}/predict", data=data, headers={"Content-Type": mime(data)},
                                    timeout=60).json()["digit"]
                started = time.perf_counter()
                response = session.post(f"{server.url}/api/corrections", timeout=60, json={
                    "image": base64.b64encode(data).decode(), "label": 1, "predicted": said})
                posting[kind].append((time.perf_counter() - started) * 1000)
                if response.status_code not in (200, 201):
                    raise SystemExit(f"correction refused: {response.status_code} {response.text}")
            export = session.get(f"{server.url}/api/corrections/export?format=npz", headers=operator, timeout=60)
            export.raise_for_status()
            for row in session.get(f"{server.url}/api/corrections?limit=500", headers=operator).json()["corrections"]:
                session.delete(f"{server.url}/api/corrections/{row['id']}", headers=operator)
        finally:
            server.stop()
        export_file, weights = work / f"corrections-{size}.npz", work / f"finetuned-{size}.safetensors"
        export_file.write_bytes(export.content)
        command = [sys.executable, "train.py", "--finetune", str(shipped), "--corrections", str(export_file),
                   "--out", str(weights)] + (["--data-dir", args.data_dir] if args.data_dir else [])
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"fine-tuning failed:\n{done.stderr[-3000:]}")
        seconds = time.perf_counter() - started
        meta = json.loads(checkpoint.metadata_path(weights).read_text())
        rows.append((f"after {size} corrections", meta["corrections"]["seen"],
                     accuracies(weights, held_fields),
                     meta["test_accuracy"], seconds))

    print(f"\nThe writer's held-out drawings: {args.held_out} per style, as {', '.join(KINDS)} in turn; "
          "MNIST test: 10,000 digits.\n")
    print("| model | corrections learnt from | continental 1 | crossed 7 | MNIST test | change on MNIST | fine-tune |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, seen, style, mnist_accuracy, seconds in rows:
        change = f"{100 * (mnist_accuracy - base_mnist):+.2f} points" if seconds else ""
        print(f"| {name} | {seen} | {style['continental 1']:.1%} | {style['crossed 7']:.1%} | {mnist_accuracy:.2%} "
              f"| {change} | {f'{seconds:.0f} s' if seconds else ''} |")
    print("\nPOST /api/corrections, one client, ms (preprocessing and a durable commit):\n")
    print("| image sent as | corrections | p50 | p90 |")
    print("|---|---:|---:|---:|")
    for kind in KINDS:
        times = posting[kind]
        print(f"| {kind} | {len(times)} | {np.percentile(times, 50):.1f} | {np.percentile(times, 90):.1f} |")


if __name__ == "__main__":
    main()
