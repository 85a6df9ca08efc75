"""A number as the line reader expects it: level. It learnt from level lines; a number written
uphill, or one digit well above the others, would reach it as tall as the climb.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from app.core.preprocess import INK_THRESHOLD
from app.core.segment.pieces import FRAGMENT, together

STRAY = 0.15           # a group whose middle is further than this many heights off the number's line is moved back
LEVEL_SPAN = 1.5       # digits' middles this many heights apart or more tell which way the line runs
GROUP_SPAN = 3.0       # and a group of digits run together this many heights wide, by its ink's moments
                       # (fewer digits' moments are as much their shapes' as the line's: "09" read "04")
STEEPEST = 0.3         # a group's ink sloping more steeply than this (17 degrees) is its digits' shapes


def levelled(number: np.ndarray, inks: Sequence[np.ndarray], origins: Sequence[tuple[int, int]],
             boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """The number (`together`'s map of the groups' inks) as the line reader expects it: each
    group that strays more than STRAY heights from the line through the middles of the digits' `boxes` moved back
    to within it, and the whole sheared so that the line runs level. The line reader learnt from
    level lines; a number written uphill, or one digit well above the others, would reach it as
    tall as the climb, each digit shrunk to a fraction of the line. Columns stay where they were."""
    slope, (x_mid, y_mid), typical = _line_through(boxes)
    spans = [(x0, x0 + part.shape[1]) for part, (x0, _) in zip(inks, origins)]
    tops = []
    for (x0, x1), part, (_, y0) in zip(spans, inks, origins):
        off = y0 + part.shape[0] / 2 - (y_mid + slope * ((x0 + x1) / 2 - x_mid))
        # Only a digit-sized group clear of its neighbours' columns moves: a part of a digit drawn in
        # several strokes, or a digit run into another, keeps its place beside them.
        alone = part.shape[0] >= FRAGMENT * typical and sum(a < x1 and x0 < b for a, b in spans) == 1
        tops.append(y0 - round(np.sign(off) * max(abs(off) - STRAY * typical, 0.0)) if alone else y0)
    if tops != [y0 for _, y0 in origins]:
        first = min(tops)
        number = together((max(top + part.shape[0] for top, part in zip(tops, inks)) - first, number.shape[1]),
                           inks, [(x0, top - first) for (x0, _), top in zip(spans, tops)])
    return sheared(number, slope)


def group_slope(ink: np.ndarray) -> float:
    """The slope of a line of digits run together into one group (`ink`), from the moments of its
    ink, as `levelled` finds a whole number's from its digits' boxes: a group has none until it is
    read, and the line reader reads it best level. 0 where the group is too short to tell
    (GROUP_SPAN), the slope too steep for a line (STEEPEST), or the line level within STRAY heights."""
    ys, xs = np.nonzero(ink > INK_THRESHOLD)
    height, width = ink.shape
    if xs.size < 2:
        return 0.0
    slope, _ = _fitted(xs, ys)
    typical = height - abs(slope) * width  # a digit's height: the group's, less the climb
    if abs(slope) > STEEPEST or width < GROUP_SPAN * typical or _level_enough(slope, width, typical):
        return 0.0
    return slope


def _line_through(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[float, tuple[float, float], float]:
    """The line through the middles of digits' boxes: its slope, its middle and the digits' typical
    height. A slope only where the middles lie far enough apart to tell (LEVEL_SPAN) and the line
    climbs or falls by more than STRAY heights from its middle to its ends; 0 otherwise."""
    xs, ys, heights = np.array([(x + w / 2, y + h / 2, h) for x, y, w, h in boxes], float).T
    typical, span = float(np.median(heights)), xs.max() - xs.min()
    slope, middle = _fitted(xs, ys, heights)  # a speck's say is small
    if span < LEVEL_SPAN * typical or _level_enough(slope, span, typical):
        return 0.0, middle, typical
    return float(np.clip(slope, -1, 1)), middle, typical  # steeper is no line


def _fitted(xs: np.ndarray, ys: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, tuple[float, float]]:
    """The least-squares line through points, each weighed by `weights` (all alike by default): its
    slope and its middle."""
    x_mid, y_mid = np.average(xs, weights=weights), np.average(ys, weights=weights)
    across = xs - x_mid if weights is None else weights * (xs - x_mid)
    return float(across @ (ys - y_mid) / max(float(across @ (xs - x_mid)), 1.0)), (float(x_mid), float(y_mid))


def _level_enough(slope: float, span: float, typical: float) -> bool:
    """Whether a line of that slope climbs or falls no more than STRAY digits' heights (`typical`)
    from its middle to its ends, `span` apart: levelling it would change nothing worth it."""
    return abs(slope) * span / 2 <= STRAY * typical


def sheared(ink: np.ndarray, slope: float) -> np.ndarray:
    """`ink` sheared up or down, column by column, so that a line of that slope runs level."""
    if not slope:
        return ink
    height, width = ink.shape
    shear = np.float32([[1, 0, 0], [-slope, 1, max(slope, 0.0) * width]])
    return cv2.warpAffine(ink, shear, (width, height + int(np.ceil(abs(slope) * width))), flags=cv2.INTER_LINEAR)
