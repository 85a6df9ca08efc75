"""Accuracy on digits drawn the way canvases deliver them, through the real /predict.

MNIST test digits are thinned to their centre lines and redrawn as strokes of a round,
fixed-width brush (not a scaled bitmap): any size from tiny to filling the canvas,
anywhere on it, slightly rotated, on transparent, white, dark and coloured backgrounds,
as PNG and JPEG, or cut out around the ink as from a scan, or written on paper, then scanned or
photographed. Each image goes through a real gunicorn server, and through the naive
reference pipeline (whole canvas resized to 28x28, textbook model) for comparison.

    python -m bench.drawn                    # 2,000 digits, starts its own server
    python -m bench.drawn --count 10000 --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import requests
import torch
from PIL import Image, ImageDraw

from bench.serve import Gunicorn
from bench.textbook import load_or_train, naive_preprocess
from model import mnist
from model.pen import SUBPIXEL, centre_lines, place
from tests.drawing import camera, cut_out, scanner, sheet

CANVASES = ["transparent PNG", "white PNG", "white JPEG", "dark PNG", "dark JPEG", "coloured PNG", "coloured JPEG"]
KINDS = [*CANVASES, "cut-out PNG", "cut-out JPEG", "scanned notebook page", "photo of paper"]
# Paper and ink for photos: (paper RGB, [ink RGB, ...]).
PAPERS = [
    ((246, 244, 238), [(20, 24, 40), (25, 45, 140), (60, 60, 64), (15, 15, 15)]),     # white notebook
    ((238, 228, 200), [(30, 30, 50), (20, 40, 120), (70, 66, 60)]),                   # cream, pencil
    ((250, 240, 150), [(20, 20, 30), (30, 40, 150)]),                                 # yellow legal pad
    ((205, 205, 200), [(15, 15, 20), (30, 30, 110)]),                                 # grey recycled
    ((40, 62, 48), [(235, 235, 225), (240, 230, 140)]),                               # green board, chalk
    ((28, 30, 34), [(240, 240, 240), (200, 225, 250)]),                               # blackboard, chalk
]


def colours(kind: str, rng: random.Random) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """(ink, paper) for a kind of background; paper None is transparent."""
    if kind.startswith("transparent"):
        return (rng.randint(0, 60),) * 3 + (255,), None
    if kind.startswith(("white", "cut-out")):  # a cut-out is a scan's: dark ink on white paper
        return (rng.randint(0, 70),) * 3 + (255,), (rng.randint(235, 255),) * 3 + (255,)
    if kind.startswith("dark"):
        return (rng.randint(200, 255),) * 3 + (255,), (rng.randint(0, 45),) * 3 + (255,)
    while True:  # coloured ink on coloured paper, with enough contrast to read
        ink = tuple(rng.randint(0, 255) for _ in range(3))
        paper = tuple(rng.randint(0, 255) for _ in range(3))
        if np.linalg.norm(np.subtract(ink, paper)) > 180:
            return ink + (255,), paper + (255,)


def render(digit: np.ndarray, kind: str, rng: random.Random) -> tuple[bytes, dict]:
    """One MNIST digit drawn with a round brush on a canvas, encoded as the kind says; a cut-out is
    cut down to the box around its ink, as a script cuts a digit out of a scan."""
    segments, aspect = centre_lines(digit)
    canvas_w, canvas_h = rng.choice([(280, 280), (280, 280), (400, 400), (600, 400), (360, 640)])
    height = float(np.exp(rng.uniform(np.log(14), np.log(0.95 * min(canvas_h, canvas_w / max(aspect, 0.3))))))
    # Stroke width relative to the digit, from a fine pen (4%) to a fat marker (22%; MNIST's own
    # strokes are 10-15%), never under 1.5 screen pixels.
    brush = max(1.5, height * float(np.exp(rng.uniform(np.log(0.04), np.log(0.22)))))
    angle = np.radians(rng.uniform(-10, 10))
    width = aspect * height
    left = rng.uniform(brush, max(brush, canvas_w - width - brush))
    top = rng.uniform(brush, max(brush, canvas_h - height - brush))
    ink, paper = colours(kind, rng)
    s = 2  # supersampling, for anti-aliased edges like a canvas's
    image = Image.new("RGBA", (canvas_w * s, canvas_h * s), paper or (0, 0, 0, 0))
    brush_along(ImageDraw.Draw(image), place(segments, aspect, left, top, height, angle) * s, brush * s, ink)
    image = image.resize((canvas_w, canvas_h), Image.Resampling.BOX)
    if kind.startswith("cut-out"):
        image = cut_out(image)
    size = "tiny (<30 px)" if height < 30 else "small (<80 px)" if height < 80 else "medium (<180 px)" \
        if height < 180 else "large"
    stroke = brush / height
    stroke_kind = "thin brush (<7%)" if stroke < 0.07 else "medium brush" if stroke < 0.14 else "thick brush (>14%)"
    return encoded(image, kind, rng), {"kind": kind, "size": size, "brush": stroke_kind}


def brush_along(pen: ImageDraw.ImageDraw, segments: np.ndarray, brush: float, ink: tuple[int, ...]) -> None:
    """Line segments (N, 2, 2) in pixels drawn as strokes of a round brush `brush` px wide: each
    a line with a round cap at either end, as a canvas's round line caps and joins draw it."""
    r = brush / 2
    for a, b in segments:
        pen.line([tuple(a), tuple(b)], fill=ink, width=max(1, round(2 * r)))
        for x, y in (a, b):
            pen.ellipse([x - r, y - r, x + r, y + r], fill=ink)


