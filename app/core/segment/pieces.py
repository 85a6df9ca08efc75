"""The ink of a drawing as pieces, and the pieces as groups, one for each digit as far as their
columns tell: a 4 or a 5 drawn in two strokes, or a 7 with a bar, is one group; specks are dropped.

A piece is a connected stroke (from pixels) or a pen stroke (when the page sends its strokes).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

from app.core.preprocess import INK_THRESHOLD, components

OVERLAP = 0.5          # pieces sharing this much of the narrower one's columns are one digit
SPECK = 0.04           # pieces smaller than this fraction of the largest one's area are specks...
SPECK_SIDE = 0.25      # ...unless their box reaches this fraction of the tallest piece's height
FRAGMENT = 0.5         # a group less than this share of the typical height belongs to a neighbour


def pieces_from_ink(ink_map: np.ndarray, most: int = 200) -> list[np.ndarray]:
    """Connected strokes of the ink map, each as a boolean mask of the whole map; grains far too
    small to be part of a digit (a photo's noise) are not even looked at, nor are dots: a piece
    less than SPECK_SIDE of the tallest one's height both high and wide (a pen's tap beside a
    digit, which would otherwise join it and turn a 1 into a 9). The page's strokes are not
    pieces of ink: a short one there may be part of a digit."""
    mask = (ink_map > INK_THRESHOLD).view(np.uint8)
    count, labels, stats = components(mask)
    areas, heights = stats[1:, cv2.CC_STAT_AREA], stats[1:, cv2.CC_STAT_HEIGHT]
    if count == 1:
        return []
    worth = (areas >= 0.5 * SPECK * areas.max()) | (heights >= SPECK_SIDE * heights.max())
    worth &= np.maximum(heights, stats[1:, cv2.CC_STAT_WIDTH]) >= SPECK_SIDE * heights.max()
    labels_worth = 1 + np.flatnonzero(worth)[np.argsort(-areas[worth])[:most]]
    return [labels == label for label in sorted(labels_worth)]


def _boxes(masks: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 4) x0, y0, x1, y1 (exclusive) of each mask; zeros for an empty one."""
    out = np.zeros((len(masks), 4), int)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size:
            out[i] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
    return out


def group(masks: Sequence[np.ndarray]) -> list[list[int]]:
    """Indices of the pieces that make each digit, left to right; specks and empty pieces (a
    stroke with no ink of the picture under it) left out."""
    if not masks:
        return []
    areas = np.array([np.count_nonzero(m) for m in masks])
    if areas.max() == 0:
        return []
    boxes = _boxes(masks)
    heights = boxes[:, 3] - boxes[:, 1]
    keep = (areas >= SPECK * areas.max()) | (heights >= SPECK_SIDE * heights.max())
    keep &= areas >= 2
    parent = list(range(len(masks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    merged = True
    while merged:  # merging widens a group's columns, which may reach another piece: repeat
        merged = False
        spans: dict[int, list[int]] = {}
        for i in np.flatnonzero(keep):
            r = root(i)
            x0, x1 = spans.get(r, [boxes[i, 0], boxes[i, 2]])
            spans[r] = [min(x0, boxes[i, 0]), max(x1, boxes[i, 2])]
        roots = sorted(spans, key=lambda r: spans[r][0])
        for a, b in itertools.combinations(roots, 2):
            (a0, a1), (b0, b1) = spans[a], spans[b]
            shared = min(a1, b1) - max(a0, b0)
            if shared > OVERLAP * min(a1 - a0, b1 - b0):
                parent[root(b)] = root(a)
                merged = True
                break
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(keep):
        groups.setdefault(root(i), []).append(int(i))
    ordered = sorted(groups.values(), key=lambda members: boxes[members, 0].min())
    return _attach_fragments(ordered, boxes)


def _attach_fragments(groups: list[list[int]], boxes: np.ndarray) -> list[list[int]]:
    """A group far shorter than the others is part of a neighbour, not a digit: the bar of a 5
    or a 7 drawn apart from the rest. It joins the neighbour it is closest to, across or above."""
    if len(groups) < 2:
        return groups
    spans = [(boxes[g, 0].min(), boxes[g, 1].min(), boxes[g, 2].max(), boxes[g, 3].max()) for g in groups]
    typical = float(np.median([y1 - y0 for _, y0, _, y1 in spans]))
    out = [list(g) for g in groups]
    for n in sorted(range(len(groups)), key=lambda n: spans[n][3] - spans[n][1]):
        x0, y0, x1, y1 = spans[n]
        if y1 - y0 >= FRAGMENT * typical or len([g for g in out if g]) < 2:
            continue
        def gap(m: int) -> float:  # columns between the two, negative when they overlap
            return max(spans[m][0], x0) - min(spans[m][2], x1)
        neighbours = [m for m in range(len(groups)) if m != n and out[m]]
        nearest = min(neighbours, key=gap)
        if gap(nearest) <= FRAGMENT * typical:
            out[nearest] += out[n]
            out[n] = []
            spans[nearest] = (min(spans[nearest][0], x0), min(spans[nearest][1], y0),
                              max(spans[nearest][2], x1), max(spans[nearest][3], y1))
    return [g for g in out if g]


def ink_under(area: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The ink under a mask with its anti-aliased fringe, and nothing of its neighbours'."""
    near = cv2.dilate(area.view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
    return np.where(near, ink, 0).astype(np.float32)


def together(shape: tuple[int, ...], inks: Sequence[np.ndarray], origins: Sequence[tuple[int, int]]) -> np.ndarray:
    """The groups' inks back in one map of `shape`: the number's ink without its specks."""
    number = np.zeros(shape, np.float32)
    for part, (x0, y0) in zip(inks, origins):
        place = number[y0:y0 + part.shape[0], x0:x0 + part.shape[1]]
        np.maximum(place, part, out=place)
    return number


def inked_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """x, y, width, height of what `ink` holds above the ink threshold; None if nothing."""
    rows, cols = np.flatnonzero(ink.max(1) > INK_THRESHOLD), np.flatnonzero(ink.max(0) > INK_THRESHOLD)
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
