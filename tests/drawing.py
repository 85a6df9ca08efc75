"""Digits drawn the way a canvas draws them: smooth strokes of a round brush, any size,
anywhere, any colours, exported as PNG, JPEG and friends. No MNIST pixels involved."""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageDraw

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


# Conventions of other hands than the ones STROKES draws (and MNIST mostly holds).
STYLES: dict[str, tuple[int, list[list[tuple[float, float]]]]] = {
    # Continental Europe: a 1 with a long up-stroke (which a model raised on MNIST reads as 7)...
    "continental 1": (1, [[(0.1, 0.38), (0.6, 0.04), (0.6, 0.96)]]),
    # ...and so a 7 with a bar across, to keep the two apart.
    "crossed 7": (7, [[(0.12, 0.06), (0.88, 0.06), (0.6, 0.5), (0.4, 0.97)], [(0.32, 0.52), (0.85, 0.5)]]),
}


def handwritten(strokes: list[list[tuple[float, float]]], rng: random.Random, canvas: int = 300) -> Image.Image:
    """One person's hand: every rendering of the same strokes a little different in shape, size,
    slant, tilt and pen, as a transparent-canvas RGBA image."""
    size = rng.uniform(0.4, 0.73) * canvas
    angle, shear = rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    out = []
    for stroke in strokes:
        unit = _smooth([(x + rng.gauss(0, 0.025), y + rng.gauss(0, 0.025)) for x, y in stroke]) - 0.5
        unit[:, 0] -= shear * unit[:, 1]
        unit = unit @ rotation.T + 0.5
        out.append(np.column_stack([(canvas - 0.7 * size) / 2 + unit[:, 0] * 0.7 * size,
                                    (canvas - size) / 2 + unit[:, 1] * size]))
    return render(out, canvas=(canvas, canvas), brush=rng.uniform(0.027, 0.073) * canvas, supersample=2)


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


def paths(digit: int, box: tuple[float, float, float], angle: float = 0.0) -> list[np.ndarray]:
    """The digit's pen paths, (N, 2) arrays of canvas pixels; box is (left, top, height)."""
    left, top, size = box
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    out = []
    for stroke in STROKES[digit]:
        unit = (_smooth(stroke) - 0.5) @ rotation.T + 0.5
        out.append(np.column_stack([left + unit[:, 0] * 0.7 * size, top + unit[:, 1] * size]))
    return out


def draw(digit: int, *, canvas: tuple[int, int] = (280, 280), box: tuple[float, float, float] | None = None,
         brush: float = 18, ink: tuple[int, ...] = (0, 0, 0, 255), paper: tuple[int, ...] | None = None,
         angle: float = 0.0, supersample: int = 4) -> Image.Image:
    """An RGBA image of `digit`: box is (left, top, height) in canvas pixels; paper None is transparent."""
    width, height = canvas
    if box is None:
        size = 0.7 * min(canvas)
        box = ((width - 0.7 * size) / 2, (height - size) / 2, size)
    return render(paths(digit, box, angle), canvas=canvas, brush=brush, ink=ink, paper=paper, supersample=supersample)