def encoded(image: Image.Image, kind: str, rng: random.Random) -> bytes:
    """A canvas's picture saved as the kind says: JPEG at quality 60-92, else PNG."""
    buffer = io.BytesIO()
    if kind.endswith("JPEG"):
        image.convert("RGB").save(buffer, "JPEG", quality=rng.randint(60, 92))
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def phone_sheet(rng: random.Random) -> tuple[int, int, tuple[int, int, int], list]:
    """The sheet a phone photographs: its size (800-2000 px, either way up), its paper colour, and
    the inks that go on that paper."""
    side = rng.randint(800, 2000)
    width, height = (side, round(side * 0.75)) if rng.random() < 0.5 else (round(side * 0.75), side)
    paper, inks = rng.choice(PAPERS)
    return width, height, paper, inks


def on_paper(digit: np.ndarray, rng: random.Random, scanned: bool = False) -> tuple[bytes, dict]:
    """One MNIST digit written on paper and photographed with a phone, as a JPEG of 800-2000 px (the
    sheet and the camera are `tests.drawing.sheet` and `tests.drawing.camera`), or `scanned`: a PNG
    of a ruled or squared notebook page (`tests.drawing.scanner`)."""
    segments, aspect = centre_lines(digit)
    width, height, paper, inks = phone_sheet(rng)
    if scanned:
        paper, inks = rng.choice([(paper, inks) for paper, inks in PAPERS if sum(paper) > 300])  # no board
    ink = rng.choice(inks)
    image = sheet(width, height, paper, rng, ruled=True if scanned else None)
    # The digit: a pen's or chalk's stroke, 15-60% of the sheet's shorter side, near the middle.
    digit_height = rng.uniform(0.15, 0.6) * min(width, height)
    brush = max(2.0, digit_height * rng.uniform(0.05, 0.13))
    angle = np.radians(rng.uniform(-10, 10))
    left = width / 2 + rng.uniform(-0.2, 0.2) * width - aspect * digit_height / 2
    top = height / 2 + rng.uniform(-0.2, 0.2) * height - digit_height / 2
    points = place(segments, aspect, left, top, digit_height, angle) * SUBPIXEL
    cv2.polylines(image, list(np.round(points).astype(np.int32)), False, tuple(float(v) for v in ink),
                  max(1, round(brush)), cv2.LINE_AA, shift=2)
    size = "small (<80 px)" if digit_height < 80 else "medium (<180 px)" if digit_height < 180 else "large"
    stroke = brush / digit_height
    stroke_kind = "thin brush (<7%)" if stroke < 0.07 else "medium brush" if stroke < 0.14 else "thick brush (>14%)"
    info = {"size": size, "brush": stroke_kind}
    if scanned:
        return scanner(image), {"kind": "scanned notebook page", **info}
    return camera(image, rng), {"kind": "photo of paper", **info}


