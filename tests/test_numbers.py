"""Whole numbers: segmentation on its own, and /predict/number in every input form.

Numbers are drawn from the pen paths of tests/drawing.py: apart, close, touching, overlapping,
multi-stroke digits, specks, every background, and as the page's own strokes.
"""

from __future__ import annotations

import base64
import io
import math
import random
from collections.abc import Sequence
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from app.core import segment
from app.core.classifier import STEP, LineReading
from app.core.preprocess import INK_THRESHOLD, NoDigitError, decode, ink, to_line
from app.core.segment.cuts import Seams
from app.core.segment.level import group_slope
from app.core.segment.number import CUT_HEIGHT, SPLIT_WIDTH
from app.core.segment.pieces import pieces_from_ink
from app.core.segment.weigh import FIRST_VALLEYS
from model import mnist, pen
from tests.drawing import encode, number, paths, picture, render

WHITE = (255, 255, 255, 255)


def strokes_json(digits: str, **layout) -> dict:
    (width, height), strokes = number(digits, **layout)
    return {"canvas": {"width": width, "height": height}, "brush": layout.get("brush", 9),
            "strokes": [[[float(x), float(y), 16.0 * i] for i, (x, y) in enumerate(path)] for path in strokes]}


@pytest.fixture(scope="module")
def reader(app):
    return app.extensions["digitpad.reader"]


def read(data: bytes, reader) -> str:
    return "".join(str(int(d.probabilities.argmax())) for d in segment.read_image(data, reader, 16))


# --- segmentation


@pytest.mark.parametrize("digits", ["2026", "42", "10", "7", "31415926", "600", "1111", "8", "0123456789"])
def test_digits_apart_are_read_left_to_right(reader, digits):
    assert read(picture(digits, gap=0.35), reader) == digits


@pytest.mark.parametrize("digits, gap", [("42", 0.05), ("2026", 0.08), ("3579", 0.04)])
def test_digits_close_together(reader, digits, gap):
    assert read(picture(digits, gap=gap), reader) == digits


def touching(digits: str) -> bytes:
    """The digits drawn closer and closer, until their ink touches."""
    for gap in np.arange(0.0, -0.5, -0.02):
        data = picture(digits, gap=float(gap), brush=11)
        if len(pieces_from_ink(ink(decode(data)))) < len(digits):
            return data
    raise AssertionError(f"{digits} never touch")


@pytest.mark.parametrize("digits", ["23", "47", "56", "2026", "314"])
def test_touching_digits_are_cut_apart(reader, digits):
    assert read(touching(digits), reader) == digits


@pytest.mark.parametrize("digits", ["2026", "314", "3579", "4812", "2468"])
def test_overlapping_digits_are_read(reader, digits):
    """Boxes overlapping by 15% of a digit's height: strokes cross, and only reading the whole
    group (the line reader) tells which of the ways to cut it is right."""
    assert read(picture(digits, gap=-0.15, brush=11), reader) == digits


@pytest.mark.parametrize("digits", ["23", "47", "56", "314"])
def test_the_line_reader_finds_the_true_reading_likeliest(reader, digits):
    """Of readings that differ by a digit, a digit too many or too few, the line reader gives the
    drawing's own the highest likelihood: it is what picks among the ways a group can be cut."""
    line = to_line(ink(decode(touching(digits))))
    wrong = {digits[:-1], digits[1:], digits + digits[-1], digits[0] + digits, "".join(sorted(digits)) + "1",
             str((int(digits[0]) + 1) % 10) + digits[1:], digits[:-1] + str((int(digits[-1]) + 5) % 10)} - {digits}
    candidates = [digits, *sorted(wrong)]
    scores = reader.read_line(line).likelihoods(candidates)
    assert candidates[int(np.argmax(scores))] == digits, dict(zip(candidates, scores.round(1)))


