"""Numbers: a drawing cut into digits, left to right, each read exactly like a single drawing.

    ink map (or the page's strokes) -> pieces -> digits -> 28x28 fields -> one batched model call

A piece is a connected stroke (from pixels) or a pen stroke (when the page sends its strokes).
Pieces whose columns overlap belong to one digit: a 4 or a 5 drawn in two strokes, a 7 with a
bar. Specks are dropped. A group that may hold touching digits is cut along seams, paths from
top to bottom that cross the least ink; every way of cutting it is scored by the segment reader
(a second small CNN, trained by train_segments.py to tell one whole digit from a fragment or
from two digits stuck together). The best few readings, the uncut group among them, are then
weighed by the line reader (a third, trained by train_lines.py, that reads the whole group at
once with CTC), and the reading both agree on best wins. Last, the line reader reads the whole
number, shown level (a line written uphill sheared flat, a digit far above or below the others
moved back), and its own reading stands where it is far likelier than the groups'.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from app.core import strokes as pen
from app.core.classifier import LineReading
from app.core.classifier import answer as digit_answer
from app.core.preprocess import (DEFAULT_MAX_PIXELS, INK_THRESHOLD, ImageError, NoDigitError, components, decode,
                                 ink, ink_region, line_to_ink_columns, to_line, to_mnist)

OVERLAP = 0.5          # pieces sharing this much of the narrower one's columns are one digit
SPECK = 0.04           # pieces smaller than this fraction of the largest one's area are specks...
SPECK_SIDE = 0.25      # ...unless their box reaches this fraction of the tallest piece's height
FRAGMENT = 0.5         # a group less than this share of the typical height belongs to a neighbour
SPLIT_WIDTH = 1.4      # a group wider than this many times its height may hold several digits
                       # (narrower, the cuts nearly always chose the whole group anyway)
SPLIT_CONFIDENCE = 0.5  # as may one that the classifier or the segment reader takes for one
                        # digit no more likely than not (0.9 cut apart digits more often than
                        # it found ones that touch)
MIN_DIGIT_WIDTH = 0.15  # a digit is at least this many times the group's height wide (a 1)
MAX_DIGIT_WIDTH = 1.3  # and a piece at most this many (the group itself is always a candidate too)
CUTS_PER_HEIGHT = 12   # candidate seams tried per group height of width
CUT_HEIGHT = 48        # a taller group is cut at this height: the segment reader learnt from lines
                       # 40-90 px high, and seams and pieces cost as the square of it
RUN_STROKES = 4        # a digit is drawn in at most this many strokes (a 4 or 5 in two, a crossed 7 in three)
WHOLE_STROKE = 0.85    # a stroke with this share of its ink on one side of a seam goes there whole
SEAM_BAND = 0.15       # a seam strays at most this many times the height from its column
SEAM_SLANT = 0.02      # and pays this for each step sideways
SEAM_SPACING = 0.04    # seams kept are at least this many times the height apart, and each the cheapest
                       # of those within this many heights of it: the bottom of a valley, not its slope
SEAM_SIDE = 0.08       # and leave at least this share of the group's ink on either side
FIRST_VALLEYS = 0.16   # a group the line reader weighs is cut first only at the bottoms of valleys this wide
                       # (a third of the pieces: a touching number in under half the time), and at every
                       # valley only where the reading that wins is not the line reader's own
WHOLE_WIDTH = 2.0      # a group wider than this many heights is never one digit
LAST_RESORT = -50.0    # the score of reading it as one all the same, when nothing else reads
PENALTY = 0.3          # log-probability a reading pays for each digit: cutting a digit in two
                       # must buy more confidence than this to be worth it
READINGS = 8           # readings of a cut group, best by its cuts, that the line reader weighs
LINE_WEIGHT = 1.0      # how much the line reader's log-likelihood counts beside the cuts' score
LINE_WIDTH = 1.2       # groups at least this many heights wide are weighed by the line reader too,
LINE_DOUBT = 0.5       # and narrower ones the segment reader doubts are one digit (a 1 run into its
                       # neighbour); one it takes for a digit is most often one odd digit, best not split
LINE_OVERRIDE = 3.0    # log-likelihood by which the line reader's own reading must beat the cuts'
LINE_MORE = 0.5        # and the whole number's groups' where it finds more digits than they do (one lost
                       # inside its neighbour); LINE_OVERRIDE where it reads them otherwise
LONE_OVERRIDE = 6.0    # and by which its reading of several digits must beat a lone digit's (of 2,994
                       # single digits drawn, none it read as several was more than 4.5 likelier so)
STRAY = 0.15           # a group whose middle is further than this many heights off the number's line is moved back
LEVEL_SPAN = 1.5       # digits' middles this many heights apart or more tell which way the line runs


@dataclass
class Digit:
    """One digit of a number: its 28x28 field, the classifier's probabilities for it, and
    where it is, in the ink map's pixels."""

    field: np.ndarray
    probabilities: np.ndarray
    box: tuple[int, int, int, int]  # x, y, width, height


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