def draw_kind(digit: np.ndarray, kind: str, rng: random.Random) -> tuple[bytes, dict]:
    """A digit as the kind of image says: a canvas export, a scan or a photo of paper."""
    if kind in ("photo of paper", "scanned notebook page"):
        return on_paper(digit, rng, scanned=kind == "scanned notebook page")
    return render(digit, kind, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="how many MNIST test digits to draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR or data/mnist)")
    parser.add_argument("--url", default=None, help="a running digitpad server (default: start one)")
    parser.add_argument("--save-errors", type=Path, default=None, help="write the misread drawings to this folder")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    images, labels = mnist.load("test", args.data_dir)
    order = list(range(len(images)))
    rng.shuffle(order)
    order = order[:args.count]
    print(f"drawing {len(order)} MNIST test digits ...", file=sys.stderr)
    drawings = [draw_kind(images[i].numpy(), KINDS[n % len(KINDS)], rng) for n, i in enumerate(order)]
    truth = [int(labels[i]) for i in order]

    server = None if args.url else Gunicorn("app:create_app()", workers=2)
    url = args.url or server.url
    try:
        session = requests.Session()

        def ask(data: bytes) -> int | None:
            mime = "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png"
            response = session.post(f"{url}/predict", data=data, headers={"Content-Type": mime}, timeout=30)
            return response.json()["digit"] if response.ok else None

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            ours = list(pool.map(ask, [d for d, _ in drawings]))
        elapsed = time.perf_counter() - started
    finally:
        if server:
            server.stop()

    textbook = load_or_train(args.data_dir)
    with torch.inference_mode():
        naive = textbook(torch.from_numpy(np.stack([naive_preprocess(d) for d, _ in drawings])).unsqueeze(1))
    naive = naive.argmax(1).tolist()

    groups: dict[str, list[int]] = defaultdict(list)
    for n, (_, info) in enumerate(drawings):
        groups["all"].append(n)
        for key in ("kind", "size", "brush"):
            groups[info[key]].append(n)
    print(f"\nDrawn-digit accuracy: {len(order)} MNIST test digits redrawn with a round brush, "
          f"through {url}/predict ({len(order) / elapsed:.0f} requests/s)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}\n")
    print(f"| {'drawings':<20} | {'count':>5} | {'digitpad':>8} | {'naive':>6} |")
    print(f"|{'-' * 22}|{'-' * 7}|{'-' * 10}|{'-' * 8}|")
    order_of_rows = ["all", *KINDS, "tiny (<30 px)", "small (<80 px)", "medium (<180 px)", "large",
                     "thin brush (<7%)", "medium brush", "thick brush (>14%)"]
    for name in order_of_rows:
        members = groups.get(name, [])
        if not members:
            continue
        ours_acc = np.mean([ours[n] == truth[n] for n in members])
        naive_acc = np.mean([naive[n] == truth[n] for n in members])
        label = f"**{name}**" if name == "all" else name
        print(f"| {label:<20} | {len(members):>5} | {ours_acc:>8.2%} | {naive_acc:>6.1%} |")
    misses = [n for n in range(len(order)) if ours[n] != truth[n]]
    if args.save_errors:
        args.save_errors.mkdir(parents=True, exist_ok=True)
        for n in misses:
            label = f"true{truth[n]}-got{ours[n]}-{drawings[n][1]['kind'].replace(' ', '_')}-{n}"
            ext = "jpg" if drawings[n][1]["kind"].endswith("JPEG") else "png"
            (args.save_errors / f"{label}.{ext}").write_bytes(drawings[n][0])
        print(f"\n{len(misses)} misread drawings written to {args.save_errors}")


if __name__ == "__main__":
    main()
