"""Turn whatever image people send into what MNIST looks like.

MNIST digits are white on black, fitted into a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in a 28x28 field by their centre of mass. Canvases, photos and
scans are none of these things; this module is the one place that bridges the gap, for
the API, the page's preview, the command-line predictor and the benchmarks alike.

    decode(bytes) -> PIL image  ->  ink(image) -> float map, 1 = ink  ->  to_mnist(ink) -> 28x28
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

EIGHT_NEIGHBOURS = np.ones((3, 3), bool)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
DEFAULT_MAX_PIXELS = 40_000_000

BOX = 20          # MNIST's digit box, in pixels
FIELD = 28        # MNIST's image size
WORK = 4 * BOX    # resolution at which stroke width is adjusted, then averaged down 4x
WORKING_SIDE = 640  # larger images are averaged down to this first: plenty for a digit
# Stroke width, as a fraction of the digit box's longer side, that MNIST digits span
# (about 1.5 to 4.5 px in the 20 px box); strokes outside it are thickened or thinned.
STROKE_RANGE = (0.085, 0.2)
STROKE_TARGET = (0.11, 0.17)


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


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
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
        raise ImageError(f"not an image, or not one of {', '.join(FORMATS)}", 415) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"the image has too many pixels (limit {max_pixels:,})", 413) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image is corrupt: {exc}") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageError("the image has zero width or height")
    if width * height > max_pixels:
        raise ImageError(f"the image has {width * height:,} pixels; the limit is {max_pixels:,}", 413)
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: a phone photo needs no 12 megapixels.
        image.draft(image.mode, (WORKING_SIDE // 2, WORKING_SIDE // 2))
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"the image is truncated or corrupt: {exc}") from None
    return image


def _standard_mode(image: Image.Image) -> Image.Image:
    """The image as L, LA, RGB or RGBA, or as I/F for 16-bit and float images."""
    if image.mode in ("P", "PA"):
        return image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    if image.mode in ("L", "RGB") and "transparency" in image.info:
        return image.convert("LA" if image.mode == "L" else "RGBA")
    if image.mode in ("L", "LA", "RGB", "RGBA") or image.mode.startswith("I") or image.mode == "F":
        return image
    return image.convert("RGBA" if "A" in image.mode or image.mode == "RGBa" else "RGB")


def _colour(image: Image.Image) -> np.ndarray:
    """Colour without alpha as float (H, W, C) in [0, 1]; 16-bit and float images scaled to fit."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        peak = values.max()
        scale = 65535.0 if peak > 255 else 255.0 if peak > 1 else 1.0
        return np.clip(values / scale, 0, 1)[..., None]
    if image.mode in ("LA", "RGBA"):
        image = image.convert(image.mode[:-1])
    values = np.asarray(image, dtype=np.float32) / 255.0
    return values[..., None] if values.ndim == 2 else values


