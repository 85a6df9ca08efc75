"""An ink map -> what the networks read: the 28x28 field MNIST would have had for a digit
(`to_mnist`), and the 28 px strip the line reader reads a line of digits from (`to_line`); and
`preprocess`, image bytes to the field in one call, as /predict reads a drawing.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from app.core.preprocess.decoding import DEFAULT_MAX_PIXELS, decode
from app.core.preprocess.errors import NoDigitError
from app.core.preprocess.ink_map import INK_THRESHOLD, Stage, Trace, ink_region

BOX = 20          # MNIST's digit box, in pixels
FIELD = 28        # MNIST's image size
LINE_INK = 24     # height of the ink in a line of digits for the line reader, in a FIELD px strip
LINE_SIDE_MARGIN = 4  # blank columns either side of the line
LINE_SOURCE = 40  # a line of ink less high than this is enlarged to it before it is shrunk to the strip:
                  # the line reader learnt from lines at least this high (all but 1%), their strokes
                  # softened by the shrinking; a number written 20-30 px high, hardly shrunk, it misread
LINE_STROKE = 0.12  # and strokes wider than this share of its height are thinned to it: the pen-written
                    # lines the line reader learnt from are thinner but for 5%, and fat-marker digits
                    # that overlap fill the gaps it reads between them (73 -> 80% of such numbers right)
WORK = 4 * BOX    # resolution at which stroke width is adjusted, then averaged down 4x
# Stroke width, as a fraction of the digit box's longer side, that MNIST digits span
# (about 1.5 to 4.5 px in the 20 px box); strokes outside it are thickened or thinned.
STROKE_RANGE = (0.085, 0.2)
STROKE_TARGET = (0.11, 0.17)


def preprocess(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Image bytes -> the 28x28 MNIST-style float image the model sees."""
    region = ink_region(decode(data, max_pixels))
    return to_mnist(region.part, canvas_side=max(region.shape))


