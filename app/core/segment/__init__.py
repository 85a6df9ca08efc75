"""Numbers: a drawing cut into digits, left to right, each read exactly like a single drawing.

    ink map (or the page's strokes) -> pieces -> groups -> digits -> 28x28 fields -> batched model calls

A piece is a connected stroke (from pixels) or a pen stroke (when the page sends its strokes).
Pieces whose columns overlap belong to one digit: a 4 or a 5 drawn in two strokes, a 7 with a
bar. Specks are dropped (`pieces`). A group that may hold touching digits is cut along seams,
paths from top to bottom that cross the least ink (`cuts`); every way of cutting it is scored by
the segment reader (a second small CNN, trained by train_segments.py to tell one whole digit
from a fragment or from two digits stuck together). The best few readings, the uncut group among
them, are then weighed by the line reader (a third, trained by train_lines.py, that reads the
whole group at once with CTC; a long group that climbs, sheared level), and the reading both
agree on best wins (`weigh`). Last, the line reader reads the whole number, shown level
(`level`: a line written uphill sheared flat, a digit far above or below the others moved back),
and its own reading stands where it is far likelier than the groups' (`number`).
"""

from app.core.segment.number import TooManyDigitsError, answer, read_image, read_number, read_strokes
from app.core.segment.weigh import Digit, Reader

__all__ = ["Digit", "Reader", "TooManyDigitsError", "answer", "read_image", "read_number", "read_strokes"]
