"""Digits as a pen draws them, and numbers written with them.

An MNIST digit is thinned to its centre line and redrawn as strokes of a round brush, at any size
and stroke width, the way a canvas or a pen on paper draws it (not a scaled bitmap, whose
strokes grow with it). Numbers are such digits side by side, apart, close, touching or
overlapping, at slightly different sizes, heights and slants.

bench/drawn.py and bench/numbers.py draw their test sets with it from MNIST test digits;
train_lines.py draws part of the line reader's training lines with it from training digits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import torch
from PIL import Image

from model.augment import skeletonize

# How far a digit's box is from its left neighbour's, in digit heights. Touching is found by
# sliding the digit in until its ink meets the line's.
GAPS = {
    "wide": (0.3, 0.7),
    "tight": (0.05, 0.15),
    "touching": None,
    "overlapping": (-0.2, -0.08),
}
HEIGHTS = (40, 110)   # a number's height in pixels...
BRUSHES = (0.05, 0.16)  # ...and its pen's width, a share of that height (never under 1.5 px)
SIZES = 0.15      # a digit's height is the number's times 1 +- up to this...
BASELINES = 0.08  # ...and its bottom up to this many heights above or below the line
MOST_SIZES, MOST_BASELINES = 0.35, 0.12  # as far as either can go: the canvas's margins hold no more
SUBPIXEL = 4  # cv2.line's fixed-point precision (shift=2)
COVERED = 0.03  # digit heights: a pen stroke this close to one drawn before adds no ink (BRUSHES'
                # finest is 0.05 heights wide; a finer pen's strokes may leave out a spur's tip, which
                # the picture, painted from the centre lines, still has)


def centre_lines(digit: np.ndarray) -> tuple[np.ndarray, float]:
    """A uint8 (28, 28) digit's centre line as (N, 2, 2) line segments, (x, y) in units of its
    height from its top left corner, and its width / height.

    Thinned at four times MNIST's size, so that the line follows the stroke smoothly."""
    grey = np.asarray(Image.fromarray(digit).resize((112, 112), Image.Resampling.BILINEAR))
    big = grey > 60
    skeleton = skeletonize(torch.from_numpy(grey.copy())[None, None], threshold=60 / 255)[0, 0].numpy()
    ys, xs = np.nonzero(big)
    top, height = ys.min(), ys.max() - ys.min() + 1
    left, width = xs.min(), xs.max() - xs.min() + 1
    points = {(y, x) for y, x in zip(*np.nonzero(skeleton))}
    segments = [((x, y), (x + dx, y + dy)) for y, x in points
                for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)) if (y + dy, x + dx) in points]
    if not segments:  # a digit thinned to a single point
        y, x = next(iter(points))
        segments.append(((x, y), (x, y)))
    return (np.array(segments, np.float64) - (left, top)) / height, width / height


def place(segments: np.ndarray, aspect: float, left: float, top: float, height: float, angle: float) -> np.ndarray:
    """A digit's `centre_lines` in pixels: the digit `height` px high with its box's top left at
    (left, top), turned by `angle` radians about its centre."""
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([aspect / 2, 0.5])
    return ((segments - centre) @ rotation.T + centre) * height + (left, top)


def paint(coverage: np.ndarray, segments: np.ndarray, aspect: float, left: float, top: float, height: float,
          brush: float, angle: float) -> None:
    """One digit's centre lines as strokes of a round pen `brush` px wide, onto a float coverage
    map (max blend), placed as `place` says."""
    points = place(segments, aspect, left, top, height, angle)
    layer = np.zeros_like(coverage)
    cv2.polylines(layer, list(np.round(points * SUBPIXEL).astype(np.int32)), False, 1.0, max(1, round(brush)),
                  cv2.LINE_AA, shift=2)
    np.maximum(coverage, np.minimum(layer, 1), out=coverage)


@dataclass
class Written:
    """A number as `write` wrote it: its coverage map (H, W) in [0, 1], the brush's width, and
    where each digit went (`place`'s arguments after its centre lines)."""

    coverage: np.ndarray
    brush: float
    placed: list[tuple[np.ndarray, float, float, float, float, float]]

    @cached_property
    def strokes(self) -> list[list[np.ndarray]]:
        """Each digit's pen strokes, (N, 2) arrays of x, y in the map's pixels: what the page would
        send. Traced when asked for (2 ms a digit), not for every line train_lines.py composes."""
        return [[place(path, *where) for path in pen_strokes(segments)] for segments, *where in self.placed]

    @property
    def paths(self) -> list[np.ndarray]:
        """Every pen stroke, digit after digit, as the page sends a drawing's strokes."""
        return [path for digit in self.strokes for path in digit]


def compose(items: Sequence[tuple[np.ndarray, float]], gaps: Sequence[str], rng: random.Random,
            sizes: float = SIZES, baselines: float = BASELINES, heights: tuple[float, float] = HEIGHTS,
            brushes: tuple[float, float] = BRUSHES) -> np.ndarray:
    """A number's coverage map (H, W) in [0, 1]: the digits' `centre_lines` side by side, left to
    right, each meeting its left neighbour as `gaps` says (one of GAPS per neighbour). Each digit's
    height is the number's times 1 +- up to `sizes`, its bottom up to `baselines` heights off the
    line; the number is `heights` px high (from, to), the pen `brushes` of that height wide."""
    return write(items, gaps, rng, sizes, baselines, heights, brushes).coverage