@pytest.mark.parametrize("digits", ["23", "47", "2026"])
def test_the_line_reader_reads_a_line_on_its_own_left_to_right(reader, digits):
    """Its own reading stands where no cut separates the digits: each digit with ten
    probabilities and the stretch of the line it was read from, in order."""
    line = to_line(ink(decode(touching(digits))))
    found = reader.read_line(line).best_path()
    assert "".join(str(int(p.argmax())) for p, _, _ in found) == digits
    for p, start, end in found:
        assert p.shape == (10,) and abs(p.sum() - 1) < 1e-5 and 0 <= start < end <= line.shape[1]
    assert [start for _, start, _ in found] == sorted(start for _, start, _ in found)


def test_a_digit_of_several_strokes_is_one_digit(reader):
    # The 4 of tests/drawing.py is two strokes; the 5's bar and the 7's stem overlap in columns.
    for digits in ("44", "454", "747"):
        assert read(picture(digits, gap=0.3), reader) == digits


def test_different_sizes_and_a_wavy_baseline(reader):
    assert read(picture("583920", gap=0.3, jitter=0.15, seed=3), reader) == "583920"


@pytest.mark.parametrize("slope", [0.25, -0.25])
@pytest.mark.parametrize("digits", ["31415", "123456"])
def test_a_number_written_uphill_or_downhill(reader, client, digits, slope):
    """A line that climbs or falls a quarter of its length: read level, not as digits piled up."""
    assert read(picture(digits, gap=0.35, slope=slope), reader) == digits
    assert client.post("/predict/number", json=strokes_json(digits, gap=0.35, slope=slope)).json["number"] == digits


@pytest.mark.parametrize("digits, seed", [("123456", 3), ("907", 2), ("31415", 3)])
def test_digits_of_very_different_sizes_well_off_the_line(reader, digits, seed):
    """Sizes 0.6-1.4 of each other, each digit up to 0.4 heights above or below the line."""
    assert read(picture(digits, gap=0.35, jitter=0.4, seed=seed), reader) == digits