def _seams(ink: np.ndarray, count: int, valley_width: float = SEAM_SPACING) -> list[np.ndarray]:
    """Up to `count` top-to-bottom paths through the group that cross the least ink, as the
    column of each row, left to right; each the cheapest of the seams within `valley_width` heights
    of it.

    Touching digits meet at a few pixels; a path that snakes between them (a seam, as in seam
    carving) separates them where a straight cut would slice through a bar or a tail. For every
    candidate column, the cheapest seam that stays within a band around it is found by dynamic
    programming, row by row, all candidates at once; the cheapest, well apart, are kept.
    """
    height, width = ink.shape
    band = max(1, round(SEAM_BAND * height))
    low, high = max(1, int(MIN_DIGIT_WIDTH * height)), min(width - 1, width - int(MIN_DIGIT_WIDTH * height))
    centres = np.arange(low, high, max(1, round(0.03 * height)))
    if centres.size == 0:
        return []
    columns = centres[:, None] + np.arange(-band, band + 1)[None, :]          # (K, 2B+1)
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
    price = total[np.arange(len(centres)), ends]
    # A seam worth trying leaves a fair share of the ink on both sides, and is cheaper than the
    # seams just beside it: the bottom of a valley, not its slope.
    paths = _trace(steps, columns, ends)
    running = ink.cumsum(axis=1)  # the ink on or left of each pixel of its row
    left_ink = running[np.arange(height), paths].sum(axis=1)
    total_ink = running[:, -1].sum()
    fair = (left_ink >= SEAM_SIDE * total_ink) & (total_ink - left_ink >= SEAM_SIDE * total_ink)
    reach = max(1, round(valley_width * height / max(1, round(0.03 * height))))
    nearby = np.lib.stride_tricks.sliding_window_view(np.pad(price, reach, constant_values=np.inf), 2 * reach + 1)
    valley = price <= nearby.min(axis=1)
    chosen: list[int] = []
    for k in np.argsort(price, kind="stable"):  # cheapest first, not two close together or alike
        if fair[k] and valley[k] and all(abs(centres[k] - centres[other]) > SEAM_SPACING * height
                                         and np.abs(paths[k] - paths[other]).mean() > 1 for other in chosen):
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


