"""Turn whatever image people send into what MNIST looks like.

MNIST digits are white on black, fitted into a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in a 28x28 field by their centre of mass. Canvases, photos and
scans are none of these things; this module is the one place that bridges the gap, for
the API, the page's preview, the command-line predictor and the benchmarks alike.

    decode(bytes) -> Picture  ->  ink(picture) -> float map, 1 = ink  ->  to_mnist(ink) -> 28x28
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

try:  # Wuffs, on Linux (see pyproject.toml); Pillow decodes PNGs elsewhere, to the same pixels
    import pywuffs
    from pywuffs import aux as wuffs
except ImportError:  # pragma: no cover - macOS and Windows
    wuffs = None

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
DEFAULT_MAX_PIXELS = 40_000_000
# How each format's files begin: a file that starts like one of ours but cannot be read is
# broken (400), not of a format we do not read (415).
SIGNATURES = {
    "PNG": lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"),
    "JPEG": lambda d: d.startswith(b"\xff\xd8\xff"),
    "GIF": lambda d: d.startswith((b"GIF87a", b"GIF89a")),
    "WebP": lambda d: d.startswith(b"RIFF") and d[8:12] == b"WEBP",
    "BMP": lambda d: d.startswith(b"BM"),
}

BOX = 20          # MNIST's digit box, in pixels
FIELD = 28        # MNIST's image size
LINE_INK = 24     # height of the ink in a line of digits for the line reader, in a FIELD px strip
LINE_SIDE_MARGIN = 4  # blank columns either side of the line
WORK = 4 * BOX    # resolution at which stroke width is adjusted, then averaged down 4x
WORKING_SIDE = 640  # larger images are averaged down to this first: plenty for a digit
# Stroke width, as a fraction of the digit box's longer side, that MNIST digits span
# (about 1.5 to 4.5 px in the 20 px box); strokes outside it are thickened or thinned.
STROKE_RANGE = (0.085, 0.2)
STROKE_TARGET = (0.11, 0.17)
# The ink map. A border whose colours stray less than FLAT_BORDER grey levels from their median is
# evenly lit paper; otherwise the paper is estimated at every pixel from a PAPER_SIDE px copy,
# with a window PAPER_WINDOW of its shorter side: wider than the fattest stroke.
INK_THRESHOLD = 0.25  # ink map values above this are strokes; below, their anti-aliased fringe
FLAT_BORDER = 12
PAPER_SIDE = 96
PAPER_WINDOW = 0.15
MIN_CONTRAST = 0.08  # ink differs from evenly lit paper by at least this much (of full scale),
MIN_CONTRAST_TO_PAPER = 0.25  # from a photographed sheet by this much of the paper's brightness
# A photo's frame, not ink: what stands out from the paper by FRAME_CONTRAST and covers FRAME_EDGE of
# the photo's edge (a desk, a shadow), crosses the photo (a margin line), or spans FRAME_SPAN of its
# width or height without touching its edge (the sheet's own edges).
FRAME_CONTRAST = 0.125
FRAME_EDGE = 0.25
FRAME_SPAN = 0.8
FAINT = 0.3  # on paper, by at least this fraction of the strong strokes' contrast
GREY_CHROMA = 16  # a JPEG whose blocks all stray less than this from grey is decoded in grey
BORDER_SAMPLES = 4096  # pixels of the border that its colour and noise are measured on

Box = tuple[int, int, int, int]  # x, y, width, height: a part of an image


class ImageError(ValueError):
    """An image we cannot use, with the HTTP status that fits and a message for the user."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NoDigitError(ImageError):
    status = 422

    def __init__(self, message: str = "no digit found") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Picture:
    """A decoded image as preprocessing reads it: 8-bit colour (H, W, C), C 1 or 3, and alpha
    (H, W), None where the image is opaque, at most WORKING_SIDE a side; `size` is the image's
    own (width, height), upright, for mapping positions back onto it."""

    colour: np.ndarray
    alpha: np.ndarray | None
    size: tuple[int, int]

    @classmethod
    def of(cls, image: Image.Image) -> Picture:
        """Any Pillow image, in any mode."""
        return cls(*_pixels(image), image.size)

    @property
    def width(self) -> int:
        return self.size[0]


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode PNG, JPEG, WebP, GIF (first frame) or BMP, upright as its EXIF says.

    The pixel count is checked from the header, before any pixel is decoded, so
    decompression bombs cost nothing.
    """
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        known = next((name for name, magic in SIGNATURES.items() if magic(data)), None)
        if known:  # one of ours by its first bytes, but too little of it to read
            raise ImageError(f"the {known} image is truncated or corrupt") from None
        raise ImageError(f"not an image, or not one of {', '.join(FORMATS)}", 415) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"the image has too many pixels (limit {max_pixels:,})", 413) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image is truncated or corrupt: {exc}") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageError("the image has zero width or height")
    if width * height > max_pixels:
        raise ImageError(f"the image has {width * height:,} pixels; the limit is {max_pixels:,}", 413)
    if _plain_png(image):
        pixels = _decode_png(data, image.mode)
        if pixels is not None:
            return Picture(*_split(pixels, image.mode == "RGBA"), (width, height))
        # Wuffs could not read it: Pillow says what is wrong with it.
    if image.format == "JPEG" and image.mode in ("L", "RGB"):
        pixels = _decode_jpeg(data, image)
        if pixels is not None:
            return Picture(*_split(pixels, False), _upright_size(image))
        # OpenCV could not read it: Pillow says what is wrong with it.
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: a phone photo needs no 12 megapixels.
        image.draft(image.mode, (WORKING_SIDE // 2, WORKING_SIDE // 2))
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of an upright image
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"the image is truncated or corrupt: {exc}") from None
    return Picture(*_pixels(image), image.size)


def _plain_png(image: Image.Image) -> bool:
    """A still PNG in grey, RGB or RGBA, and nothing for Pillow to apply: no
    palette, no transparent colour, no EXIF orientation. What canvases and most tools write."""
    return (wuffs is not None and image.format == "PNG" and image.mode in ("L", "RGB", "RGBA")
            and "transparency" not in image.info and "exif" not in image.info
            and not getattr(image, "is_animated", False))


def _decode_png(data: bytes, mode: str) -> np.ndarray | None:
    """A plain PNG's 8-bit pixels (H, W, C) in Pillow's `mode`; None where Wuffs cannot read it.

    Wuffs inflates and unfilters a 512 px canvas in 0.1 ms, a fifth of libspng's time and a
    tenth of Pillow's, to the same pixels; and, written in a memory-safe language, it is a safe
    place to parse what strangers send.
    """
    result = wuffs.ImageDecoder(_WUFFS_CONFIGS[mode]).decode(data)  # a decoder a call: thread-safe
    return None if result.error_message else result.pixbuf


def _wuffs_config(pixel_format: pywuffs.PixelFormat) -> wuffs.ImageDecoderConfig:
    config = wuffs.ImageDecoderConfig()
    config.enabled_decoders = [pywuffs.ImageDecoderType.PNG]
    config.pixel_format = pixel_format
    return config


# What Wuffs decodes each of Pillow's plain PNG modes to.
_WUFFS_CONFIGS = {} if wuffs is None else {
    "L": _wuffs_config(pywuffs.PixelFormat.Y), "RGB": _wuffs_config(pywuffs.PixelFormat.RGB),
    "RGBA": _wuffs_config(pywuffs.PixelFormat.RGBA_NONPREMUL)}


def _jpeg_scale(size: tuple[int, int]) -> int:
    """The 1/2, 1/4 or 1/8 scale at which libjpeg decodes an image still WORKING_SIDE / 2 or
    more a side: the scale Pillow's `draft` picks."""
    most = min(side // (WORKING_SIDE // 2) for side in size)
    return next((scale for scale in (8, 4, 2) if most >= scale), 1)


# OpenCV's flags for reading a JPEG at each scale, in grey or RGB.
_JPEG_SCALES = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def _decode_jpeg(data: bytes, image: Image.Image) -> np.ndarray | None:
    """A grey or RGB JPEG's pixels, upright and at `_jpeg_scale`; None where OpenCV cannot read it.

    OpenCV's libjpeg-turbo gives the very pixels Pillow's does, scaled and turned by the EXIF
    orientation the same way, in half the time: there is no copy out of Pillow's image memory.
    A canvas-sized colour JPEG that is grey all over (black on white, white on black) comes back
    grey, its luma, as Pillow decodes it to grey: in a third of the time, and a third less work
    for the ink map. Not a photo (640 px or more): on 1,500 photos of paper, 360 of them grey all
    over, their colours read 5 more digits right than their luma.
    """
    buffer = np.frombuffer(data, np.uint8)
    scale = _jpeg_scale(image.size)
    colour = image.mode == "RGB" and (scale > 1 or not _looks_grey(buffer))
    return cv2.imdecode(buffer, _JPEG_SCALES[scale] | (cv2.IMREAD_COLOR_RGB if colour else 0))


def _looks_grey(jpeg: np.ndarray) -> bool:
    """Whether a colour JPEG is grey all over, judged from its 1/8 scale picture: libjpeg makes
    that from each 8x8 block's average colour alone, in a quarter of a full decode's time."""
    small = cv2.imdecode(jpeg, cv2.IMREAD_REDUCED_COLOR_8)
    if small is None:
        return False
    b, g, r = cv2.split(small)
    return max(cv2.norm(b, g, cv2.NORM_INF), cv2.norm(g, r, cv2.NORM_INF), cv2.norm(r, b, cv2.NORM_INF)) <= GREY_CHROMA


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """An image's (width, height) once turned as its EXIF orientation says."""
    width, height = image.size
    turned = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


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


def _pixels(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """8-bit colour (H, W, C) with C 1 or 3, and alpha (H, W) or None, at most WORKING_SIDE a side.

    Everything after this works on 8-bit arrays with OpenCV: a float copy of a 512 px RGB image
    costs more than all the rest of preprocessing.
    """
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    elif image.mode in ("L", "RGB") and "transparency" in image.info:
        image = image.convert("LA" if image.mode == "L" else "RGBA")
    elif image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        peak = float(values.max())
        scale = 257.0 if peak > 255 else 1.0 if peak > 1 else 1 / 255
        image = Image.fromarray(np.clip(values / scale, 0, 255).astype(np.uint8), "L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode or image.mode == "RGBa" else "RGB")
    return _split(np.asarray(image), image.mode in ("LA", "RGBA"))


def _split(pixels: np.ndarray, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) or (H, W, C) 8-bit pixels -> colour (H, W, 1 or 3) and alpha or None, at most
    WORKING_SIDE a side."""
    height, width = pixels.shape[:2]
    if max(height, width) > WORKING_SIDE:
        scale = WORKING_SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    pixels = pixels.reshape(*pixels.shape[:2], -1)
    if not has_alpha:
        return pixels, None
    alpha = cv2.extractChannel(pixels, pixels.shape[-1] - 1)
    colour = cv2.cvtColor(pixels, cv2.COLOR_RGBA2RGB) if pixels.shape[-1] == 4 else pixels[..., :1].copy()
    return colour, None if cv2.minMaxLoc(alpha)[0] == 255 else alpha


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


def _mostly_ink(distance: np.ndarray) -> bool:
    """Whether most of the picture stands out from its border's colour: then the border is not the
    paper but what lies around it (a sheet photographed on a dark desk), for no drawing is mostly
    ink. Judged on every fourth pixel of every fourth row."""
    sample = distance[::4, ::4]
    return np.count_nonzero(sample > MIN_CONTRAST * 255) * 2 > sample.size


def _without_frame(contrast: np.ndarray) -> np.ndarray:
    """A photo's contrast map without its frame: what stands out along much of the picture's edge
    (the desk around the sheet, a shadow) or spans most of its width or height (a margin line,
    the sheet's own edges). A digit written on the sheet does neither, even one that runs into
    the picture's edge."""
    mask = (contrast > FRAME_CONTRAST * 255).view(np.uint8)
    count, labels, stats = components(mask)
    height, width = contrast.shape
    left, top, wide, high, _ = stats.T
    edge = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    on_edge = np.bincount(edge, minlength=count)  # each component's pixels on the picture's edge
    across = ((left == 0) & (left + wide == width)) | ((top == 0) & (top + high == height))
    spans = (wide >= FRAME_SPAN * width) | (high >= FRAME_SPAN * height)
    frame = (on_edge >= FRAME_EDGE * edge.size) | across | (spans & (on_edge == 0))
    frame[0] = False
    if not frame.any():
        return contrast
    reach = 2 * (3 * max(height, width) // PAPER_SIDE) + 1  # and its edge, where the paper is a guess
    frame = cv2.dilate(frame[labels].view(np.uint8), np.ones((reach, reach), np.uint8))
    return np.where(frame.view(bool), np.uint8(0), contrast)


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


def ink_region(image: Picture | Image.Image) -> InkRegion:
    """`ink`'s map, as the part of it that holds ink and where that lies."""
    picture = image if isinstance(image, Picture) else Picture.of(image)
    colour, alpha = picture.colour, picture.alpha
    least, faint, photo = MIN_CONTRAST, 0.0, False
    if alpha is not None and np.count_nonzero(alpha < 128) * 2 >= alpha.size:
        distance = alpha
        how = "The background is transparent: the alpha channel is the ink"
    else:
        faint = FAINT  # paper can have ruled lines, a transparent canvas cannot
        if alpha is not None:  # mostly opaque with some transparency: flatten onto the paper
            opaque = colour[alpha >= 128]
            paper = np.median(opaque, axis=0) if len(opaque) else np.full(colour.shape[-1], 255.0)
            weight = cv2.merge([alpha] * colour.shape[-1]).reshape(colour.shape).astype(np.float32) * (1 / 255)
            colour = np.round(colour * weight + paper * (1 - weight)).astype(np.uint8)
        border = _border(colour)
        border_colour = _median(border)
        flat = (*(float(v) for v in np.round(border_colour)), 0.0)  # one colour, as an OpenCV scalar
        spread = _quantile(_channel_max(cv2.absdiff(border[:, None, :], flat).reshape(-1, 1, colour.shape[-1]))
                           .ravel(), 0.9)
        if spread <= FLAT_BORDER:
            distance = _channel_max(cv2.absdiff(colour, flat).reshape(colour.shape))
            how = "Ink is how far each pixel's colour is from the paper's, the colour of the border"
        photo = spread > FLAT_BORDER or _mostly_ink(distance)  # uneven light, or the border is not paper
        if photo:
            distance = _without_frame(_contrast_to_paper(colour))
            least = MIN_CONTRAST_TO_PAPER
            how = ("The light is uneven (or the border is not the paper), so the paper was estimated everywhere: "
                   "ink is the contrast to it, leaving out the sheet's edges and what lies around it")
    # The paper's typical distance from itself measures texture and compression noise: on the
    # border for a canvas or a scan, whose border is paper; over the whole photo, whose edges may
    # be the desk's; a median, so that strokes do not count as noise.
    noise = float(np.median(distance[::4, ::4] if photo else _border(distance)))
    floor = max(least * 255, 6 * noise)
    # Only what passes the floor can be ink, so the rest looks at the box around that alone: on
    # most drawings a small part of the picture.
    x, y, width, height = cv2.boundingRect(cv2.threshold(distance, min(int(floor), 255), 255, cv2.THRESH_BINARY)[1])
    if width == 0:
        return InkRegion(np.zeros((0, 0), np.float32), (0, 0, 0, 0), distance.shape,
                         f"{how}; nothing stands out from the paper")
    box = distance[y:y + height, x:x + width]
    # Every other row (of the picture) is plenty for the strokes' 90th percentile, in half the
    # time; all of them where the ink is so slight that every other row misses it.
    for rows in (box[y % 2::2] if height > 1 else box, box):
        histogram = cv2.calcHist([rows], [0], None, [256], [0, 256]).ravel()
        histogram[:int(floor) + 1] = 0
        if histogram.sum():  # always, over the whole box: it holds what passes the floor
            break
    full = _histogram_quantile(histogram, 0.9)
    # Lines, shadows' edges and grain that pass the noise floor are still far fainter than ink.
    floor = max(floor, faint * full)
    full = max(full, floor + 0.05 * 255)
    table = np.clip((np.arange(256, dtype=np.float32) - floor) / (full - floor), 0, 1)
    # Nothing outside the box passes the floor: the rest of the map is zero.
    return InkRegion(cv2.LUT(box, table), (x, y, width, height), distance.shape,
                     f"{how}; faint marks under {floor / 255:.0%} are not ink")


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


def to_line(ink_map: np.ndarray) -> np.ndarray:
    """A line of digits as the line reader sees it: float (28, W) in [0, 1], the ink cropped and
    scaled to LINE_INK px high (width in proportion), with a margin all round. NoDigitError if
    there is no ink."""
    (top, left, height, width), line_width = _line_geometry(ink_map)
    crop = ink_map[top:top + height, left:left + width].astype(np.float32, copy=False)
    line = np.clip(_resize(crop, line_width, LINE_INK), 0, 1)
    margin = (FIELD - LINE_INK) // 2
    return np.pad(line, ((margin, margin), (LINE_SIDE_MARGIN, LINE_SIDE_MARGIN)))


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


def preprocess(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Image bytes -> the 28x28 MNIST-style float image the model sees."""
    region = ink_region(decode(data, max_pixels))
    return to_mnist(region.part, canvas_side=max(region.shape))


def quantize(field: np.ndarray) -> np.ndarray:
    """A grey image in [0, 1] as 8-bit pixels: how fields are shown, stored and exported."""
    return np.round(field * 255).astype(np.uint8)


def to_png(field: np.ndarray) -> bytes:
    """A grey image (floats in [0, 1], or 8-bit pixels) as a PNG, for showing people what the model saw."""
    pixels = field if field.dtype == np.uint8 else quantize(field)
    # OpenCV writes it in half Pillow's time: every prediction sends one back.
    return cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
