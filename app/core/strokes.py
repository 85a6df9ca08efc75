"""The page's own strokes, drawn the way its canvas draws them, one ink map per stroke.

When the page sends what the pen did instead of (or beside) the picture, two digits that touch
are still two sets of strokes: segmentation groups strokes, not pixels, and never has to cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.core.preprocess import INK_THRESHOLD, WORKING_SIDE

SUBPIXEL_BITS = 3  # cv2.line draws at 1/8 pixel precision


@dataclass
class Strokes:
    """A drawing as a canvas of width x height pixels and the pen's paths on it, in its pixels."""

    width: int
    height: int
    brush: float
    paths: list[np.ndarray]  # each (N, 2) float: x, y


def render(strokes: Strokes, size: tuple[int, int] | None = None) -> tuple[np.ndarray, list[np.ndarray], float]:
    """The drawing's ink map, each stroke's mask on it, and the map's pixels per canvas pixel.

    Round caps and joins, anti-aliased, like the page's canvas; drawn at `size` (height, width),
    by default the canvas's own, or preprocessing's working size for a large canvas.
    """
    if size is None:
        scale = min(1.0, WORKING_SIDE / max(strokes.width, strokes.height))
        size = (max(1, round(strokes.height * scale)), max(1, round(strokes.width * scale)))
    else:
        scale = size[1] / strokes.width
    thickness = max(1, round(strokes.brush * scale))
    ink_map = np.zeros(size, np.float32)
    masks = []
    for path in strokes.paths:
        layer = np.zeros(size, np.float32)
        points = np.round(path * scale * (1 << SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2)
        if len(points) == 1:
            cv2.circle(layer, tuple(points[0, 0]), max(1, thickness << SUBPIXEL_BITS >> 1), 1.0, -1, cv2.LINE_AA,
                       SUBPIXEL_BITS)
        else:
            cv2.polylines(layer, [points], False, 1.0, thickness, cv2.LINE_AA, SUBPIXEL_BITS)
        np.minimum(layer, 1.0, out=layer)
        masks.append(layer > INK_THRESHOLD)
        np.maximum(ink_map, layer, out=ink_map)
    return ink_map, masks, scale
