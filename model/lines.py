"""Lines of handwritten digits side by side, and the pieces segmentation cuts out of them: the
training data of the segment reader (train_segments.py) and of the line reader (train_lines.py).

MNIST digits are set on one line at the size digits have in a drawing, at slightly different
sizes and heights. For the segment reader, lines of two or three, mostly touching or
overlapping, some close: the line is cut exactly as the service cuts a group
(`app.core.segment.cuts`), and every piece goes through the one preprocessing path
(`to_mnist`). A piece that holds one digit's ink and next to nothing of its neighbours' is
labelled with that digit; a fragment, or ink of two digits, is JUNK. For the line reader, whole
lines spaced every way, far apart too, and a little tilted, through `to_line`.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.core.preprocess import INK_THRESHOLD, NoDigitError, to_line, to_mnist
from app.core.segment.cuts import cuts

JUNK = 10
WHOLE = 0.9     # a piece with this share of one digit's ink...
STRAY = 0.1     # ...and at most this share of any other's is that digit
FRAGMENT = 0.7  # a piece with less than this of every digit, or this much of two, is junk


# How a digit meets its left neighbour: slid in until the inks touch, boxes overlapping, a small
# gap, a wide one. The segment reader learns from lines with work to do (no wide gaps); the line
# reader also reads numbers written with space between the digits.
TOUCHING_MOSTLY = (0.5, 0.3, 0.2, 0.0)
ANY_SPACING = (0.4, 0.25, 0.2, 0.15)
OFFSETS = ((-0.3, 0.0), (0.0, 0.15), (0.15, 0.8))  # the last three ways, in heights: box to box


def compose(digits: np.ndarray, rng: np.random.Generator, spacing: tuple[float, ...] = TOUCHING_MOSTLY,
            tilt: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(k, 28, 28) digits in [0, 1] on one line, left to right: the line's ink map (H, W) and,
    for every pixel, which digit's ink it is (-1: none). `spacing`: the odds of each way a digit
    meets its neighbour (see ANY_SPACING); `tilt`: each digit turned by up to this many degrees."""
    height = int(rng.integers(40, 90))
    scaled_digits = []
    for digit in digits:
        if tilt:
            turn = cv2.getRotationMatrix2D((13.5, 13.5), float(rng.uniform(-tilt, tilt)), 1.0)
            digit = cv2.warpAffine(digit, turn, (28, 28), flags=cv2.INTER_LINEAR)
        rows, cols = np.flatnonzero(digit.max(1) > 0.05), np.flatnonzero(digit.max(0) > 0.05)
        crop = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        h = height * rng.uniform(0.85, 1.15)
        w = max(2, round(crop.shape[1] * h / crop.shape[0]))
        scaled_digits.append(np.clip(cv2.resize(crop, (w, max(2, round(h))), interpolation=cv2.INTER_LINEAR), 0, 1))
    line_height = int(height * 1.5) + 8
    coverage = np.zeros((len(digits), line_height, sum(d.shape[1] for d in scaled_digits) + len(digits) * height + 24),
                        np.float32)
    x = right = int(rng.integers(4, 12))
    for n, scaled in enumerate(scaled_digits):
        y = max(0, int(round(height * 0.1 + (height * 1.15 - scaled.shape[0]) + rng.normal(0, 0.04) * height)))
        h, w = min(scaled.shape[0], line_height - y), scaled.shape[1]
        if n:
            how = rng.choice(4, p=spacing)
            if how == 0:  # slid in until the ink meets the line's, as a hand writing close does
                drawn = coverage[:n].max(0) > INK_THRESHOLD
                ink = scaled[:h] > INK_THRESHOLD
                start = x + int(0.3 * height)
                x = max(0, start - int(0.9 * height))
                for left in range(start, x, -1):
                    if (drawn[y:y + h, left:left + w] & ink).any():
                        x = left
                        break
            else:
                x += int(round(rng.uniform(*OFFSETS[how - 1]) * height))
        x = max(0, x)
        coverage[n, y:y + h, x:x + w] = scaled[:h]
        x += w
        right = max(right, x)
    coverage = coverage[:, :, :right + 8]
    line = coverage.max(0)
    owner = np.where(line > INK_THRESHOLD, coverage.argmax(0), -1)
    rows, cols = np.flatnonzero(line.max(1) > INK_THRESHOLD), np.flatnonzero(line.max(0) > INK_THRESHOLD)
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return line[box], owner[box]


def label(piece: np.ndarray, owner: np.ndarray, labels: np.ndarray) -> int | None:
    """The piece's label: a digit, JUNK, or None when it is neither clearly (left out)."""
    inside = piece > INK_THRESHOLD
    totals = np.bincount(owner[owner >= 0], minlength=len(labels))
    shares = np.bincount(owner[inside & (owner >= 0)], minlength=len(labels)) / np.maximum(totals, 1)
    best = int(shares.argmax())
    others = np.delete(shares, best)
    if shares[best] >= WHOLE and (others.size == 0 or others.max() <= STRAY):
        return int(labels[best])
    if shares[best] < FRAGMENT or (others.size and others.max() >= FRAGMENT):
        return JUNK
    return None


def examples(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], list[int]]:
    """The 28x28 fields of every piece segmentation would cut from one line of `digits`, labelled."""
    line, owner = compose(digits, rng)
    fields, targets = [], []
    _, candidates = cuts(line)
    for cut in candidates:
        target = label(cut.ink, owner, labels)
        if target is None:
            continue
        try:
            fields.append(to_mnist(cut.ink))
        except NoDigitError:
            continue
        targets.append(target)
    return fields, targets


def line(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One line of `digits` as the line reader sees it: (28, W) through the one preprocessing path,
    the digits spaced every way and a little tilted, as people write numbers."""
    ink, _ = compose(digits, rng, ANY_SPACING, tilt=8.0)
    return to_line(ink)
