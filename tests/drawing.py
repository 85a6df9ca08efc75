"""Digits drawn the way a canvas draws them: smooth strokes of a round brush, any size,
anywhere, any colours, exported as PNG, JPEG and friends. No MNIST pixels involved."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

# One or more strokes per digit, as points in a unit box (x right, y down), the way
# people commonly write them.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.5, 0.04), (0.2, 0.2), (0.12, 0.5), (0.2, 0.8), (0.5, 0.96), (0.8, 0.8), (0.88, 0.5),
         (0.8, 0.2), (0.5, 0.04), (0.3, 0.12)]],
    1: [[(0.3, 0.22), (0.55, 0.04), (0.55, 0.96)]],
    2: [[(0.15, 0.28), (0.3, 0.08), (0.55, 0.03), (0.8, 0.18), (0.78, 0.42), (0.45, 0.72), (0.15, 0.95),
         (0.88, 0.94)]],
    3: [[(0.15, 0.12), (0.45, 0.03), (0.75, 0.12), (0.75, 0.33), (0.42, 0.48), (0.8, 0.62), (0.82, 0.85),
         (0.5, 0.97), (0.15, 0.88)]],
    4: [[(0.6, 0.03), (0.12, 0.65), (0.88, 0.65)], [(0.66, 0.3), (0.66, 0.97)]],
    5: [[(0.82, 0.05), (0.28, 0.05), (0.22, 0.46), (0.55, 0.38), (0.8, 0.55), (0.8, 0.82), (0.5, 0.96),
         (0.15, 0.86)]],
    6: [[(0.72, 0.04), (0.38, 0.25), (0.2, 0.6), (0.28, 0.9), (0.55, 0.97), (0.78, 0.8), (0.72, 0.55),
         (0.45, 0.5), (0.24, 0.65)]],
    7: [[(0.12, 0.06), (0.88, 0.06), (0.6, 0.5), (0.4, 0.97)]],
    8: [[(0.72, 0.16), (0.5, 0.03), (0.27, 0.15), (0.32, 0.37), (0.68, 0.6), (0.74, 0.85), (0.5, 0.97),
         (0.26, 0.85), (0.32, 0.6), (0.68, 0.37), (0.72, 0.16)]],
    9: [[(0.78, 0.3), (0.55, 0.05), (0.28, 0.12), (0.25, 0.38), (0.5, 0.5), (0.78, 0.32), (0.76, 0.6),
         (0.7, 0.97)]],
}


def _smooth(points: list[tuple[float, float]], per_segment: int = 12) -> np.ndarray:
    """A Catmull-Rom curve through the points, as a canvas app's smoothing draws it."""
    p = np.array([points[0], *points, points[-1]], dtype=float)
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    out.append(p[-2][None])
    return np.concatenate(out)


def draw(digit: int, *, canvas: tuple[int, int] = (280, 280), box: tuple[float, float, float] | None = None,
         brush: float = 18, ink: tuple[int, ...] = (0, 0, 0, 255), paper: tuple[int, ...] | None = None,
         angle: float = 0.0, supersample: int = 4) -> Image.Image:
    """An RGBA image of `digit`: box is (left, top, height) in canvas pixels; paper None is transparent."""
    width, height = canvas
    if box is None:
        size = 0.7 * min(canvas)
        box = ((width - 0.7 * size) / 2, (height - size) / 2, size)
    left, top, size = box
    s = supersample
    image = Image.new("RGBA", (width * s, height * s), paper or (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    r = brush * s / 2
    for stroke in STROKES[digit]:
        unit = (_smooth(stroke) - 0.5) @ rotation.T + 0.5
        xy = np.column_stack([(left + unit[:, 0] * 0.7 * size) * s, (top + unit[:, 1] * size) * s])
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:]):
            pen.line([(x0, y0), (x1, y1)], fill=ink, width=max(1, round(2 * r)))
        for x, y in xy:
            pen.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    return image.resize(canvas, Image.Resampling.BOX)


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    image.save(buffer, fmt, **params)
    return buffer.getvalue()
