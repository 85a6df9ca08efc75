"""A whole number: its groups read one by one, then the line reader's say over the whole."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from app.core import strokes as pen
from app.core.classifier import answer as digit_answer
from app.core.preprocess import (DEFAULT_MAX_PIXELS, INK_THRESHOLD, ImageError, NoDigitError, decode, ink,
                                 ink_region, to_mnist)
from app.core.segment.cuts import runs_of_strokes
from app.core.segment.level import levelled
from app.core.segment.pieces import group, ink_under, pieces_from_ink, together
from app.core.segment.weigh import (LINE_OVERRIDE, Digit, Reader, digits_along_line, line_reading, read_group,
                                    spelling, taken_for_one_digit)

SPLIT_WIDTH = 1.4      # a group wider than this many times its height may hold several digits
                       # (narrower, the cuts nearly always chose the whole group anyway)
CUT_HEIGHT = 48        # a taller group is cut at this height: the segment reader learnt from lines
                       # 40-90 px high, and seams and pieces cost as the square of it
LINE_MORE = 0.5        # log-likelihood by which the line reader's own reading must beat the whole number's
                       # groups' where it finds more digits than they do (one lost inside its neighbour);
                       # LINE_OVERRIDE, as within a group, where it reads them otherwise
LONE_OVERRIDE = 6.0    # and by which its reading of several digits must beat a lone digit's (of 2,994
                       # single digits drawn, none it read as several was more than 4.5 likelier so)


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
    is parted between its strokes (`runs_of_strokes`), not cut through its ink.
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
        inks.append(ink_under(area[y0:y1, x0:x1], ink_map[y0:y1, x0:x1]))
        origins.append((int(x0), int(y0)))
    wholes = np.stack([to_mnist(ink_map, canvas_side=canvas_side)] if len(groups) == 1
                      else [to_mnist(part) for part in inks])
    # Most groups are plainly one digit: both models say so at once, for all of them in one batch.
    read, whole = reader.digits(wholes), reader.wholeness(wholes)
    digits: list[Digit] = []
    for members, part, field, p, w, (x0, y0) in zip(groups, inks, wholes, read, whole, origins):
        height, width = part.shape
        if width <= SPLIT_WIDTH * height and taken_for_one_digit(p, w):
            digits.append(Digit(field, p, (x0, y0, width, height)))
        else:
            scale = min(1.0, CUT_HEIGHT / height)
            if scale < 1:
                part = cv2.resize(part, (max(1, round(width * scale)), CUT_HEIGHT), interpolation=cv2.INTER_AREA)
            runs = (runs_of_strokes(members, masks, ink_map, (x0, y0, x0 + width, y0 + height), part.shape)
                    if drawn_in_order and len(members) > 1 else None)
            digits.extend(_in_pixels_of(read_group(part, field, p, w, reader, runs), scale, (x0, y0)))
        if len(digits) > max_digits:
            raise TooManyDigitsError(len(digits), max_digits)
    number = together(ink_map.shape, inks, origins)
    return _read_as_a_line(number, levelled(number, inks, origins, [d.box for d in digits]), digits, reader, max_digits)


def _read_as_a_line(ink: np.ndarray, level: np.ndarray, digits: list[Digit], reader: Reader,
                    max_digits: int) -> list[Digit]:
    """`digits` as the groups read them, or the line reader's own reading of the whole number
    (`level`, the same columns as `ink`) where it is far likelier (`_margin`) and every digit of it
    has ink of its own.

    A digit the groups missed lies in ink they read as one (two run together), never on the
    paper between two of them: a reading with more digits than the groups', one of them centred
    on a column without ink, is the line reader's invention from its neighbours' edges."""
    line, found, own = line_reading(level, reader)
    read = spelling(d.probabilities for d in digits)
    margin = _margin(read, own)
    if not own or own == read or len(own) > max_digits or margin == np.inf:
        return digits
    fit, own_fit = line.likelihoods([read, own])
    if own_fit <= fit + margin:
        return digits
    along = digits_along_line(ink, found)
    if len(own) > len(read) and not all(_centred_on_ink(ink, d.box) for d in along):
        return digits
    return along or digits


def _centred_on_ink(ink: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the column through the middle of `box` crosses ink of `ink`."""
    x, _, width, _ = box
    return bool((ink[:, int(x + width / 2)] > INK_THRESHOLD).any())


def _margin(read: str, own: str) -> float:
    """How much likelier (log-likelihood) the line reader's own reading must be than the groups'
    to replace it. A lone digit stays /predict's unless the line reader finds several digits there
    (two run together in one stroke, "91", pass at a glance for one) and is surer still."""
    if len(read) == 1:
        return LONE_OVERRIDE if len(own) > 1 else np.inf
    return LINE_MORE if len(own) > len(read) else LINE_OVERRIDE


def _in_pixels_of(digits: list[Digit], scale: float, origin: tuple[int, int] = (0, 0)) -> list[Digit]:
    """The digits with their boxes in the pixels of the picture they were read from, scaled by
    `scale` from it, at `origin` in it: the image (or canvas) an ink map came from, or the ink map
    a group was cut out of."""
    x0, y0 = origin
    for d in digits:
        x, y, w, h = d.box
        d.box = (x0 + round(x / scale), y0 + round(y / scale), max(1, round(w / scale)), max(1, round(h / scale)))
    return digits


class TooManyDigitsError(ImageError):
    """More digits than one image may hold."""

    status = 422

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"too many digits in one image: at least {count} (the limit is {limit})")