@pytest.fixture(scope="module")
def mnist_test(mnist_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's test images and labels, read (and their checksums verified) once for the module."""
    return mnist.load("test", mnist_dir, fetch=False)


def mnist_number(mnist_test, seed: int, gaps: Sequence[str], turned: float = 0.0, lengths: tuple[int, int] = (2, 4),
                 **pen_size) -> tuple[bytes, str]:
    """A number of 2-4 (`lengths`) MNIST test digits (of the first 1,000) redrawn as pen strokes by
    model/pen.py, as bench.numbers draws them, each neighbour meeting the last as one of `gaps`
    says, the whole `turned` degrees anticlockwise; black on white, as a PNG; and its digits."""
    images, labels = mnist_test
    rng = random.Random(seed)
    chosen = [rng.randrange(1000) for _ in range(rng.randint(*lengths))]
    gap = rng.choice(gaps)
    written = pen.write([pen.centre_lines(images[i].numpy()) for i in chosen], [gap] * (len(chosen) - 1), rng,
                        **pen_size)
    ink_on_white = Image.fromarray(np.round(255 * (1 - written.coverage)).astype(np.uint8))
    if turned:
        ink_on_white = ink_on_white.rotate(turned, Image.Resampling.BILINEAR, expand=True, fillcolor=255)
    return encode(ink_on_white), "".join(str(int(labels[i])) for i in chosen)


@pytest.mark.parametrize("seed", [19, 81, 103, 169, 223])
def test_a_number_written_small_reads_right(reader, mnist_test, seed):
    """20-30 px high, apart or close. Its line is enlarged before it is shrunk to the line reader's
    strip, as every line the reader learnt from was: shrunk hardly at all, its crisp strokes were
    read as more digits or other ones ("498" as "4198", "2140" as "2340")."""
    data, digits = mnist_number(mnist_test, seed, ["wide", "tight"], heights=(20, 30))
    assert read(data, reader) == digits


@pytest.mark.parametrize("seed", [5, 19, 60, 79, 96])
def test_overlapping_digits_written_with_a_fat_marker_read_right(reader, mnist_test, seed):
    """The marker 18-25% of the digits' height wide. The line reader sees their strokes thinned to
    those of the lines it learnt from: fat, they fill the gaps it reads between the digits ("5956"
    read as "556", "880" as "8680")."""
    data, digits = mnist_number(mnist_test, seed, ["overlapping"], brushes=(0.18, 0.25))
    assert read(data, reader) == digits


@pytest.mark.parametrize("seed", [13, 16, 29, 31, 40, 103])
def test_a_long_number_run_together_on_a_line_off_level_reads_right(reader, mnist_test, seed):
    """5-6 digits touching or overlapping, the whole turned 10 degrees one way or the other. Their
    group reached the line reader as tall as its climb, each digit shrunk to a fraction of its
    strip, and it lost digits ("122986" read "2986", "140427" read "14042"); it now reads the group
    sheared level (`group_slope`), as it reads a whole number levelled."""
    data, digits = mnist_number(mnist_test, seed, ["touching", "overlapping"], turned=10 if seed % 2 else -10,
                                lengths=(5, 6))
    assert read(data, reader) == digits


def test_a_group_is_levelled_only_where_its_ink_shows_a_line_off_level():
    """The slope of a group (its ink, cut to the box around it) from its ink's moments: a long
    group's, turned; none for a level one, for one too short to tell from its digits' own shapes,
    or for ink too steep to be a line."""
    def group_of_strokes(climb: float, width: int) -> np.ndarray:
        """Upright strokes 30 px high every 12 px across `width`, their line climbing `climb` px a px."""
        ink = np.zeros((30 + round(abs(climb) * width), width), np.float32)
        for x in range(0, width, 12):
            top = round(climb * (width - x)) if climb > 0 else round(-climb * x)
            ink[top:top + 30, x] = 1
        return ink

    assert group_slope(group_of_strokes(0.0, 180)) == 0.0
    assert group_slope(group_of_strokes(0.25, 180)) == pytest.approx(-0.25, abs=0.02)
    assert group_slope(group_of_strokes(-0.25, 180)) == pytest.approx(0.25, abs=0.02)
    assert group_slope(group_of_strokes(0.25, 60)) == 0.0  # two digits' heights
    assert group_slope(group_of_strokes(0.5, 300)) == 0.0  # 27 degrees


class SureReader:
    """Models that take every piece for a 0 with the given confidence, and for one whole digit with
    that confidence or `wholeness`, and a line reader that sees only blanks (its own reading is
    empty, so it never overrules the groups), counting the lines it is asked to read."""

    def __init__(self, confidence: float, wholeness: float | None = None) -> None:
        self.confidence = confidence
        self.whole = confidence if wholeness is None else wholeness
        self.lines_read = 0

    def digits(self, fields: np.ndarray) -> np.ndarray:
        p = np.full((len(fields), 10), (1 - self.confidence) / 9)
        p[:, 0] = self.confidence
        return p

    def wholeness(self, fields: np.ndarray) -> np.ndarray:
        return np.full(len(fields), self.whole)

    def read_line(self, line: np.ndarray) -> LineReading:
        self.lines_read += 1
        scores = torch.full((line.shape[1] // STEP, 11), -20.0)
        scores[:, 0] = 0  # blank
        return LineReading(F.log_softmax(scores, dim=1))


class CountingReader(SureReader):
    """SureReader, counting how often the segment reader is asked."""

    asked = 0

    def wholeness(self, fields: np.ndarray) -> np.ndarray:
        self.asked += 1
        return super().wholeness(fields)


def stretched_zero(stretch: float) -> bytes:
    """A 0 drawn `stretch` times as wide as usual: 3.1 makes it 1.7 heights wide, 2.0 1.1."""
    strokes = [np.column_stack([60 + (p[:, 0] - 60) * stretch, p[:, 1]]) for p in paths(0, (60, 40, 100))]
    return encode(render(strokes, canvas=(320, 180), brush=10, supersample=2))


def test_a_broad_digit_both_models_take_for_one_is_not_read_again_as_a_line():
    # A 0 drawn 1.7 heights wide: too broad to pass as one digit at a glance, so it is cut; when
    # both models take the whole for one digit more likely than not, the line reader (which would
    # rather find "00") does not weigh the cuts, and the 0 stays one digit. The whole number is
    # read as a line either way; weighing the cuts is a second line.
    broad_zero = stretched_zero(3.1)
    for sure in (0.99, 0.6):
        reader = SureReader(sure)
        digits = segment.read_image(broad_zero, reader, 16)
        assert [d.box[2] > SPLIT_WIDTH * d.box[3] for d in digits] == [True]
        assert reader.lines_read == 1
    reader = SureReader(0.4)
    segment.read_image(broad_zero, reader, 16)
    assert reader.lines_read == 2


def test_a_digit_both_models_take_for_one_is_read_at_a_glance():
    # A 0 drawn 1.1 heights wide, within SPLIT_WIDTH: when both models take it for one digit more
    # likely than not, no cut is tried (the segment reader is asked once, about the whole group);
    # when one doubts it, its cuts are weighed (asked again, about the pieces).
    zero = stretched_zero(2.0)
    for sure, asked in ((0.6, 1), (0.4, 2)):
        reader = CountingReader(sure, wholeness=0.6)
        digits = segment.read_image(zero, reader, 16)
        assert reader.asked == asked
        if sure > 0.5:
            [(_, _, width, height)] = [d.box for d in digits]
            assert 1.0 < width / height < SPLIT_WIDTH


def test_a_narrow_group_the_segment_reader_doubts_is_weighed_as_a_line():
    # A 1 run into its neighbour makes a group no wider than one digit, which the classifier may
    # read surely as that neighbour ("17" as 7): when the segment reader doubts the group is one
    # whole digit, the line reader weighs its readings too; when it takes it for one (only the
    # classifier doubts it), the cuts alone decide, as for a narrow odd digit.
    zero = stretched_zero(2.0)  # 1.1 heights wide: under LINE_WIDTH
    doubted, taken = SureReader(0.99, wholeness=0.3), SureReader(0.4, wholeness=0.6)
    segment.read_image(zero, doubted, 16)
    assert read(zero, taken) == "0"
    assert (doubted.lines_read, taken.lines_read) == (2, 1)  # the group's line, then the whole number's


class PieceCounter(SureReader):
    """The service's own models, counting the pieces the segment reader is asked about; with
    `blank_line`, SureReader's line reader instead, whose own reading (none) no cut ever spells."""

    def __init__(self, reader, blank_line: bool = False) -> None:
        super().__init__(0.5)
        self.reader, self.blank_line, self.pieces = reader, blank_line, 0

    def digits(self, fields: np.ndarray) -> np.ndarray:
        return self.reader.digits(fields)

    def wholeness(self, fields: np.ndarray) -> np.ndarray:
        self.pieces += len(fields)
        return self.reader.wholeness(fields)

    def read_line(self, line: np.ndarray) -> LineReading:
        return super().read_line(line) if self.blank_line else self.reader.read_line(line)


def test_touching_digits_are_cut_along_every_seam_only_where_the_deepest_leave_the_line_reader_unsure(reader):
    # Cut along its deepest seams only, the touching group reads as the line reader reads it on
    # its own: that reading stands. Where the two differ, the group is cut along every seam and
    # weighed again, which asks the segment reader about more pieces than the first cut held.
    data = touching("2026")
    agreeing, differing = PieceCounter(reader), PieceCounter(reader, blank_line=True)
    assert read(data, agreeing) == "2026"
    read(data, differing)
    assert differing.pieces - agreeing.pieces > agreeing.pieces


class SpellingReader(SureReader):
    """SureReader (every group a sure 0), with a line reader that spells `digits` along the line,
    evenly or at the fractions `at` of its length, each ahead of the next likeliest class by
    `sureness` in log-odds."""

    def __init__(self, digits: str, sureness: float, at: Sequence[Fraction] | None = None) -> None:
        super().__init__(0.99)
        self.spelt, self.sureness = digits, sureness
        self.at = at or [Fraction(2 * k + 1, 2 * len(digits)) for k in range(len(digits))]

    def read_line(self, line: np.ndarray) -> LineReading:
        steps = line.shape[1] // STEP  # as LineNet's
        scores = torch.full((steps, 11), -float(self.sureness))
        scores[:, 0] = 0  # blank
        for where, digit in zip(self.at, self.spelt):
            step = math.floor(where * steps)
            scores[step, 0], scores[step, int(digit) + 1] = -self.sureness, 0
        return LineReading(F.log_softmax(scores, dim=1))


def test_the_line_reader_reading_the_whole_number_far_likelier_stands():
    data = picture("42", gap=0.35)
    groups = [d.box for d in segment.read_image(data, SpellingReader("00", sureness=8), 16)]  # as read
    digits = segment.read_image(data, SpellingReader("42", sureness=8), 16)
    assert segment.answer(digits)["number"] == "42"
    for (x, y, w, h), (gx, gy, gw, gh) in zip([d.box for d in digits], groups):  # each digit its own ink
        assert abs(x - gx) <= 3 and abs(x + w - gx - gw) <= 3 and (y, h) == (gy, gh)
    # Only a little likelier than what the groups read, it does not.
    assert read(data, SpellingReader("42", sureness=1)) == "00"


def test_the_line_reader_finding_a_digit_the_groups_lost_needs_less_to_stand():
    # A 1 run into its neighbour is lost from the groups' reading; a reading with a digit more than
    # theirs stands on a smaller margin (LINE_MORE) than one that reads their digits otherwise.
    data = picture("42", gap=0.35)  # two groups, each a sure 0 to SureReader
    in_the_4 = [Fraction(1, 8), Fraction(3, 8), Fraction(3, 4)]  # the first group parted in two
    digits = segment.read_image(data, SpellingReader("000", sureness=2, at=in_the_4), 16)  # 1.2 likelier
    assert segment.answer(digits)["number"] == "000"
    assert digits[0].box[0] + digits[0].box[2] == digits[1].box[0]
    assert read(data, SpellingReader("42", sureness=1)) == "00"  # 1.3 likelier


def test_the_line_reader_finds_no_digit_on_the_paper_between_two_groups():
    # Spelt evenly, the middle of three digits lies across the gap between the 4 and the 2, made
    # of their edges: however sure the line reader is, the groups' reading stands.
    data = picture("42", gap=0.35)
    for sureness in (2, 8, 12):
        assert read(data, SpellingReader("000", sureness=sureness)) == "00"


def test_a_lone_group_the_line_reader_is_far_surer_holds_two_digits_is_read_as_two():
    # Two digits run together in one stroke ("91") make one group that passes at a glance for one
    # digit. The line reader parts it only where it finds several digits and is far surer of them.
    data = picture("0", gap=0.3)  # one group, which SureReader reads as a sure 0
    assert read(data, SpellingReader("91", sureness=12)) == "91"
    assert read(data, SpellingReader("91", sureness=2)) == "0"  # surer by 3.4: enough against a number's groups
    assert read(data, SpellingReader("7", sureness=12)) == "0"  # one digit: /predict's answer stands


def test_specks_are_ignored(reader):
    canvas, strokes = number("36", gap=0.3)
    image = render(strokes, canvas=canvas, brush=9, paper=WHITE, supersample=2)
    for x, y in [(5, 5), (canvas[0] - 9, 8), (canvas[0] // 2, canvas[1] - 8)]:
        image.paste((0, 0, 0, 255), (x, y, x + 3, y + 3))
    assert read(encode(image), reader) == "36"


@pytest.mark.parametrize("digits, right, down", [("10", 18, 10), ("71", 16, 15), ("41", 20, 10)])
def test_a_pen_tap_beside_a_digit_is_a_speck(reader, digits, right, down):
    """A dot half again as wide as the pen, clear of the 1 beside its top: not part of the 1 (a 9)."""
    canvas, strokes = number(digits, gap=0.35)
    height, brush = 90, 9  # number()'s own
    margin, step = 0.4 * height + brush, (0.7 + 0.35) * height
    x = margin + digits.index("1") * step + 0.55 * 0.7 * height + right  # right of the 1's stem
    y = margin + down
    image = render(strokes, canvas=canvas, brush=brush, supersample=2)
    image.alpha_composite(render([np.array([[x, y], [x + 0.01, y]])], canvas=canvas, brush=14, supersample=2))
    assert read(encode(image), reader) == digits


@pytest.mark.parametrize("font", ["SIMPLEX", "PLAIN", "DUPLEX", "COMPLEX", "TRIPLEX", "SCRIPT_SIMPLEX",
                                  "SCRIPT_COMPLEX"])
def test_numbers_written_in_a_stroke_font(reader, font):
    """Digits of a shape unlike the pen paths the other tests draw (OpenCV's Hershey stroke fonts,
    serifs and script ones included, upright and slanted), at the fonts' own spacing."""
    for digits, slant in [("2026", 0), ("0123456789", 0), ("84", cv2.FONT_ITALIC), ("13579", cv2.FONT_ITALIC)]:
        face = getattr(cv2, f"FONT_HERSHEY_{font}") | slant
        (width, height), _ = cv2.getTextSize(digits, face, 3, 6)
        image = np.full((2 * height + 40, width + 60), 255, np.uint8)
        cv2.putText(image, digits, (30, height + 20), face, 3, 0, 6, cv2.LINE_AA)
        assert read(cv2.imencode(".png", image)[1].tobytes(), reader) == digits, (font, slant)


def test_a_group_too_narrow_for_any_seam_is_offered_whole():
    # A 1 alone is narrower than the narrowest digit a seam could part from it: no seams, no pieces,
    # and the group is read as the one digit it is.
    stroke = np.zeros((CUT_HEIGHT, 6), np.float32)
    stroke[4:-4, 2:4] = 1.0
    seams = Seams(stroke)
    assert seams.seams() == [] and seams.seams(FIRST_VALLEYS) == []
    assert seams.cuts() == (1, [])


@pytest.mark.parametrize("kind", ["transparent", "white JPEG", "dark", "coloured"])
def test_every_background(reader, kind):
    layout = {"gap": 0.25}
    data = {
        "transparent": lambda: picture("709", **layout),
        "white JPEG": lambda: picture("709", paper=WHITE, fmt="JPEG", **layout),
        "dark": lambda: picture("709", paper=(20, 20, 25, 255), ink_colour=(240, 240, 240, 255), **layout),
        "coloured": lambda: picture("709", paper=(250, 230, 120, 255), ink_colour=(30, 60, 200, 255), **layout),
    }[kind]()
    assert read(data, reader) == "709"


def test_blank_is_no_digit(reader):
    with pytest.raises(NoDigitError):
        segment.read_image(encode(Image.new("RGBA", (400, 200))), reader, 16)


def test_a_lone_digit_is_read_exactly_as_predict_reads_it(client):
    data = picture("5", gap=0.3)
    single = client.post("/predict", data=data, content_type="image/png").json
    whole = client.post("/predict/number", data=data, content_type="image/png").json
    assert whole["number"] == "5" and len(whole["digits"]) == 1
    digit = whole["digits"][0]
    assert (digit["digit"], digit["probabilities"], digit["preview"]) == (
        single["digit"], single["probabilities"], single["preview"])
    # A mark too small for a digit on its canvas is no digit to either, however closely it is looked at.
    dot = Image.new("RGBA", (500, 500))
    dot.paste((0, 0, 0, 255), (240, 240, 247, 247))
    for path in ("/predict", "/predict/number"):
        refused = client.post(path, data=encode(dot), content_type="image/png")
        assert refused.status_code == 422 and refused.json["error"] == "no digit found"


def test_boxes_are_in_the_images_pixels_left_to_right(client):
    data = picture("2026", gap=0.4)
    width, height = Image.open(io.BytesIO(data)).size
    boxes = [d["box"] for d in client.post("/predict/number", data=data, content_type="image/png").json["digits"]]
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    for x, y, w, h in boxes:
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height and 40 <= h <= 110


def test_digits_cut_apart_have_boxes_in_the_images_pixels(client):
    """A group of touching digits is cut at a working height of its own; the boxes still come
    back in the image's pixels, left to right, together spanning the ink."""
    data = touching("2026")
    ink_map = ink(decode(data))
    rows, cols = np.flatnonzero(ink_map.max(1) > INK_THRESHOLD), np.flatnonzero(ink_map.max(0) > INK_THRESHOLD)
    assert rows[-1] - rows[0] > 2 * CUT_HEIGHT  # so the cutting happens at a smaller scale
    answer = client.post("/predict/number", data=data, content_type="image/png").json
    boxes = [d["box"] for d in answer["digits"]]
    assert answer["number"] == "2026"
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert abs(boxes[0][0] - cols[0]) <= 3 and abs(boxes[-1][0] + boxes[-1][2] - (cols[-1] + 1)) <= 3
    for x, y, w, h in boxes:
        assert cols[0] - 3 <= x and x + w <= cols[-1] + 4 and rows[0] - 3 <= y and y + h <= rows[-1] + 4
        assert h >= 0.6 * (rows[-1] - rows[0])


# --- the endpoint


@pytest.mark.parametrize("form", ["raw", "json", "data URL", "multipart", "strokes", "strokes and image"])
def test_every_input_form(client, form):
    data = picture("2026", gap=0.3)
    b64 = base64.b64encode(data).decode()
    send = {
        "raw": dict(data=data, content_type="image/png"),
        "json": dict(json={"image": b64}),
        "data URL": dict(json={"image": "data:image/png;base64," + b64}),
        "multipart": dict(data={"image": (io.BytesIO(data), "n.png")}),
        "strokes": dict(json=strokes_json("2026", gap=0.3)),
        "strokes and image": dict(json={**strokes_json("2026", gap=0.3), "image": b64}),
    }[form]
    response = client.post("/predict/number", **send)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["number"] == "2026" and len(body["digits"]) == 4
    assert 0 < body["confidence"] <= 1 and body["model"]["name"]
    for digit in body["digits"]:
        assert len(digit["probabilities"]) == 10 and digit["preview"].startswith("data:image/png;base64,")


def test_strokes_tell_apart_digits_whose_ink_touches(client):
    """Drawn on the page, two digits that touch are still two sets of strokes."""
    layout = {"gap": -0.15, "brush": 12}
    data = picture("11", **layout)
    body = client.post("/predict/number", json={**strokes_json("11", **layout),
                                                 "image": base64.b64encode(data).decode()}).json
    assert body["number"] == "11"


@pytest.mark.parametrize("digits, gap, seed", [("2026", -0.35, 1), ("41", -0.4, 1), ("05", -0.35, 0)])
def test_digits_drawn_over_each_other_are_parted_between_their_strokes(client, digits, gap, seed):
    """Drawn on the page, digits whose ink overlaps so far that no cut through it parts them
    are parted between their strokes: a hand finishes one digit before it begins the next."""
    layout = {"gap": gap, "jitter": 0.1, "seed": seed}
    data = picture(digits, **layout)
    body = client.post("/predict/number", json={**strokes_json(digits, **layout),
                                                 "image": base64.b64encode(data).decode()}).json
    assert body["number"] == digits
    assert [d["box"][0] for d in body["digits"]] == sorted(d["box"][0] for d in body["digits"])


def test_points_with_and_without_times_may_mix(client):
    payload = strokes_json("7", gap=0.3)
    payload["strokes"][0] = [point[:2] if k % 2 else point for k, point in enumerate(payload["strokes"][0])]
    assert client.post("/predict/number", json=payload).json["number"] == "7"


def test_strokes_drawn_right_to_left_still_read_left_to_right(client):
    payload = strokes_json("427", gap=0.3)
    payload["strokes"].reverse()
    assert client.post("/predict/number", json=payload).json["number"] == "427"


@pytest.mark.parametrize("body, status, message", [
    ({"strokes": []}, 400, "'canvas' must be an object"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": []}, 400, "non-empty list"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": "abc"}, 400, "non-empty list"),
    ({"canvas": {"width": 0, "height": 100}, "strokes": [[[1, 2]]]}, 400, "canvas.width"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[1, "x"]]]}, 400, "must be a number"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[1]]]}, 400, "[x, y] or [x, y, t]"),
    # The first bad point of a long stroke is named, whatever is wrong with it.
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[5, 5, 0]] * 50 + [[5, True, 8]]]}, 400,
     "strokes[0][50][1] must be a number"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[5, 5]], [[5, 5]] * 9 + [[300, 5]]]}, 400,
     "strokes[1][9][0] must be between -100 and 200, not 300"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[5, 5, 0]] * 3 + [[5, 5, 1e16]]]}, 400,
     "strokes[0][3][2] must be between"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[5, 5, 0], [5, 5, 1], 7]]}, 400,
     "strokes[0][2] must be [x, y] or [x, y, t]"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[1, 2]]] * 2001}, 413, "too many strokes"),
    ({"canvas": {"width": 100, "height": 100}, "brush": -1, "strokes": [[[1, 2]]]}, 400, "brush"),
    ({"canvas": {"width": 100, "height": 100}, "strokes": [[[1, 2]]], "image": 5}, 400, "must be a string"),
    ({"image": ""}, 400, "empty"),
    ({"nope": 1}, 400, "missing field 'image'"),
])
def test_bad_requests_are_clear_4xx(client, body, status, message):
    response = client.post("/predict/number", json=body)
    assert response.status_code == status and message in response.json["error"], response.json


