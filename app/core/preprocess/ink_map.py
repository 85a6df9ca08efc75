"""A Picture -> where its ink is: a float map, 0 for the paper and 1 for full ink, whatever the
ink's colour and the paper's, on a transparent canvas, a scan or a photo lit unevenly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from app.core.preprocess.decoding import Picture

# A border whose colours stray less than FLAT_BORDER grey levels from their median (nine tenths of
# it), or EXACT_PAPER of which is that very colour, is evenly lit paper; otherwise the paper is
# estimated at every pixel from a PAPER_SIDE px copy, with a window PAPER_WINDOW of its shorter side:
# wider than the strokes of a digit written small on a sheet.
INK_THRESHOLD = 0.25  # ink map values above this are strokes; below, their anti-aliased fringe
FLAT_BORDER = 12
EXACT_PAPER = 0.5  # a canvas (or a scan cut out around the digit) whose ink runs into its border;
                   # a photo's grain and noise leave at most a quarter of its border one colour
PAPER_SIDE = 96
PAPER_WINDOW = 0.15
MIN_CONTRAST = 0.08  # ink differs from evenly lit paper by at least this much (of full scale),
MIN_CONTRAST_TO_PAPER = 0.25  # from a photographed sheet by this much of the paper's brightness
FAINT = 0.3  # on paper, by at least this fraction of the strong strokes' contrast
# A photo's frame, not ink: what stands out from the paper by FRAME_CONTRAST and covers FRAME_EDGE of
# the photo's edge (a desk, a shadow), crosses the photo as a line no wider than FRAME_THIN of it (a
# margin line; a digit cut out of a scan crosses it too, but broadly), or spans FRAME_SPAN of its
# width or height without touching its edge (the sheet's own edges).
FRAME_CONTRAST = 0.125
FRAME_EDGE = 0.25
FRAME_THIN = 0.1
FRAME_SPAN = 0.8
# In a photo at least SHEET_FROM px on its shorter side (smaller ones are cut-outs more often than
# sheets), the desk is also what lies along one side, meeting FRAME_ALONG of it, on average no deeper
# than FRAME_THIN of the photo (the desk beside a sheet that fills the rest); and what reaches a corner,
# the desk past a turned sheet, where ink of at least INSIDE of its area lies away from every edge
# (what was written on it), with what lies along a side there however short.
SHEET_FROM = 48
FRAME_ALONG = 0.5
INSIDE = 0.001
CUT_REACH = 2  # px: a cut-out's edges hold its ink's faint anti-aliased fringe, or JPEG's blur of it
CUT_OUT_UNDER = 32  # px on its longer side: a picture this small is a cut-out, never a photo of a sheet
# A border that is paper crossed by ink: PAPER_SHARE of it within FLAT_BORDER of its median, at most
# BETWEEN of it neither that nor as far from it as INK_SHARE of its farthest pixels' distance, nor
# within FRINGE samples of such a pixel along the edge (the ink's fringe: its anti-aliasing, and JPEG's
# smear of its colour into the paper beside it).
PAPER_SHARE = 0.6
BETWEEN = 0.12
INK_SHARE = 0.4
FRINGE = 6
CROSSING_INK = 0.25  # and its farthest pixels a quarter of full scale from it: ink, not light falling off
PAPER_SHOWN = 0.2  # of a cut-out, the border's colour is at least this much: paper, around the strokes
BORDER_SAMPLES = 4096  # pixels of the border that its colour and noise are measured on

Box = tuple[int, int, int, int]  # x, y, width, height: a part of an image


@dataclass
class Stage:
    """One step of preprocessing as a picture: grey, ink white, in [0, 1]; and what it did."""

    name: str
    caption: str
    image: np.ndarray


@dataclass
class Trace:
    """What preprocessing did to one drawing, step by step, for showing a learner; and where the
    digit came from, so that the field's pixels can be mapped back onto the drawing."""

    stages: list[Stage] = field(default_factory=list)
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)    # top, left, height, width in the ink map
    placed: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, height, width in the field


