"""A group that may hold several digits, read as the digits it reads best as: every way of
cutting it is scored by the segment reader, and the best few are weighed by the line reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.core.classifier import LineReading
from app.core.preprocess import NoDigitError, line_to_ink_columns, to_line, to_mnist
from app.core.segment.cuts import Cut, Seams, cuts
from app.core.segment.level import group_slope, sheared
from app.core.segment.pieces import inked_box

SPLIT_CONFIDENCE = 0.5  # a group that the classifier or the segment reader takes for one digit
                        # no more likely than not may hold several (0.9 cut apart digits more often than
                        # it found ones that touch)
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


@dataclass
class Digit:
    """One digit of a number: its 28x28 field, the classifier's probabilities for it, and
    where it is, in the ink map's pixels."""

    field: np.ndarray
    probabilities: np.ndarray
    box: tuple[int, int, int, int]  # x, y, width, height


class Reader(Protocol):
    """What segmentation needs of the models: digit probabilities for 28x28 fields, and how
    surely each field is one whole digit."""

    def digits(self, fields: np.ndarray) -> np.ndarray: ...      # (N, 28, 28) -> (N, 10)

    def wholeness(self, fields: np.ndarray) -> np.ndarray: ...   # (N, 28, 28) -> (N,)

    def read_line(self, line: np.ndarray) -> LineReading: ...  # (28, W) -> the line reader's view of it


def taken_for_one_digit(probabilities: np.ndarray, wholeness: float) -> bool:
    """Whether the classifier and the segment reader both take a field for one digit, more
    likely than not (SPLIT_CONFIDENCE)."""
    return probabilities.max() >= SPLIT_CONFIDENCE and wholeness >= SPLIT_CONFIDENCE


def spelling(probabilities: Iterable[np.ndarray]) -> str:
    """The digits that sets of ten probabilities read as, one after another."""
    return "".join(str(int(p.argmax())) for p in probabilities)


def line_reading(ink: np.ndarray, reader: Reader) -> tuple[LineReading, list[tuple[np.ndarray, float, float]], str]:
    """The line reader's pass over `ink`, what it reads there on its own (`LineReading.best_path`,
    each digit's stretch of the line given in the columns of `ink`), and that reading spelt out.
    `ink` may be a group or a number sheared level: shearing keeps every column where it was."""
    line = reader.read_line(to_line(ink))
    path = line.best_path()
    ends = line_to_ink_columns(ink, [(start, stop) for _, start, stop in path]).reshape(-1, 2).tolist()
    found = [(p, start, stop) for (p, _, _), (start, stop) in zip(path, ends)]
    return line, found, spelling(p for p, _, _ in found)


def read_group(ink: np.ndarray, whole: np.ndarray, whole_probabilities: np.ndarray, whole_wholeness: float,
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
    if taken_for_one_digit(whole_probabilities, whole_wholeness) or (
            width < LINE_WIDTH * height and whole_wholeness >= LINE_DOUBT):
        return _weigh(ink, whole_reading, runs if runs is not None else cuts(ink), reader)[0]
    line = line_reading(sheared(ink, group_slope(ink)), reader)  # level, as it learnt to read lines
    if runs is not None:
        return _weigh(ink, whole_reading, runs, reader, line)[0]
    seams = Seams(ink)
    digits, agreed = _weigh(ink, whole_reading, seams.cuts(FIRST_VALLEYS), reader, line)
    return digits if agreed else _weigh(ink, whole_reading, seams.cuts(), reader, line)[0]


def _weigh(ink: np.ndarray, whole: tuple[np.ndarray, np.ndarray, float], cut: tuple[int, list[Cut]], reader: Reader,
           line: tuple[LineReading, list[tuple[np.ndarray, float, float]], str] | None = None
           ) -> tuple[list[Digit], bool]:
    """`read_group`'s digits from one way of cutting it (`cut`: the number of bounds and the
    pieces between them), and whether they spell the line reader's own reading. Without `line`
    (`line_reading` of the group), the cuts alone decide."""
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
        digits = digits_along_line(ink, found)
        if digits:
            return digits, True
    return [Digit(batch[n], probabilities[n], kept[n].box) for n in readings[best_n][1]], spellings[best_n] == own


Reading = tuple[float, tuple[int, ...]]  # a score, and the candidate pieces read, left to right


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


def digits_along_line(ink: np.ndarray, found: list[tuple[np.ndarray, float, float]]) -> list[Digit]:
    """The line reader's digits (`line_reading`'s) as pieces of the group: each the ink between the
    midpoints of the gaps to its neighbours' stretches of the line, its probabilities the line
    reader's. Empty if a piece holds no digit."""
    ends = [(a, b) for _, a, b in found]
    middles = [(ends[k][1] + ends[k + 1][0]) / 2 for k in range(len(ends) - 1)]
    bounds = [0, *np.round(middles).astype(int).tolist(), ink.shape[1]]
    digits = []
    for (p, _, _), left, right in zip(found, bounds, bounds[1:]):
        piece = np.zeros_like(ink)
        piece[:, left:right] = ink[:, left:right]
        try:
            field = to_mnist(piece)
        except NoDigitError:
            return []
        digits.append(Digit(field, p, inked_box(piece)))
    return digits