def to_mnist(ink_map: np.ndarray, trace: Trace | None = None, canvas_side: int | None = None) -> np.ndarray:
    """The 28x28 float image in [0, 1] that MNIST would have had for this drawing; with a
    `trace`, every step is recorded in it too. `canvas_side`: the longer side of the whole ink map,
    where `ink_map` is the part of it that holds the ink (a stray mark is judged by the canvas)."""
    crop, (y0, x0) = _digit_crop(ink_map, canvas_side)
    height, width = crop.shape
    side = max(height, width)
    if trace is not None:
        trace.crop = (y0, x0, height, width)
        trace.stages.append(Stage("crop", f"Cut out around the ink: {width}×{height} px, specks left out", crop))
    # Work at 4x the final size: enough to reshape strokes, then average down for anti-aliasing.
    w, h = max(1, round(width * WORK / side)), max(1, round(height * WORK / side))
    work = _resize(crop, w, h)
    width_fraction = _stroke_width(crop > 0.5) / side
    lo, hi = STROKE_RANGE
    change = "already in MNIST's range, left as it is"
    if width_fraction < lo or width_fraction > hi:
        target = min(max(width_fraction, STROKE_TARGET[0]), STROKE_TARGET[1])
        radius = round(abs(target - width_fraction) * WORK / 2)
        if radius:
            work = _reshape_strokes(work, radius, thicker=width_fraction < lo)
            rows, cols = np.flatnonzero(work.max(1) > 0.05), np.flatnonzero(work.max(0) > 0.05)
            if rows.size:
                work = work[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            change = f"{'thickened' if width_fraction < lo else 'thinned'} towards {target:.0%}"
        peak = work.max()
        if peak > 0:
            work = np.clip(work / peak, 0, 1)
    if trace is not None:
        trace.stages.append(Stage("stroke", f"Stroke width {width_fraction:.0%} of the digit's size (MNIST's: "
                                            f"{lo:.0%}–{hi:.0%}): {change}", work))
    # Reshaped strokes grew or shrank the digit: its longer side is brought back to the box here.
    h, w = work.shape
    scale = BOX / max(h, w)
    digit = np.clip(_resize(work, max(1, round(w * scale)), max(1, round(h * scale))), 0, 1)
    # Place by centre of mass, as MNIST does, without pushing any ink out of the field.
    total = digit.sum()
    cy = float(np.arange(digit.shape[0]) @ digit.sum(1)) / total
    cx = float(digit.sum(0) @ np.arange(digit.shape[1])) / total
    top = min(max(round(FIELD / 2 - cy - 0.5), 0), FIELD - digit.shape[0])
    left = min(max(round(FIELD / 2 - cx - 0.5), 0), FIELD - digit.shape[1])
    field_ = np.zeros((FIELD, FIELD), np.float32)
    field_[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    if trace is not None:
        trace.placed = (top, left, digit.shape[0], digit.shape[1])
        trace.stages.append(Stage("box", f"Scaled to fit a {BOX} px box, as MNIST's digits are: "
                                         f"{digit.shape[1]}×{digit.shape[0]} px, averaged so edges stay soft", digit))
        dx = left - (FIELD - digit.shape[1]) / 2
        dy = top - (FIELD - digit.shape[0]) / 2
        trace.stages.append(Stage("field", f"Placed in the {FIELD}×{FIELD} field by its centre of mass, as MNIST "
                                           f"does: moved {dx:+.1f} px across and {dy:+.1f} px down from the box's "
                                           "centre. This is what the model sees.", field_))
    return field_


def _digit_crop(ink_map: np.ndarray, canvas_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The ink's bounding box, with isolated specks removed, and where its top left corner is in
    the ink map; NoDigitError if there is no digit, or only ink too small for one on a canvas
    `canvas_side` px a side (by default the map's own longer side)."""
    mask = (ink_map > INK_THRESHOLD).view(np.uint8)
    x0, y0, width, height = cv2.boundingRect(mask)
    if width == 0:
        raise NoDigitError()
    # Everything below looks only at the box around all the ink, specks included: cheaper.
    full_side = canvas_side or max(ink_map.shape)
    ink_map = ink_map[y0:y0 + height, x0:x0 + width]
    mask = mask[y0:y0 + height, x0:x0 + width]
    # Labels, then their sizes by counting: half the time of OpenCV's own statistics of each piece.
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    sizes = np.bincount(labels.ravel(), minlength=count)
    sizes[0] = 0
    # Pieces of a digit are strokes; specks are small next to the largest stroke.
    keep = sizes >= max(0.05 * sizes.max(), 2)
    keep[0] = False
    if sizes[keep].sum() < 4:
        raise NoDigitError()
    if keep[1:].all():  # no specks to drop: the box around all the ink is the digit's
        if max(height, width) < 0.02 * full_side:
            raise NoDigitError()
        return ink_map, (y0, x0)
    kept = keep[labels].view(np.uint8)
    left, top, width, height = cv2.boundingRect(kept)
    if max(height, width) < 0.02 * full_side:
        raise NoDigitError()
    # Keep the anti-aliased fringe of kept strokes (2 px around them), drop the specks.
    near = cv2.dilate(kept[top:top + height, left:left + width], np.ones((5, 5), np.uint8))
    return (np.where(near.view(bool), ink_map[top:top + height, left:left + width], 0),
            (y0 + top, x0 + left))


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: twice the area over the perimeter."""
    inner = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    edges = (np.count_nonzero(mask[0]) + np.count_nonzero(mask[-1])
             + np.count_nonzero(mask[:, 0]) + np.count_nonzero(mask[:, -1]))
    return 2.0 * np.count_nonzero(mask) / max(inner + edges, 1)


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average when shrinking (every stroke keeps its ink), bilinear when enlarging."""
    a = np.ascontiguousarray(a, np.float32)
    if width >= a.shape[1] and height >= a.shape[0]:
        # Enlarging, OpenCV's bilinear samples at Pillow's pixel centres (the same values to float
        # rounding) in a seventh of its time: a piece cut from a number is enlarged on every call.
        return cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
    # Shrinking, Pillow: OpenCV's INTER_AREA is not an exact area average at fractional scales.
    method = Image.Resampling.BOX if width <= a.shape[1] and height <= a.shape[0] else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(a, "F").resize((width, height), method))


# Training's brush (`model.augment.dilate`), one step at a time: a plus-shaped cross, then a 3x3 square.
_BRUSH_STEPS = (cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)), np.ones((3, 3), np.uint8))


def _reshape_strokes(a: np.ndarray, radius: int, thicker: bool) -> np.ndarray:
    """Grow (or shrink) every stroke by `radius` px on each side, with the octagonal brush
    that training's augmentation draws with: alternating cross and square steps, each a
    grey-scale dilation (OpenCV's: the same maxima as training's, in a fifth of NumPy's time)."""
    x = np.zeros((a.shape[0] + 2 * radius, a.shape[1] + 2 * radius), np.float32)
    x[radius:-radius, radius:-radius] = a if thicker else -a
    for i in range(radius):
        x = cv2.dilate(x, _BRUSH_STEPS[i % 2])
    return x if thicker else -x


def to_line(ink_map: np.ndarray) -> np.ndarray:
    """A line of digits as the line reader sees it: float (28, W) in [0, 1], the ink cropped and
    scaled to LINE_INK px high (width in proportion), with a margin all round. NoDigitError if
    there is no ink."""
    (top, left, height, width), line_width = _line_geometry(ink_map)
    crop = ink_map[top:top + height, left:left + width].astype(np.float32, copy=False)
    if height < LINE_SOURCE:
        crop = _resize(crop, max(1, round(width * LINE_SOURCE / height)), LINE_SOURCE)
    fat = _stroke_width(crop > 0.5) / crop.shape[0]
    if fat > LINE_STROKE:
        crop = _thinned(crop, fat)
    line = np.clip(_resize(crop, line_width, LINE_INK), 0, 1)
    margin = (FIELD - LINE_INK) // 2
    return np.pad(line, ((margin, margin), (LINE_SIDE_MARGIN, LINE_SIDE_MARGIN)))


def _thinned(crop: np.ndarray, fat: float) -> np.ndarray:
    """A line's ink with its strokes (`fat` of its height wide) thinned to LINE_STROKE, in the
    same frame; worked on no more than four times the strip's height, where thinning is cheap."""
    if crop.shape[0] > 4 * LINE_INK:
        crop = _resize(crop, max(1, round(crop.shape[1] * 4 * LINE_INK / crop.shape[0])), 4 * LINE_INK)
    radius = round((fat - LINE_STROKE) * crop.shape[0] / 2)
    return _reshape_strokes(crop, radius, thicker=False)[radius:-radius, radius:-radius] if radius else crop


def line_to_ink_columns(ink_map: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Columns of `to_line(ink_map)` -> the columns of `ink_map` they were made from."""
    (_, left, _, width), line_width = _line_geometry(ink_map)
    return left + (np.asarray(xs, np.float64) - LINE_SIDE_MARGIN) * width / line_width


def _line_geometry(ink_map: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """The ink's box (top, left, height, width) and its width once scaled to LINE_INK high."""
    rows = np.flatnonzero(ink_map.max(1) > INK_THRESHOLD)
    cols = np.flatnonzero(ink_map.max(0) > INK_THRESHOLD)
    if rows.size == 0:
        raise NoDigitError()
    height, width = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
    return (int(rows[0]), int(cols[0]), height, width), max(4, round(width * LINE_INK / height))


def quantize(field: np.ndarray) -> np.ndarray:
    """A grey image in [0, 1] as 8-bit pixels: how fields are shown, stored and exported."""
    return np.round(field * 255).astype(np.uint8)


def to_png(field: np.ndarray) -> bytes:
    """A grey image (floats in [0, 1], or 8-bit pixels) as a PNG, for showing people what the model saw."""
    pixels = field if field.dtype == np.uint8 else quantize(field)
    # OpenCV writes it in half Pillow's time: every prediction sends one back.
    return cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