def ink(image: Picture | Image.Image, trace: Trace | None = None) -> np.ndarray:
    """Where the ink is: float (H, W), 0 for background and 1 for full ink, any polarity or colour.

    A mostly transparent image (a canvas exported as is) has its ink in the alpha channel.
    Otherwise ink is the distance from the paper's colour: the border's median colour when the
    border is evenly lit (a canvas, a scan), else the paper estimated at every pixel (a photo,
    with light falling off across it), so black on white, chalk on a board and blue on yellow
    all work the same. Faint ruled lines and paper grain are far weaker than the strokes and
    fall under the threshold, which follows both the noise and the ink's own strength.
    """
    region = ink_region(image)
    ink_map = region.whole()
    if trace is not None:
        trace.stages.append(Stage("ink", region.caption, ink_map))
    return ink_map


@dataclass(frozen=True)
class InkRegion:
    """The part of an ink map that holds ink: all the work after the ink map needs, without the
    rest of the picture's pixels, which are all zero."""

    part: np.ndarray         # the ink map within `box`
    box: Box                 # where `part` lies in the whole map; (0, 0, 0, 0) where there is no ink
    shape: tuple[int, int]   # the whole map's (height, width)
    caption: str             # how the ink was found, for showing a learner

    def whole(self) -> np.ndarray:
        """The whole ink map: float (H, W), zero outside `box`."""
        ink_map = np.zeros(self.shape, np.float32)
        x, y, width, height = self.box
        ink_map[y:y + height, x:x + width] = self.part
        return ink_map


@dataclass(frozen=True)
class _Background:
    """What lies behind the ink, as far as finding the ink goes: how far ink must stand out from it
    at least (of full scale), whether faint marks on it (ruled lines) are left out, and whether it
    is a photo, whose edges may be the desk's rather than the paper's."""

    how: str
    least: float
    faint: float
    photo: bool


_TRANSPARENT = _Background("The background is transparent: the alpha channel is the ink", MIN_CONTRAST, 0.0, False)
_PAPER = _Background("Ink is how far each pixel's colour is from the paper's, the colour of the border",
                    MIN_CONTRAST, FAINT, False)
_PHOTO = _Background("The light is uneven (or the border is not the paper), so the paper was estimated everywhere: "
                    "ink is the contrast to it, leaving out the sheet's edges and what lies around it",
                    MIN_CONTRAST_TO_PAPER, FAINT, True)


def ink_region(image: Picture | Image.Image) -> InkRegion:
    """`ink`'s map, as the part of it that holds ink and where that lies."""
    picture = image if isinstance(image, Picture) else Picture.of(image)
    alpha = picture.alpha
    if alpha is not None and np.count_nonzero(alpha < 128) * 2 >= alpha.size:
        return _strokes(alpha, _TRANSPARENT)
    return _strokes(*_distance_from_paper(_flattened(picture)))


def _flattened(picture: Picture) -> np.ndarray:
    """The picture's colours, uint8 (H, W, C); a mostly opaque one with some transparency laid on its
    paper, the median colour of what is opaque."""
    colour, alpha = picture.colour, picture.alpha
    if alpha is None:
        return colour
    opaque = colour[alpha >= 128]
    paper = np.median(opaque, axis=0) if len(opaque) else np.full(colour.shape[-1], 255.0)
    weight = cv2.merge([alpha] * colour.shape[-1]).reshape(colour.shape).astype(np.float32) * (1 / 255)
    return np.round(colour * weight + paper * (1 - weight)).astype(np.uint8)