def render(strokes: list[np.ndarray], *, canvas: tuple[int, int], brush: float, ink: tuple[int, ...] = (0, 0, 0, 255),
           paper: tuple[int, ...] | None = None, supersample: int = 4) -> Image.Image:
    """Pen paths (canvas pixels) drawn with a round brush, anti-aliased, as an RGBA image."""
    width, height = canvas
    s = supersample
    image = Image.new("RGBA", (width * s, height * s), paper or (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    r = brush * s / 2
    for path in strokes:
        xy = path * s
        for (x0, y0), (x1, y1) in zip(xy[:-1], xy[1:]):
            pen.line([(x0, y0), (x1, y1)], fill=ink, width=max(1, round(2 * r)))
        for x, y in xy:
            pen.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    return image.resize(canvas, Image.Resampling.BOX)


def number(digits: str, *, gap: float = 0.3, height: float = 90, brush: float = 9, jitter: float = 0.0,
           slope: float = 0.0, seed: int = 0) -> tuple[tuple[int, int], list[np.ndarray]]:
    """A number's pen paths, digits side by side `gap` digit-heights apart (negative: overlapping),
    sizes and baselines jittered by `jitter`, the line climbing `slope` pixels per pixel across
    (negative: falling); returns the canvas size and the paths."""
    rng = random.Random(seed)
    margin = height * 0.4 + brush
    x, strokes = margin, []
    for digit in digits:
        size = height * (1 + rng.uniform(-jitter, jitter))
        top = margin + (height - size) + rng.uniform(-jitter, jitter) * height - slope * (x - margin)
        strokes += paths(int(digit), (x, top, size), rng.uniform(-jitter, jitter))
        x += (0.7 + gap) * size
    climb = slope * (x - margin)
    strokes = [path + (0, max(climb, 0.0)) for path in strokes]
    canvas = (round(x - gap * height + margin), round(height * (1 + 2 * jitter) + 2 * margin + abs(climb)))
    return canvas, strokes


def picture(digits: str, *, paper=None, ink_colour=(0, 0, 0, 255), fmt="PNG", **layout) -> bytes:
    """A number drawn by `number`'s layout (gap, height, brush, jitter, seed), encoded as `fmt`."""
    canvas, strokes = number(digits, **layout)
    image = render(strokes, canvas=canvas, brush=layout.get("brush", 9), ink=ink_colour, paper=paper, supersample=2)
    return encode(image.convert("RGB") if fmt == "JPEG" else image, fmt)


def cut_out(image: Image.Image) -> Image.Image:
    """The picture cut down to the box around its ink, the anti-aliased fringe included, as a script
    cuts a digit or a number out of a scan: the ink runs into every edge of it."""
    paper = Image.new(image.mode, image.size, image.getpixel((0, 0)))
    return image.crop(ImageChops.difference(image, paper).getbbox(alpha_only=False))


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def sheet(width: int, height: int, paper: tuple[int, int, int], rng: random.Random, margin: bool = False,
          ruled: bool | None = None) -> np.ndarray:
    """A sheet of paper, float RGB (height, width, 3); light paper often has faint ruled or
    squared lines, the way notebooks do (`ruled`: always or never), and with `margin` a red margin
    line down its left side."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = paper
    if margin:
        x = round(width * rng.uniform(0.08, 0.15))
        cv2.line(image, (x, 0), (x, height), (200, 90, 90), max(2, round(width / 500)), cv2.LINE_AA)
    if sum(paper) > 300 and (rng.random() < 0.6 if ruled is None else ruled):
        line = tuple(float(v) for v in np.array(paper) - rng.uniform(25, 55) * np.array([0.9, 0.6, 0.2]))
        thickness = max(1, round(max(width, height) / 900))
        pitch = rng.uniform(0.035, 0.06) * height
        offset = rng.uniform(0, pitch)
        for y in np.arange(offset, height, pitch):
            cv2.line(image, (0, round(y)), (width, round(y + rng.uniform(-0.01, 0.01) * width)), line, thickness,
                     cv2.LINE_AA)
        if rng.random() < 0.3:
            for x in np.arange(offset, width, pitch):
                cv2.line(image, (round(x), 0), (round(x), height), line, thickness, cv2.LINE_AA)
    return image


def camera(image: np.ndarray, rng: random.Random, quality: tuple[int, int] = (70, 92)) -> bytes:
    """A float RGB picture of a sheet as a phone delivers it, JPEG bytes: light falling off across
    the sheet and towards the corners, sometimes a shadow along an edge, paper grain, a slight
    blur, sensor noise, compression."""
    height, width = image.shape[:2]
    noise = np.random.default_rng(rng.randrange(2**32))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(direction) * (xs / width - 0.5) + np.sin(direction) * (ys / height - 0.5)
    light = 1 - rng.uniform(0.1, 0.4) * (ramp + 0.5)
    light *= 1 - rng.uniform(0.05, 0.3) * ((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2) / 0.5
    if rng.random() < 0.35:
        edge = rng.choice([xs / width, 1 - xs / width, ys / height, 1 - ys / height])
        reach = rng.uniform(0.1, 0.3)
        light *= 1 - rng.uniform(0.25, 0.5) * np.clip((reach - edge) / (0.4 * reach) + 0.5, 0, 1)
    grain = cv2.GaussianBlur(noise.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 1.5)
    image = image * light[..., None] + rng.uniform(6, 18) * grain[..., None]
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5) * max(width, height) / 1000)
    image += noise.normal(0, rng.uniform(1.5, 5), image.shape).astype(np.float32)
    return encode(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)), "JPEG",
                  quality=rng.randint(*quality))


def scanner(image: np.ndarray) -> bytes:
    """A float RGB picture of a sheet as a scanner delivers it, PNG bytes: evenly lit, no grain."""
    return encode(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)))


def on_desk(image: np.ndarray, desk: tuple[int, int, int] | None, rng: random.Random, turned: float = 0.0
            ) -> np.ndarray:
    """A sheet lying on a desk that shows around it, 3-12% of the sheet's size on each side (no
    desk: the sheet fills the picture); or, `turned` by that many degrees, photographed close, so
    that the sheet fills the picture but for the desk in its corners."""
    if desk is None:
        return image
    height, width = image.shape[:2]
    if turned:
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), turned, 1.0)
        return cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_LINEAR, borderValue=desk)
    mx, my = round(width * rng.uniform(0.03, 0.12)), round(height * rng.uniform(0.03, 0.12))
    out = np.empty((height + 2 * my, width + 2 * mx, 3), np.float32)
    out[:] = desk
    out[my:my + height, mx:mx + width] = image
    return out


def photo(digit: int, paper: tuple[int, int, int], ink: tuple[int, int, int], seed: int,
          size: tuple[int, int] = (1200, 900), margin: bool = False,
          desk: tuple[int, int, int] | None = None, turned: float = 0.0) -> bytes:
    """`digit` written on a sheet of `paper` (with a red margin line, lying on a `desk`, `turned` on
    it) and photographed: a JPEG as a phone sends it."""
    rng = random.Random(seed)
    return camera(on_desk(written(digit, sheet(*size, paper, rng, margin), ink, rng), desk, rng, turned), rng)


def scan(digit: int, paper: tuple[int, int, int], ink: tuple[int, int, int], seed: int,
         size: tuple[int, int] = (1000, 750)) -> bytes:
    """`digit` written across a few lines of a ruled or squared sheet of `paper` and scanned: evenly
    lit, no grain, a PNG."""
    rng = random.Random(seed)
    return scanner(written(digit, sheet(*size, paper, rng, ruled=True), ink, rng, heights=(0.1, 0.2)))


def written(digit: int, image: np.ndarray, ink: tuple[int, int, int], rng: random.Random,
            heights: tuple[float, float] = (0.25, 0.5)) -> np.ndarray:
    """`digit` written in `ink` on a sheet (float RGB) near its middle, `heights` of its height high."""
    height, width = image.shape[:2]
    size = (width, height)
    digit_height = rng.uniform(*heights) * height
    box = (width / 2 - 0.35 * digit_height + rng.uniform(-0.1, 0.1) * width,
           height / 2 - digit_height / 2 + rng.uniform(-0.1, 0.1) * height, digit_height)
    strokes = draw(digit, canvas=size, box=box, brush=digit_height * rng.uniform(0.06, 0.12),
                   ink=(*ink, 255), angle=rng.uniform(-0.15, 0.15), supersample=1)
    alpha = np.asarray(strokes.getchannel("A"), np.float32)[..., None] / 255
    return image * (1 - alpha) + np.array(ink, np.float32) * alpha