def test_blank_is_422_and_too_many_digits_is_422(client):
    blank = client.post("/predict/number", data=encode(Image.new("RGBA", (300, 100))), content_type="image/png")
    assert blank.status_code == 422 and blank.json["error"] == "no digit found"
    long = client.post("/predict/number", data=picture("1234567890" * 2, gap=0.3), content_type="image/png")
    assert long.status_code == 422 and "too many digits" in long.json["error"]


def test_wrong_content_type_and_method(client):
    assert client.post("/predict/number", data=b"x", content_type="text/plain").status_code == 415
    response = client.get("/predict/number")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_the_command_line_reads_numbers(tmp_path, capsys):
    from app.predict import main

    path = tmp_path / "n.png"
    path.write_bytes(picture("2026", gap=0.3, paper=WHITE))
    assert main(["--number", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 2026 (")
    assert main(["--number", "--json", str(path)]) == 0
    line = capsys.readouterr().out
    assert '"number": "2026"' in line and '"box": [' in line
    assert main(["--number", "--runtime", "torch", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 2026 (")


def test_reading_is_deterministic(reader):
    data = picture("90210", gap=0.1)
    assert len({read(data, reader) for _ in range(3)}) == 1
    assert np.all([d.box[2] > 0 for d in segment.read_image(data, reader, 16)])


def test_a_stroke_with_no_ink_under_it_in_the_picture_is_ignored(client):
    """The page's strokes and its picture can disagree (a stroke sent after the picture was
    taken): grouping must not mix strokes up."""
    payload = strokes_json("42", gap=0.4)
    data = picture("42", gap=0.4)
    width = payload["canvas"]["width"]
    payload["strokes"].insert(0, [[width - 3.0, 2.0, 0.0], [width - 2.0, 3.0, 8.0]])  # ink only in the strokes
    body = client.post("/predict/number", json={**payload, "image": base64.b64encode(data).decode()}).json
    assert body["number"] == "42"