def _distance_from_paper(colour: np.ndarray) -> tuple[np.ndarray, _Background]:
    """How far each pixel stands out from the paper, uint8 (H, W), and what the paper is: the
    border's colour where the border is the paper (a canvas, a scan, a digit cut out of one),
    else estimated everywhere (a photo, lit unevenly or showing the desk around the sheet)."""
    flat, deviation = _off_the_border(colour)

    @functools.cache
    def from_border() -> np.ndarray:  # once, however many rules ask for it
        return _channel_max(cv2.absdiff(colour, flat).reshape(colour.shape))

    if _evenly_lit(deviation):
        # Evenly lit paper; unless most of it stands out, when the border is a desk around a sheet; but
        # not where that runs into all four edges: a digit cut out tight around a fat marker's strokes.
        distance = from_border()
        if not _mostly_ink(distance) or _cut_tight(distance):
            return distance, _PAPER
    elif _paper_and_ink(deviation) and _cut_out(distance := from_border()):
        # A border of paper crossed by ink, nothing between, is a digit cut out of a scan whose JPEG
        # left no part of the paper one colour, if its ink runs into every edge and the paper shows
        # between (else it is a desk along the sides of a sheet that fills the picture).
        return distance, _PAPER
    elif (brightness := _crossed_in_brightness(colour)) is not None and _cut_out(brightness):
        # Or so in brightness, the picture judged by that: a coloured cut-out's JPEG, which smears and
        # blurs its colours but keeps its brightness sharp.
        return from_border(), _PAPER
    elif max(colour.shape[:2]) < CUT_OUT_UNDER:
        # Uneven light; but in a picture too small to be a photo of a sheet, whose ink runs into
        # every edge, a cut-out whose border JPEG and anti-aliasing left neither paper nor crossed.
        distance = from_border()
        if _cut_tight(distance):
            return distance, _PAPER
    return _without_frame(_contrast_to_paper(colour)), _PHOTO


def _strokes(distance: np.ndarray, background: _Background) -> InkRegion:
    """The ink of a distance map (how far each pixel stands out from the `background`), 0 to 1: what
    stands out above the noise and the faint marks, scaled by the strokes' own strength."""
    # The paper's typical distance from itself measures texture and compression noise: on the
    # border for a canvas or a scan, whose border is paper; over the whole photo, whose edges may
    # be the desk's; a median, so that strokes do not count as noise.
    noise = float(np.median(distance[::4, ::4] if background.photo else _border(distance)))
    floor = max(background.least * 255, 6 * noise)
    # Only what passes the floor can be ink, so the rest looks at the box around that alone: on
    # most drawings a small part of the picture.
    x, y, width, height = cv2.boundingRect(cv2.threshold(distance, min(int(floor), 255), 255, cv2.THRESH_BINARY)[1])
    if width == 0:
        return InkRegion(np.zeros((0, 0), np.float32), (0, 0, 0, 0), distance.shape,
                         f"{background.how}; nothing stands out from the paper")
    box = distance[y:y + height, x:x + width]
    # Every other row (of the picture) is plenty for the strokes' 90th percentile, in half the
    # time; all of them where the ink is so slight that every other row misses it.
    for rows in (box[y % 2::2] if height > 1 else box, box):
        histogram = cv2.calcHist([rows], [0], None, [256], [0, 256]).ravel()
        histogram[:int(floor) + 1] = 0
        if histogram.sum():  # always, over the whole box: it holds what passes the floor
            break
    full = _histogram_quantile(histogram, 0.9)
    # Lines, shadows' edges and grain that pass the noise floor are still far fainter than ink, whose
    # strength they are judged against is taken with each pixel weighed by its own: a scanned sheet's
    # ruled or squared lines can hold more pixels than a small digit's ink, but not more ink.
    floor = max(floor, background.faint * _histogram_quantile(histogram * np.arange(256), 0.9))
    full = max(full, floor + 0.05 * 255)
    table = np.clip((np.arange(256, dtype=np.float32) - floor) / (full - floor), 0, 1)
    # Nothing outside the box passes the floor: the rest of the map is zero.
    return InkRegion(cv2.LUT(box, table), (x, y, width, height), distance.shape,
                     f"{background.how}; faint marks under {floor / 255:.0%} are not ink")