def write(items: Sequence[tuple[np.ndarray, float]], gaps: Sequence[str], rng: random.Random,
          sizes: float = SIZES, baselines: float = BASELINES, heights: tuple[float, float] = HEIGHTS,
          brushes: tuple[float, float] = BRUSHES) -> Written:
    """`compose`'s number, with the strokes that drew it."""
    if not (0 <= sizes <= MOST_SIZES and 0 <= baselines <= MOST_BASELINES):
        raise ValueError(f"sizes must be within 0-{MOST_SIZES} and baselines within 0-{MOST_BASELINES}: "
                         "the canvas's margins hold no more")
    base = rng.uniform(*heights)
    brush = max(1.5, base * rng.uniform(*brushes))
    digit_heights = [base * rng.uniform(1 - sizes, 1 + sizes) for _ in items]
    shifts = [base * rng.uniform(-baselines, baselines) for _ in items]
    angles = [np.radians(rng.uniform(-8, 8)) for _ in items]
    margin = base * 0.4 + brush
    width = int(sum(a * h for (_, a), h in zip(items, digit_heights)) + len(items) * base + 2 * margin)
    height = int(base * 1.5 + 2 * margin)
    coverage = np.zeros((height, width), np.float32)
    placed = []
    x = margin
    for n, ((segments, aspect), h) in enumerate(zip(items, digit_heights)):
        top = margin + (base * 1.15 - h) + shifts[n]  # bottoms roughly on one line
        if n:
            if GAPS[gaps[n - 1]] is None:
                x = _touching(coverage, segments, aspect, x, top, h, brush, angles[n])
            else:
                x += rng.uniform(*GAPS[gaps[n - 1]]) * base
        paint(coverage, segments, aspect, x, top, h, brush, angles[n])
        placed.append((segments, aspect, x, top, h, angles[n]))
        x += aspect * h
    cols = np.flatnonzero(coverage.max(0) > 0)
    return Written(coverage[:, :min(width, cols[-1] + int(margin))], brush, placed)


def _touching(coverage: np.ndarray, segments: np.ndarray, aspect: float, x: float, top: float, height: float,
              brush: float, angle: float) -> float:
    """Where the digit's left edge goes when it is slid in from 0.3 heights right of `x`, a pixel at
    a time, until its ink meets the ink drawn (at most 0.6 heights left of `x`)."""
    start = x + 0.3 * height
    layer = np.zeros_like(coverage)
    paint(layer, segments, aspect, start, top, height, brush, angle)
    drawn, ink = coverage > 0.5, layer > 0.5
    cols = np.flatnonzero(ink.any(0))
    # Drawn one whole pixel further left, the same strokes land exactly one column further left.
    for step in range(int(np.ceil(0.9 * height))):
        if step > cols[0]:
            break
        if (drawn[:, cols[0] - step:cols[-1] + 1 - step] & ink[:, cols[0]:cols[-1] + 1]).any():
            return start - step
    return x - 0.6 * height


def pen_strokes(segments: np.ndarray) -> list[np.ndarray]:
    """A digit's centre line (N, 2, 2 line segments) as the strokes a pen would draw it with, each a
    (K, 2) array: from a free end where there is one, on as straight as it can go at every fork,
    until the line runs out; then the next stroke from what is left, until no ink is left undrawn.

    A segment both of whose ends a stroke already passes through adds no ink and is dropped
    (thinning joins pixels diagonally as well as straight, so the centre line has small triangles),
    and a stroke that never leaves the ones before by more than COVERED (a spur of a thick spot) is
    not drawn. Points are in `segments`' units: digit heights, for `centre_lines`."""
    points, ends = np.unique(segments.reshape(-1, 2), axis=0, return_inverse=True)
    edges = {frozenset((int(a), int(b))) for a, b in ends.reshape(-1, 2) if a != b}
    strokes: list[np.ndarray] = []
    drawn: set[int] = set()
    while edges := {edge for edge in edges if not edge <= drawn}:
        neighbours: dict[int, list[int]] = {}
        for a, b in map(tuple, edges):
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
        start = min(neighbours, key=lambda i: (len(neighbours[i]) != 1, points[i][0], points[i][1]))
        path = [start]
        while onward := [n for n in neighbours[path[-1]] if frozenset((path[-1], n)) in edges]:
            here = points[path[-1]]
            heading = here - points[path[max(0, len(path) - 4)]]
            step = max(onward, key=lambda n: float(np.dot(points[n] - here, heading))
                       / (float(np.linalg.norm(points[n] - here)) + 1e-9))
            edges.discard(frozenset((path[-1], step)))
            path.append(step)
        if not drawn or _distances(points[path], points[list(drawn)]).max() > COVERED:
            strokes.append(points[path])
        drawn.update(path)
    return strokes or [points[:1]]  # a digit thinned to a single point: a dot


def _distances(these: np.ndarray, those: np.ndarray) -> np.ndarray:
    """How far each of `these` points is from the nearest of `those`."""
    return np.sqrt(((these[:, None] - those[None]) ** 2).sum(-1)).min(1)
