"""Image bytes -> a Picture: 8-bit colour and alpha, upright, at most WORKING_SIDE a side,
decoded by the fastest safe decoder for the format (Wuffs for plain PNGs, libjpeg-turbo through
OpenCV for JPEGs, Pillow for the rest), with every way a file can be bad turned into an ImageError.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from app.core.preprocess.errors import ImageError

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
WORKING_SIDE = 640  # larger images are averaged down to this first: plenty for a digit
GREY_CHROMA = 16  # a JPEG whose blocks all stray less than this from grey is decoded in grey


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