def _quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile of a 1-D array, by partial sort: several times cheaper than np.percentile."""
    k = round(q * (values.size - 1))
    return float(np.partition(values, k)[k])


def _median(values: np.ndarray) -> np.ndarray:
    """np.median of (N, C) values along the first axis, by partial sort of each channel
    laid out contiguously: the same values, in two thirds of np.median's time on a border."""
    lower, upper = (len(values) - 1) // 2, len(values) // 2
    channels = np.ascontiguousarray(values.reshape(len(values), -1).T)
    return np.partition(channels, (lower, upper), axis=1)[:, [lower, upper]].mean(1)


def _histogram_quantile(histogram: np.ndarray, q: float) -> int:
    """The q-quantile of 8-bit values from their 256-bin histogram."""
    cumulative = np.cumsum(histogram)
    return int(np.searchsorted(cumulative, q * cumulative[-1]))


def _border(a: np.ndarray) -> np.ndarray:
    """The outer ring of pixels, where the background shows on any sensible drawing: evenly
    spaced samples of it, BORDER_SAMPLES to twice as many: plenty for its median and spread."""
    b = max(1, min(a.shape[:2]) // 50)
    strips = [a[:b], a[-b:], a[b:-b, :b], a[b:-b, -b:]]
    step = max(1, sum(strip.shape[0] * strip.shape[1] for strip in strips) // BORDER_SAMPLES)
    return np.concatenate([strip.reshape(-1, *a.shape[2:])[::step] for strip in strips])


def _off_the_border(image: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    """The border's median colour of a uint8 (H, W, C) image, rounded, as an OpenCV scalar; and how far
    each of the border's sampled pixels lies from it (its largest difference over the channels)."""
    border = _border(image)
    flat = (*(float(v) for v in np.round(_median(border))), 0.0)
    deviation = _channel_max(cv2.absdiff(border[:, None, :], flat).reshape(-1, 1, image.shape[-1])).ravel()
    return flat, deviation


def _channel_max(a: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the channels of (H, W, C), channel by channel: NumPy reduces a short
    last axis several times more slowly, and takes twice OpenCV's time over strided channels."""
    channels = cv2.split(a)
    out = channels[0]
    for channel in channels[1:]:
        out = cv2.max(out, channel)
    return out


def _contrast_to_paper(colour: np.ndarray) -> np.ndarray:
    """Ink's contrast to the paper at every pixel, for unevenly lit photos and scans: uint8 (H, W).

    Light falls off across a sheet, towards the corners and into shadows, but it changes slowly,
    while ink is made of narrow strokes. A morphological closing (or opening, for light ink on a
    dark board) of a small copy of the image with a window wider than any pen stroke removes the
    ink and keeps the light, shadows included: scaled back up, it is the paper. The difference
    from it is taken relative to the paper's own brightness for dark ink, so a stroke in a shadow
    is as strong as one in the light.
    """
    height, width = colour.shape[:2]
    scale = min(1.0, PAPER_SIDE / max(height, width))
    small = cv2.resize(colour, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    small = small.reshape(*small.shape[:2], colour.shape[-1])
    side = max(3, round(PAPER_WINDOW * min(small.shape[:2])) | 1)
    window = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    contrast = None
    for c in range(colour.shape[-1]):
        # Ink darker than the paper in this channel is removed by a closing, lighter ink by an
        # opening. Which way the ink goes: the paper is most of the picture, so its median, and the
        # ink strays further from that than the paper's light does (a digit's loop, paper shut in
        # by ink, is no brighter than the rest of the paper).
        channel = small[..., c]
        middle = float(np.median(channel))
        darker_ink = middle - float(channel.min()) >= float(channel.max()) - middle
        paper = cv2.morphologyEx(channel, cv2.MORPH_CLOSE if darker_ink else cv2.MORPH_OPEN, window,
                                 borderType=cv2.BORDER_REPLICATE).astype(np.float32)
        # Dark ink's contrast scales with the light on the paper; light ink (chalk) is taken as is.
        gain = 255 / np.maximum(paper, 64) if darker_ink else np.ones_like(paper)
        paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
        gain = cv2.resize(gain, (width, height), interpolation=cv2.INTER_LINEAR)
        channel = cv2.multiply(cv2.absdiff(colour[..., c].astype(np.float32), paper), gain)
        contrast = channel if contrast is None else cv2.max(contrast, channel)
    return np.clip(contrast, 0, 255).astype(np.uint8)


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The 8-connected pieces of a binary mask, as OpenCV's `connectedComponentsWithStats` gives
    them: their count (the background, label 0, included), the labels, and each piece's left,
    top, width, height and area (a row of zeros for the background). Measured from the pieces'
    own pixels: OpenCV measures the background too, pixel by pixel, in twice the time."""
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    flat = labels.ravel()
    inked = np.flatnonzero(flat)
    label = flat[inked]
    rows, cols = np.divmod(inked, labels.shape[1])
    left, top = np.full(count, labels.shape[1]), np.full(count, labels.shape[0])
    right, bottom = np.full(count, -1), np.full(count, -1)
    np.minimum.at(left, label, cols)
    np.maximum.at(right, label, cols)
    np.minimum.at(top, label, rows)
    np.maximum.at(bottom, label, rows)
    stats = np.stack([left, top, right - left + 1, bottom - top + 1, np.bincount(label, minlength=count)], axis=1)
    stats[0] = 0
    return count, labels, stats


def _evenly_lit(deviation: np.ndarray) -> bool:
    """Whether a border's colours (`deviation`: each one's distance from their median) are evenly lit
    paper: nine tenths of them within FLAT_BORDER, or EXACT_PAPER of them that very colour (a canvas
    or a cut-out whose ink runs into the border)."""
    return _quantile(deviation, 0.9) <= FLAT_BORDER or np.count_nonzero(deviation <= 1) >= EXACT_PAPER * deviation.size


def _paper_and_ink(deviation: np.ndarray) -> bool:
    """Whether a border's colours (`deviation`: each one's distance from their median, in the order
    `_border` samples them along the edge) are paper crossed by ink, hardly anything between:
    PAPER_SHARE of them paper (within FLAT_BORDER), the farthest CROSSING_INK from it, at most BETWEEN
    neither paper nor INK_SHARE as far as those nor the ink's fringe beside them. Light falling off
    across a photo strays less far (13-48 levels, where as much of its border is paper and as little
    between, in 2,530 photos and thumbnails), and along whole stretches of the edge, not beside ink."""
    farthest = _quantile(deviation, 0.99)
    paper = deviation <= FLAT_BORDER
    ink = (deviation >= INK_SHARE * farthest).astype(np.float32)
    fringe = np.convolve(ink, np.ones(2 * FRINGE + 1, np.float32), "same") > 0  # the ink itself, and beside it
    between = np.count_nonzero(~paper & ~fringe)
    return (farthest >= CROSSING_INK * 255 and np.count_nonzero(paper) >= PAPER_SHARE * deviation.size
            and between <= BETWEEN * deviation.size)


def _crossed_in_brightness(colour: np.ndarray) -> np.ndarray | None:
    """Each pixel's brightness's distance from the border's, uint8 (H, W), where the border is paper
    crossed by ink in brightness though not in colour; else None. JPEG keeps colour at half
    resolution and coarsely, and smears a coloured ink's colour into the paper around it: a digit
    cut out of a coloured scan then has a border between paper and ink in colour, as a photo's light
    falling off does, but its brightness is still sharp (58.6 -> 74.3% of such cut-outs read right;
    no photo read differently)."""
    if colour.shape[-1] != 3:
        return None  # grey: no colour to smear
    brightness = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)
    level, deviation = _off_the_border(brightness[..., None])
    return cv2.absdiff(brightness, level) if _paper_and_ink(deviation) else None


def _mostly_ink(distance: np.ndarray) -> bool:
    """Whether most of the picture stands out from its border's colour: then the border is not the
    paper but what lies around it (a sheet photographed on a dark desk), for no drawing is mostly
    ink. Judged on every fourth pixel of every fourth row."""
    sample = distance[::4, ::4]
    return np.count_nonzero(sample > MIN_CONTRAST * 255) * 2 > sample.size


def _hardly_paper(distance: np.ndarray) -> bool:
    """Whether the border's colour (within FLAT_BORDER of it) is under PAPER_SHOWN of the picture: then
    the border is not paper but a desk along the sides of a sheet that fills the rest (6-12% of such
    thumbnails), for a digit cut out of a scan shows its paper around and between even a fat
    marker's strokes (26-47% of JPEG cut-outs whose ink is most of the picture)."""
    return np.count_nonzero(distance <= FLAT_BORDER) < PAPER_SHOWN * distance.size


def _cut_out(distance: np.ndarray) -> bool:
    """Whether a picture whose border is paper crossed by ink is a digit cut out of a scan: its ink
    runs into every edge, and the paper shows between (not a desk along a sheet filling the rest)."""
    return _cut_tight(distance) and not _hardly_paper(distance)


def _cut_tight(distance: np.ndarray) -> bool:
    """Whether what stands out from the border's colour reaches within CUT_REACH px of every edge:
    a picture cut down to the box around its ink. A sheet on a desk does not: the desk shows around it."""
    x, y, width, height = cv2.boundingRect((distance > MIN_CONTRAST * 255).view(np.uint8))
    rows, cols = distance.shape
    return width > 0 and max(x, y, cols - x - width, rows - y - height) <= CUT_REACH


def _without_frame(contrast: np.ndarray) -> np.ndarray:
    """A photo's contrast map without its frame: what stands out along much of the picture's edge
    or a side of it (the desk around the sheet or beside it, a shadow) or in its very corners (the
    desk past a sheet turned a little), crosses it as a line (a margin line) or spans most of its
    width or height (the sheet's own edges). A digit written on the sheet does none of these, even
    one that runs into the picture's edge, or one cut out so that it spans the picture."""
    mask = (contrast > FRAME_CONTRAST * 255).view(np.uint8)
    count, labels, stats = components(mask)
    height, width = contrast.shape
    left, top, wide, high, area = stats.T
    edge = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    on_edge = np.bincount(edge, minlength=count)  # each component's pixels on the picture's edge
    across = (((left == 0) & (left + wide == width) & (high <= FRAME_THIN * height))
              | ((top == 0) & (top + high == height) & (wide <= FRAME_THIN * width)))
    spans = (wide >= FRAME_SPAN * width) | (high >= FRAME_SPAN * height)
    frame = (on_edge >= FRAME_EDGE * edge.size) | across | (spans & (on_edge == 0))
    # A digit cut out around its ink meets the edges with all its strokes, and such a picture is
    # often small: not looked at.
    if min(height, width) >= SHEET_FROM:
        sides = [np.bincount(side, minlength=count) for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1])]
        # The desk beside a sheet lies along a side, on average no deeper than FRAME_THIN of the picture
        # from it; a digit meets a side, if at all, across its strokes.
        lengths, depths = (width, width, height, height), (height, height, width, width)
        along = [area <= FRAME_THIN * on_side * depth for on_side, depth in zip(sides, depths)]
        frame |= np.logical_or.reduce([lies & (on_side >= FRAME_ALONG * length)
                                       for lies, on_side, length in zip(along, sides, lengths)])
        # The desk in the corners past a sheet turned a little reaches a corner of the picture, meeting
        # two edges there, while the digit lies inside, away from every edge. Where the desk shows so,
        # what lies along a side is desk too, however short: light falling off parts a wedge of it from
        # the corner.
        if ((on_edge == 0) & (area >= INSIDE * height * width)).any():
            at_top, at_bottom, at_left, at_right = (on_side > 0 for on_side in sides)
            corners = (at_top | at_bottom) & (at_left | at_right)
            corners[0] = False
            if corners.any():
                frame |= corners | np.logical_or.reduce(along)
    frame[0] = False
    if not frame.any():
        return contrast
    reach = 2 * (3 * max(height, width) // PAPER_SIDE) + 1  # and its edge, where the paper is a guess
    frame = cv2.dilate(frame[labels].view(np.uint8), np.ones((reach, reach), np.uint8))
    return np.where(frame.view(bool), np.uint8(0), contrast)
