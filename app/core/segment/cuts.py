"""Candidate digits inside a group that may hold several: the ink between two seams (paths
from top to bottom that cross the least ink) or, from the page, runs of the strokes that drew it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from app.core.preprocess import INK_THRESHOLD
from app.core.segment.pieces import ink_under, inked_box

MIN_DIGIT_WIDTH = 0.15  # a digit is at least this many times the group's height wide (a 1)
MAX_DIGIT_WIDTH = 1.3  # and a piece at most this many (the group itself is always a candidate too)
CUTS_PER_HEIGHT = 12   # candidate seams tried per group height of width
RUN_STROKES = 4        # a digit is drawn in at most this many strokes (a 4 or 5 in two, a crossed 7 in three)
WHOLE_STROKE = 0.85    # a stroke with this share of its ink on one side of a seam goes there whole
SEAM_BAND = 0.15       # a seam strays at most this many times the height from its column
SEAM_SLANT = 0.02      # and pays this for each step sideways
SEAM_SPACING = 0.04    # seams kept are at least this many times the height apart, and each the cheapest
                       # of those within this many heights of it: the bottom of a valley, not its slope
SEAM_SIDE = 0.08       # and leave at least this share of the group's ink on either side


@dataclass
class Cut:
    """A candidate digit cut out of a group: the ink between two seams (or a run of the page's
    strokes, between two pen lifts), and where it is."""

    left: int   # index of the seam on its left (0: the group's left edge), or of its first stroke
    right: int  # index of the seam on its right, or one past its last stroke
    ink: np.ndarray
    box: tuple[int, int, int, int]  # x, y, width, height in the group


def cuts(ink: np.ndarray, valley_width: float = SEAM_SPACING) -> tuple[int, list[Cut]]:
    """`Seams(ink).cuts(valley_width)`: a group cut once."""
    return Seams(ink).cuts(valley_width)


class Seams:
    """A group's seams, paths from top to bottom that cross the least ink, and the pieces between
    them. The paths are found once; a group cut along its deepest seams first, then along every
    one, chooses twice from them (`cuts`'s `valley_width`).

    Touching digits meet at a few pixels; a path that snakes between them (a seam, as in seam
    carving) separates them where a straight cut would slice through a bar or a tail. For every
    candidate column, the cheapest seam that stays within a band around it is found by dynamic
    programming, row by row, all candidates at once; `seams` keeps the cheapest, well apart.
    """

    def __init__(self, ink: np.ndarray) -> None:
        self.ink = ink
        height, width = ink.shape
        count, strokes = cv2.connectedComponents((ink > INK_THRESHOLD).view(np.uint8), connectivity=8)
        strokes = cv2.dilate(strokes.astype(np.uint16), np.ones((3, 3), np.uint8)).astype(np.intp)
        strokes[ink == 0] = 0  # every inked pixel, fringe included, belongs to the stroke it touches
        self._strokes, self._sizes = strokes, np.bincount(strokes.ravel(), minlength=count)
        band = max(1, round(SEAM_BAND * height))
        low, high = max(1, int(MIN_DIGIT_WIDTH * height)), min(width - 1, width - int(MIN_DIGIT_WIDTH * height))
        self._step = max(1, round(0.03 * height))  # between candidate columns
        self._centres = np.arange(low, high, self._step)
        if self._centres.size == 0:  # too narrow for any seam
            self._price, self._paths, self._fair = np.empty(0), np.empty((0, height), int), np.empty(0, bool)
            return
        columns = self._centres[:, None] + np.arange(-band, band + 1)[None, :]          # (K, 2B+1)
        inside = (columns >= 0) & (columns < width)
        cost = np.where(inside[None], ink[:, np.clip(columns, 0, width - 1)], np.inf) + 0.01  # (H, K, 2B+1)
        total = cost[0]
        steps = np.zeros(cost.shape, np.int8)
        left, right = np.full(total.shape, np.inf), np.full(total.shape, np.inf)  # stepping in from either side
        for y in range(1, height):
            np.add(total[:, :-1], SEAM_SLANT, out=left[:, 1:])
            np.add(total[:, 1:], SEAM_SLANT, out=right[:, :-1])
            # The cheapest of the three ways down, the leftmost on a tie.
            straight = total <= right
            below = np.where(straight, total, right)
            from_left = left <= below
            steps[y] = np.where(from_left, -1, np.where(straight, 0, 1))
            total = np.where(from_left, left, below) + cost[y]
        ends = total.argmin(1)
        self._price = total[np.arange(len(self._centres)), ends]
        self._paths = _trace(steps, columns, ends)
        # A seam worth trying leaves a fair share of the ink on both sides.
        running = ink.cumsum(axis=1)  # the ink on or left of each pixel of its row
        left_ink = running[np.arange(height), self._paths].sum(axis=1)
        total_ink = running[:, -1].sum()
        self._fair = (left_ink >= SEAM_SIDE * total_ink) & (total_ink - left_ink >= SEAM_SIDE * total_ink)

    def cuts(self, valley_width: float = SEAM_SPACING) -> tuple[int, list[Cut]]:
        """Every piece of the group between two of its seams that is as wide as a digit can be,
        and the number of seams (the group's right edge is the last). `valley_width`: as `seams`'s;
        wider valleys, fewer seams.

        A stroke that lies mostly on one side of a seam goes to that side whole: a 7's bar that
        reaches over the next digit stays with the 7. Only strokes the seam really divides (digits
        that touch) are cut. The segment reader is trained on exactly these pieces (model/lines.py),
        so what it learnt is what it is shown.
        """
        ink, strokes, sizes = self.ink, self._strokes, self._sizes
        height, width = ink.shape
        columns = np.arange(width)
        bounds = [np.full(height, -1), *self.seams(valley_width), np.full(height, width - 1)]
        middle = [float(b.mean()) for b in bounds]
        out = []
        for i, j in itertools.combinations(range(len(bounds)), 2):
            if not MIN_DIGIT_WIDTH * height <= middle[j] - middle[i] <= MAX_DIGIT_WIDTH * height:
                continue
            between = (columns > bounds[i][:, None]) & (columns <= bounds[j][:, None])
            inside_ink = np.bincount(strokes[between], minlength=sizes.size)
            share = inside_ink / np.maximum(sizes, 1)
            whole, none = share >= WHOLE_STROKE, share <= 1 - WHOLE_STROKE
            inside_ink[0] = 0
            none[inside_ink.argmax()] = False  # the stroke the piece is mostly made of is cut, never dropped
            whole[0] = none[0] = False
            inside = (between & ~none[strokes]) | whole[strokes]
            part = np.where(inside, ink, 0)
            box = inked_box(part)
            if box:
                out.append(Cut(i, j, part, box))
        return len(bounds) - 1, out

    def seams(self, valley_width: float = SEAM_SPACING) -> list[np.ndarray]:
        """Up to CUTS_PER_HEIGHT seams a group height of width, as the column of each row, left
        to right: those that leave a fair share of the ink on both sides, each the cheapest of the
        seams within `valley_width` heights of it (the bottom of a valley, not its slope), cheapest
        first, no two close together or alike."""
        height, width = self.ink.shape
        if self._centres.size == 0:
            return []
        centres, price, paths = self._centres, self._price, self._paths
        count = max(4, round(CUTS_PER_HEIGHT * width / height))
        reach = max(1, round(valley_width * height / self._step))
        nearby = np.lib.stride_tricks.sliding_window_view(np.pad(price, reach, constant_values=np.inf), 2 * reach + 1)
        valley = price <= nearby.min(axis=1)
        chosen: list[int] = []
        for k in np.argsort(price, kind="stable"):
            if self._fair[k] and valley[k] and all(abs(centres[k] - centres[other]) > SEAM_SPACING * height
                                                   and np.abs(paths[k] - paths[other]).mean() > 1
                                                   for other in chosen):
                chosen.append(int(k))
            if len(chosen) == count:
                break
        return [paths[k] for k in sorted(chosen, key=lambda k: centres[k])]


def _trace(steps: np.ndarray, columns: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Follow every candidate's seam back up from where it ends at the bottom, all at once:
    (K, height), each row a seam's column in every row."""
    height, count = steps.shape[:2]
    candidates = np.arange(count)
    paths = np.empty((count, height), int)
    d = ends.astype(int)
    for y in range(height - 1, -1, -1):
        paths[:, y] = columns[candidates, d]
        d = d + steps[y, candidates, d]
    return paths


def runs_of_strokes(members: list[int], masks: Sequence[np.ndarray], ink_map: np.ndarray,
                     box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, list[Cut]]:
    """A group of the page's strokes as candidate digits, the way `cuts` offers pieces of ink:
    every run of up to RUN_STROKES strokes drawn one after another, since a hand finishes one
    digit before it begins the next. Each run's ink is cut from the group's `box` of the ink map
    and scaled to `size`, as the group's own ink was.
    """
    x0, y0, x1, y1 = box
    order = sorted(members)  # the page sends its strokes in the order they were drawn
    runs = []
    for first in range(len(order)):
        drawn = np.zeros((y1 - y0, x1 - x0), bool)  # the run's strokes, one more each step
        for last in range(first + 1, min(first + RUN_STROKES, len(order)) + 1):
            drawn |= masks[order[last - 1]][y0:y1, x0:x1]
            if (first, last) == (0, len(order)):  # the whole group, read already
                continue
            run = ink_under(drawn, ink_map[y0:y1, x0:x1])
            if run.shape != size:
                run = cv2.resize(run, size[::-1], interpolation=cv2.INTER_AREA)
            inked = inked_box(run)
            if inked:
                runs.append(Cut(first, last, run, inked))
    return len(order), runs