def read_number(ink_map: np.ndarray, masks: Sequence[np.ndarray], reader: Reader, max_digits: int,
                canvas_side: int | None = None, drawn_in_order: bool = False) -> list[Digit]:
    """The digits of the number drawn, left to right; NoDigitError if there is none. `canvas_side`:
    the longer side of the whole ink map, where `ink_map` is the part of it that holds the ink.

    A lone digit is read from exactly the field `preprocess` makes of the whole drawing, so it
    gets exactly /predict's answer, unless the line reader is far surer that it is two digits run
    together (`_read_as_a_line`). A number of several is read by its groups, then by the line
    reader as a whole: its own reading stands where it is far likelier than the groups' (a 1 run
    into its neighbour and read as part of it, a digit whose stroke broke in two).

    `drawn_in_order`: the masks are the page's strokes in the order drawn, so a group of several
    is parted between its strokes (`_runs_of_strokes`), not cut through its ink.
    """
    groups = group(masks)
    if not groups:
        raise NoDigitError()
    if len(groups) > max_digits:
        raise TooManyDigitsError(len(groups), max_digits)
    inks, origins = [], []
    for members in groups:
        area = np.zeros(ink_map.shape, bool)
        for i in members:
            area |= masks[i]
        rows, cols = np.flatnonzero(area.any(1)), np.flatnonzero(area.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        inks.append(_ink_under(area[y0:y1, x0:x1], ink_map[y0:y1, x0:x1]))
        origins.append((int(x0), int(y0)))
    wholes = np.stack([to_mnist(ink_map, canvas_side=canvas_side)] if len(groups) == 1
                      else [to_mnist(part) for part in inks])
    # Most groups are plainly one digit: both models say so at once, for all of them in one batch.
    read, whole = reader.digits(wholes), reader.wholeness(wholes)
    digits: list[Digit] = []
    for members, part, field, p, w, (x0, y0) in zip(groups, inks, wholes, read, whole, origins):
        height, width = part.shape
        if width <= SPLIT_WIDTH * height and _taken_for_one_digit(p, w):
            digits.append(Digit(field, p, (x0, y0, width, height)))
        else:
            scale = min(1.0, CUT_HEIGHT / height)
            if scale < 1:
                part = cv2.resize(part, (max(1, round(width * scale)), CUT_HEIGHT), interpolation=cv2.INTER_AREA)
            runs = (_runs_of_strokes(members, masks, ink_map, (x0, y0, x0 + width, y0 + height), part.shape)
                    if drawn_in_order and len(members) > 1 else None)
            digits.extend(_in_pixels_of(_read_group(part, field, p, w, reader, runs), scale, (x0, y0)))
        if len(digits) > max_digits:
            raise TooManyDigitsError(len(digits), max_digits)
    number = _together(ink_map.shape, inks, origins)
    return _read_as_a_line(number, _level(number, inks, origins, digits), digits, reader, max_digits)


def _ink_under(area: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The ink under a mask with its anti-aliased fringe, and nothing of its neighbours'."""
    near = cv2.dilate(area.view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
    return np.where(near, ink, 0).astype(np.float32)


def _together(shape: tuple[int, ...], inks: Sequence[np.ndarray], origins: Sequence[tuple[int, int]]) -> np.ndarray:
    """The groups' inks back in one map of `shape`: the number's ink without its specks."""
    number = np.zeros(shape, np.float32)
    for part, (x0, y0) in zip(inks, origins):
        place = number[y0:y0 + part.shape[0], x0:x0 + part.shape[1]]
        np.maximum(place, part, out=place)
    return number


def _spelling(probabilities: Iterable[np.ndarray]) -> str:
    """The digits that sets of ten probabilities read as, one after another."""
    return "".join(str(int(p.argmax())) for p in probabilities)


def _line_reading(ink: np.ndarray, reader: Reader) -> tuple[LineReading, list[tuple[np.ndarray, float, float]], str]:
    """The line reader's pass over `ink`, what it reads there on its own (`LineReading.best_path`),
    and that reading spelt out."""
    line = reader.read_line(to_line(ink))
    found = line.best_path()
    return line, found, _spelling(p for p, _, _ in found)


def _read_as_a_line(ink: np.ndarray, level: np.ndarray, digits: list[Digit], reader: Reader,
                    max_digits: int) -> list[Digit]:
    """`digits` as the groups read them, or the line reader's own reading of the whole number
    (`level`, the same columns as `ink`) where it is far likelier (`_margin`) and every digit of it
    has ink of its own."""
    line, found, own = _line_reading(level, reader)
    read = _spelling(d.probabilities for d in digits)
    margin = _margin(read, own)
    if not own or own == read or len(own) > max_digits or margin == np.inf:
        return digits
    fit, own_fit = line.likelihoods([read, own])
    if own_fit > fit + margin:
        return _digits_along_line(ink, found) or digits
    return digits


def _margin(read: str, own: str) -> float:
    """How much likelier (log-likelihood) the line reader's own reading must be than the groups'
    to replace it. A lone digit stays /predict's unless the line reader finds several digits there
    (two run together in one stroke, "91", pass at a glance for one) and is surer still."""
    if len(read) == 1:
        return LONE_OVERRIDE if len(own) > 1 else np.inf
    return LINE_MORE if len(own) > len(read) else LINE_OVERRIDE


def _level(number: np.ndarray, inks: Sequence[np.ndarray], origins: Sequence[tuple[int, int]],
           digits: list[Digit]) -> np.ndarray:
    """The number (`_together`'s map of the groups' inks) as the line reader expects it: each
    group that strays more than STRAY heights from the line through the digits' middles moved back
    to within it, and the whole sheared so that the line runs level. The line reader learnt from
    level lines; a number written uphill, or one digit well above the others, would reach it as
    tall as the climb, each digit shrunk to a fraction of the line. Columns stay where they were."""
    slope, (x_mid, y_mid), typical = _line_through([d.box for d in digits])
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
        number = _together((max(top + part.shape[0] for top, part in zip(tops, inks)) - first, number.shape[1]),
                           inks, [(x0, top - first) for (x0, _), top in zip(spans, tops)])
    return _sheared(number, slope)


def _line_through(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[float, tuple[float, float], float]:
    """The line through the middles of digits' boxes: its slope, its middle and the digits' typical
    height. A slope only where the middles lie far enough apart to tell (LEVEL_SPAN) and the line
    climbs or falls by more than STRAY heights from its middle to its ends; 0 otherwise."""
    xs, ys, heights = np.array([(x + w / 2, y + h / 2, h) for x, y, w, h in boxes], float).T
    typical, span = float(np.median(heights)), xs.max() - xs.min()
    x_mid, y_mid = np.average(xs, weights=heights), np.average(ys, weights=heights)  # a speck's say is small
    slope = 0.0
    if span >= LEVEL_SPAN * typical:
        across = heights * (xs - x_mid)
        slope = float(np.clip(across @ (ys - y_mid) / (across @ (xs - x_mid)), -1, 1))  # steeper is no line
        if abs(slope) * span / 2 <= STRAY * typical:
            slope = 0.0  # level enough as it is
    return slope, (float(x_mid), float(y_mid)), typical


def _sheared(ink: np.ndarray, slope: float) -> np.ndarray:
    """`ink` sheared up or down, column by column, so that a line of that slope runs level."""
    if not slope:
        return ink
    height, width = ink.shape
    shear = np.float32([[1, 0, 0], [-slope, 1, max(slope, 0.0) * width]])
    return cv2.warpAffine(ink, shear, (width, height + int(np.ceil(abs(slope) * width))), flags=cv2.INTER_LINEAR)


def _taken_for_one_digit(probabilities: np.ndarray, wholeness: float) -> bool:
    """Whether the classifier and the segment reader both take a field for one digit, more
    likely than not (SPLIT_CONFIDENCE)."""
    return probabilities.max() >= SPLIT_CONFIDENCE and wholeness >= SPLIT_CONFIDENCE


@dataclass
class Cut:
    """A candidate digit cut out of a group: the ink between two seams (or a run of the page's
    strokes, between two pen lifts), and where it is."""

    left: int   # index of the seam on its left (0: the group's left edge), or of its first stroke
    right: int  # index of the seam on its right, or one past its last stroke
    ink: np.ndarray
    box: tuple[int, int, int, int]  # x, y, width, height in the group


def cuts(ink: np.ndarray, valley_width: float = SEAM_SPACING) -> tuple[int, list[Cut]]:
    """Every piece of the group between two of its seams that is as wide as a digit can be, and
    the number of seams (the group's right edge is the last). `valley_width`: as `_seams`'s;
    wider valleys, fewer seams.

    A stroke that lies mostly on one side of a seam goes to that side whole: a 7's bar that
    reaches over the next digit stays with the 7. Only strokes the seam really divides (digits
    that touch) are cut. The segment reader is trained on exactly these pieces (model/lines.py),
    so what it learnt is what it is shown.
    """
    height, width = ink.shape
    columns = np.arange(width)
    count, strokes = cv2.connectedComponents((ink > INK_THRESHOLD).view(np.uint8), connectivity=8)
    strokes = cv2.dilate(strokes.astype(np.uint16), np.ones((3, 3), np.uint8)).astype(np.intp)
    strokes[ink == 0] = 0  # every inked pixel, fringe included, belongs to the stroke it touches
    sizes = np.bincount(strokes.ravel(), minlength=count)
    bounds = [np.full(height, -1), *_seams(ink, max(4, round(CUTS_PER_HEIGHT * width / height)), valley_width),
              np.full(height, width - 1)]
    middle = [float(b.mean()) for b in bounds]
    out = []
    for i, j in itertools.combinations(range(len(bounds)), 2):
        if not MIN_DIGIT_WIDTH * height <= middle[j] - middle[i] <= MAX_DIGIT_WIDTH * height:
            continue
        between = (columns > bounds[i][:, None]) & (columns <= bounds[j][:, None])
        inside_ink = np.bincount(strokes[between], minlength=count)
        share = inside_ink / np.maximum(sizes, 1)
        whole, none = share >= WHOLE_STROKE, share <= 1 - WHOLE_STROKE
        inside_ink[0] = 0
        none[inside_ink.argmax()] = False  # the stroke the piece is mostly made of is cut, never dropped
        whole[0] = none[0] = False
        inside = (between & ~none[strokes]) | whole[strokes]
        part = np.where(inside, ink, 0)
        box = _inked_box(part)
        if box:
            out.append(Cut(i, j, part, box))
    return len(bounds) - 1, out


def _inked_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """x, y, width, height of what `ink` holds above the ink threshold; None if nothing."""
    rows, cols = np.flatnonzero(ink.max(1) > INK_THRESHOLD), np.flatnonzero(ink.max(0) > INK_THRESHOLD)
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _read_group(ink: np.ndarray, whole: np.ndarray, whole_probabilities: np.ndarray, whole_wholeness: float,
                reader: Reader, runs: tuple[int, list[Cut]] | None = None) -> list[Digit]:
    """A group as one digit (its field is `whole`, already read), or as the digits it reads best
    as when cut (along seams, or between the page's strokes where `runs` gives them).

    Every way of cutting the group into pieces is scored by how surely the
    segment reader takes each piece for one whole digit (not a fragment, not two stuck
    together); dynamic programming keeps the best few readings without trying them all. For a
    group wide enough to hold several digits, or one the segment reader doubts is one digit, the
    line reader, which reads the whole group at once, then weighs how well each reading fits the
    ink: the cuts say where digits can part, the line reader what the whole says. Such a group is
    cut first along its deepest seams only (FIRST_VALLEYS): where the reading that wins is the
    line reader's own, the two have found the same digits, and it stands; otherwise the group is
    cut along every seam and weighed again. Boxes are in the pixels of `ink`.
    """
    height, width = ink.shape
    whole_reading = (whole, whole_probabilities, whole_wholeness)
    # A group both models take for one whole digit, only too broad to pass at a glance (a wide 0),
    # is not weighed as a line: the line reader, which has seen digits far apart, would rather
    # find two digits in it.
    if _taken_for_one_digit(whole_probabilities, whole_wholeness) or (
            width < LINE_WIDTH * height and whole_wholeness >= LINE_DOUBT):
        return _weigh(ink, whole_reading, runs if runs is not None else cuts(ink), reader)[0]
    line = _line_reading(ink, reader)
    if runs is not None:
        return _weigh(ink, whole_reading, runs, reader, line)[0]
    digits, agreed = _weigh(ink, whole_reading, cuts(ink, FIRST_VALLEYS), reader, line)
    return digits if agreed else _weigh(ink, whole_reading, cuts(ink), reader, line)[0]


def _weigh(ink: np.ndarray, whole: tuple[np.ndarray, np.ndarray, float], cut: tuple[int, list[Cut]], reader: Reader,
           line: tuple[LineReading, list[tuple[np.ndarray, float, float]], str] | None = None
           ) -> tuple[list[Digit], bool]:
    """`_read_group`'s digits from one way of cutting it (`cut`: the number of bounds and the
    pieces between them), and whether they spell the line reader's own reading. Without `line`
    (`_line_reading` of the group), the cuts alone decide."""
    height, width = ink.shape
    whole_field, whole_probabilities, whole_wholeness = whole
    last, candidates = cut
    # The whole group is a candidate like any other piece when it is as narrow as a digit, and
    # the reading of last resort when it is not.
    fields, kept = [whole_field], [Cut(0, last, ink, (0, 0, width, height))]
    for piece in candidates:
        if (piece.left, piece.right) == (0, last):
            continue
        try:
            fields.append(to_mnist(piece.ink))
            kept.append(piece)
        except NoDigitError:  # only a fringe of the neighbour's ink: not a digit
            pass
    batch = np.stack(fields)
    wholeness = np.log(np.concatenate([[whole_wholeness], reader.wholeness(batch[1:])]) + 1e-6)
    if width > WHOLE_WIDTH * height:
        wholeness[0] = LAST_RESORT
    probabilities = {0: whole_probabilities}  # of the pieces read so far; the whole already was

    def read(pieces: list[int]) -> None:
        if pieces:
            probabilities.update(zip(pieces, reader.digits(batch[pieces])))

    if line is None:
        # The best reading is the same whatever the pieces spell: only the pieces it is made of
        # need reading.
        chosen = _readings(kept, wholeness, [str(n) for n in range(len(kept))], last)[0][1]
        read([n for n in chosen if n])
        return [Digit(batch[n], probabilities[n], kept[n].box) for n in chosen], False
    read(list(range(1, len(kept))))
    spelt = [str(probabilities[n].argmax()) for n in range(len(kept))]
    readings = _readings(kept, wholeness, spelt, last)
    reading, found, own = line
    spellings = ["".join(spelt[n] for n in path) for _, path in readings]
    *fit, own_fit = reading.likelihoods([*spellings, own])
    best_n = int(np.argmax([score + LINE_WEIGHT * f for (score, _), f in zip(readings, fit)]))
    # Where no cut gives the digits (one lying in its neighbour's columns), the line reader's
    # own reading stands if it is far likelier than every reading the cuts offer.
    if own and own not in spellings and own_fit > max(fit) + LINE_OVERRIDE:
        digits = _digits_along_line(ink, found)
        if digits:
            return digits, True
    return [Digit(batch[n], probabilities[n], kept[n].box) for n in readings[best_n][1]], spellings[best_n] == own


def _runs_of_strokes(members: list[int], masks: Sequence[np.ndarray], ink_map: np.ndarray,
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
            run = _ink_under(drawn, ink_map[y0:y1, x0:x1])
            if run.shape != size:
                run = cv2.resize(run, size[::-1], interpolation=cv2.INTER_AREA)
            inked = _inked_box(run)
            if inked:
                runs.append(Cut(first, last, run, inked))
    return len(order), runs


def _readings(kept: list[Cut], wholeness: np.ndarray, spelt: list[str], last: int) -> list[Reading]:
    """The best few ways of reading the group left to right as pieces, best first, the uncut
    group always among them; ways whose pieces spell alike (`spelt`: each piece's digit) count
    once."""
    # best[j]: the best few readings of everything left of seam j, as (score, the cuts read).
    best: dict[int, list[Reading]] = {0: [(0.0, ())]}
    ending: dict[int, list[int]] = {}
    for n, cut in enumerate(kept):
        ending.setdefault(cut.right, []).append(n)
    for j in range(1, last + 1):
        options = [(score + wholeness[n] - PENALTY, path + (n,))
                   for n in ending.get(j, []) for score, path in best.get(kept[n].left, [])]
        if options:
            best[j] = _best_readings(options, spelt)
    return best[last]  # never empty: the uncut group reaches it


def _digits_along_line(ink: np.ndarray, found: list[tuple[np.ndarray, float, float]]) -> list[Digit]:
    """The line reader's digits as pieces of the group: each the ink between the midpoints of the
    gaps to its neighbours' stretches of the line, its probabilities the line reader's. Empty if
    a piece holds no digit."""
    ends = [(a, b) for _, a, b in found]
    middles = [(ends[k][1] + ends[k + 1][0]) / 2 for k in range(len(ends) - 1)]
    bounds = [0, *np.round(line_to_ink_columns(ink, middles)).astype(int).tolist(), ink.shape[1]]
    digits = []
    for (p, _, _), left, right in zip(found, bounds, bounds[1:]):
        piece = np.zeros_like(ink)
        piece[:, left:right] = ink[:, left:right]
        try:
            field = to_mnist(piece)
        except NoDigitError:
            return []
        digits.append(Digit(field, p, _inked_box(piece)))
    return digits


Reading = tuple[float, tuple[int, ...]]  # a score, and the candidate pieces read, left to right


def _best_readings(options: list[Reading], spelt: list[str]) -> list[Reading]:
    """The READINGS best-scoring options, one per way of spelling them: cuts that read alike are
    one reading to the line reader."""
    out, seen = [], set()
    for score, path in sorted(options, key=lambda option: -option[0]):
        reading = "".join(spelt[n] for n in path)
        if reading not in seen:
            seen.add(reading)
            out.append((score, path))
            if len(out) == READINGS:
                break
    return out


def _in_pixels_of(digits: list[Digit], scale: float, origin: tuple[int, int] = (0, 0)) -> list[Digit]:
    """The digits with their boxes in the pixels of the picture they were read from, scaled by
    `scale` from it, at `origin` in it: the image (or canvas) an ink map came from, or the ink map
    a group was cut out of."""
    x0, y0 = origin
    for d in digits:
        x, y, w, h = d.box
        d.box = (x0 + round(x / scale), y0 + round(y / scale), max(1, round(w / scale)), max(1, round(h / scale)))
    return digits


def read_image(data: bytes, reader: Reader, max_digits: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Digit]:
    """The digits of a number in an image, boxes in the image's pixels."""
    image = decode(data, max_pixels)
    region = ink_region(image)  # only the part that holds ink is looked at: numbers rarely fill their canvas
    if region.part.size == 0:
        raise NoDigitError()
    digits = read_number(region.part, pieces_from_ink(region.part), reader, max_digits, canvas_side=max(region.shape))
    return _in_pixels_of(_in_pixels_of(digits, 1.0, region.box[:2]), region.shape[1] / image.width)


def read_strokes(strokes: pen.Strokes, reader: Reader, max_digits: int, image: bytes | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Digit]:
    """The digits of a number drawn on the page, grouped by its strokes; boxes in the canvas's pixels.

    With the picture of the drawing too, the ink is the picture's, exactly as /predict sees it,
    and the strokes only say which ink belongs together.
    """
    if image is None:
        ink_map, masks, scale = pen.render(strokes)
    else:
        ink_map = ink(decode(image, max_pixels))
        _, masks, scale = pen.render(strokes, ink_map.shape)
        inked = ink_map > INK_THRESHOLD
        masks = [mask & inked for mask in masks]
    return _in_pixels_of(read_number(ink_map, masks, reader, max_digits, drawn_in_order=True), scale)


def answer(digits: list[Digit]) -> dict:
    """A number as the API and the command line report it: the digits left to right, how sure
    (the product of the digits' confidences), and each digit with its probabilities and box."""
    read = [{**digit_answer(d.probabilities), "box": list(d.box)} for d in digits]
    return {"number": "".join(str(r["digit"]) for r in read),
            "confidence": round(float(np.prod([r["confidence"] for r in read])), 6),
            "digits": read}


class Reader(Protocol):
    """What segmentation needs of the models: digit probabilities for 28x28 fields, and how
    surely each field is one whole digit."""

    def digits(self, fields: np.ndarray) -> np.ndarray: ...      # (N, 28, 28) -> (N, 10)

    def wholeness(self, fields: np.ndarray) -> np.ndarray: ...   # (N, 28, 28) -> (N,)

    def read_line(self, line: np.ndarray) -> LineReading: ...  # (28, W) -> the line reader's view of it


class TooManyDigitsError(ImageError):
    """More digits than one image may hold."""

    status = 422

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"too many digits in one image: at least {count} (the limit is {limit})")