def _quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile of a 1-D array, by partial sort: several times cheaper than np.percentile."""
    k = round(q * (values.size - 1))
    return float(np.partition(values, k)[k])


def _border(a: np.ndarray) -> np.ndarray:
    """The outer ring of pixels, where the background shows on any sensible drawing."""
    b = max(1, min(a.shape[:2]) // 50)
    return np.concatenate([a[:b].reshape(-1, *a.shape[2:]), a[-b:].reshape(-1, *a.shape[2:]),
                           a[b:-b, :b].reshape(-1, *a.shape[2:]), a[b:-b, -b:].reshape(-1, *a.shape[2:])])


def ink(image: Image.Image) -> np.ndarray:
    """Where the ink is: float (H, W), 0 for background and 1 for full ink, any polarity or colour.

    A mostly transparent image (a canvas exported as is) has its ink in the alpha channel.
    Otherwise the background is the median colour of the border, and ink is the distance
    from it, so black on white, white on black and blue on yellow all work the same.
    """
    if max(image.size) > WORKING_SIDE:
        image = image.copy()
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    image = _standard_mode(image)
    alpha = np.asarray(image.getchannel("A"), np.float32) / 255 if image.mode in ("LA", "RGBA") else None
    if alpha is not None and np.count_nonzero(alpha < 0.5) * 2 >= alpha.size:
        distance = alpha
    else:
        colour = _colour(image)
        if alpha is not None:
            opaque = colour[alpha >= 0.5]
            paper = np.median(opaque, axis=0) if len(opaque) else np.ones(colour.shape[-1], np.float32)
            colour = colour * alpha[..., None] + paper * (1 - alpha[..., None])
        background = np.median(_border(colour), axis=0)
        distance = np.sqrt(np.square(colour - background).mean(axis=-1))
    # The border's typical distance from its median measures paper texture and compression
    # noise; a median, so that strokes running off the edge do not count as noise.
    noise = _quantile(_border(distance), 0.5)
    floor = max(0.08, 6 * noise)
    strokes = distance[distance > floor]
    if strokes.size == 0:
        return np.zeros(distance.shape, np.float32)
    full = max(_quantile(strokes, 0.9), floor + 0.05)
    ink_map = (distance - floor).astype(np.float32, copy=False)
    ink_map *= 1 / (full - floor)
    return np.clip(ink_map, 0, 1, out=ink_map)


def _digit_crop(ink_map: np.ndarray) -> np.ndarray:
    """The ink's bounding box, with isolated specks removed; NoDigitError if there is no digit."""
    mask = ink_map > 0.25
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        raise NoDigitError()
    # Everything below looks only at the box around all the ink, specks included: cheaper.
    full_side = max(ink_map.shape)
    ink_map = ink_map[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    mask = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    labels, count = ndimage.label(mask, structure=EIGHT_NEIGHBOURS)
    sizes = np.bincount(labels[mask], minlength=count + 1)
    # Pieces of a digit are strokes; specks are small next to the largest stroke.
    keep = sizes >= max(0.05 * sizes.max(), 2)
    keep[0] = False
    if sizes[keep].sum() < 4:
        raise NoDigitError()
    if keep[1:].all():  # no specks to drop: the box around all the ink is the digit's
        if max(mask.shape) < 0.02 * full_side:
            raise NoDigitError()
        return ink_map
    kept = keep[labels]
    rows, cols = np.flatnonzero(kept.any(1)), np.flatnonzero(kept.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < 0.02 * full_side:
        raise NoDigitError()
    # Keep the anti-aliased fringe of kept strokes (2 px around them), drop the specks.
    height, width = ink_map.shape
    y0, y1, x0, x1 = max(top - 2, 0), min(bottom + 2, height), max(left - 2, 0), min(right + 2, width)
    near = ndimage.maximum_filter(kept[y0:y1, x0:x1], size=5)
    crop = np.where(near, ink_map[y0:y1, x0:x1], 0)
    return crop[top - y0:bottom - y0, left - x0:right - x0]


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: twice the area over the perimeter."""
    inner = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    edges = (np.count_nonzero(mask[0]) + np.count_nonzero(mask[-1])
             + np.count_nonzero(mask[:, 0]) + np.count_nonzero(mask[:, -1]))
    return 2.0 * np.count_nonzero(mask) / max(inner + edges, 1)


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average when shrinking (every stroke keeps its ink), bilinear when enlarging."""
    method = Image.Resampling.BOX if width <= a.shape[1] and height <= a.shape[0] else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, np.float32), "F").resize((width, height), method))


def _dilate(x: np.ndarray, square: bool) -> np.ndarray:
    """Grey-scale dilation by a 3x3 square or a plus-shaped cross: `model.augment.dilate` for
    one image in NumPy, where it costs a fraction of torch's per-call overhead."""
    out = x.copy()
    np.maximum(out[1:], x[:-1], out=out[1:])
    np.maximum(out[:-1], x[1:], out=out[:-1])
    source = out.copy() if square else x
    np.maximum(out[:, 1:], source[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], source[:, 1:], out=out[:, :-1])
    return out


def _reshape_strokes(a: np.ndarray, radius: int, thicker: bool) -> np.ndarray:
    """Grow (or shrink) every stroke by `radius` px on each side, with the octagonal brush
    that training's augmentation draws with: alternating cross and square steps."""
    x = np.zeros((a.shape[0] + 2 * radius, a.shape[1] + 2 * radius), np.float32)
    x[radius:-radius, radius:-radius] = a if thicker else -a
    for i in range(radius):
        x = _dilate(x, square=i % 2 == 1)
    return x if thicker else -x


def to_mnist(ink_map: np.ndarray) -> np.ndarray:
    """The 28x28 float image in [0, 1] that MNIST would have had for this drawing."""
    crop = _digit_crop(ink_map)
    height, width = crop.shape
    side = max(height, width)
    # Work at 4x the final size: enough to reshape strokes, then average down for anti-aliasing.
    w, h = max(1, round(width * WORK / side)), max(1, round(height * WORK / side))
    work = _resize(crop, w, h)
    width_fraction = _stroke_width(crop > 0.5) / side
    lo, hi = STROKE_RANGE
    if width_fraction < lo or width_fraction > hi:
        target = min(max(width_fraction, STROKE_TARGET[0]), STROKE_TARGET[1])
        radius = round(abs(target - width_fraction) * WORK / 2)
        if radius:
            work = _reshape_strokes(work, radius, thicker=width_fraction < lo)
            rows, cols = np.flatnonzero(work.max(1) > 0.05), np.flatnonzero(work.max(0) > 0.05)
            if rows.size:
                work = work[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        peak = work.max()
        if peak > 0:
            work = np.clip(work / peak, 0, 1)
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
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return field


def preprocess(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Image bytes -> the 28x28 MNIST-style float image the model sees."""
    return to_mnist(ink(decode(data, max_pixels)))


def to_png(field: np.ndarray) -> bytes:
    """The 28x28 image as an 8-bit grey PNG, for showing people what the model saw."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(field * 255).astype(np.uint8), "L").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
