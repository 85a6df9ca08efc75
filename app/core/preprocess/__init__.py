"""Turn whatever image people send into what MNIST looks like.

MNIST digits are white on black, fitted into a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in a 28x28 field by their centre of mass. Canvases, photos and
scans are none of these things; this package is the one place that bridges the gap, for
the API, the page's preview, numbers, explanations, corrections, the command-line predictor
and the benchmarks alike.

    decode(bytes) -> Picture  ->  ink(picture) -> float map, 1 = ink  ->  to_mnist(ink) -> 28x28
    (decoding)                    (ink_map)                               (fields)
"""

from app.core.preprocess.decoding import DEFAULT_MAX_PIXELS, WORKING_SIDE, Picture, decode
from app.core.preprocess.errors import ImageError, NoDigitError
from app.core.preprocess.fields import line_to_ink_columns, preprocess, quantize, to_line, to_mnist, to_png
from app.core.preprocess.ink_map import INK_THRESHOLD, InkRegion, Stage, Trace, components, ink, ink_region

__all__ = ["DEFAULT_MAX_PIXELS", "INK_THRESHOLD", "WORKING_SIDE", "ImageError", "InkRegion", "NoDigitError",
           "Picture", "Stage", "Trace", "components", "decode", "ink", "ink_region", "line_to_ink_columns",
           "preprocess", "quantize", "to_line", "to_mnist", "to_png"]
