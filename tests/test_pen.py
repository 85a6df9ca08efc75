"""Digits written with a pen (model/pen.py): what the line reader learns from and the benches draw."""

import random

import cv2
import numpy as np
import pytest

from app.core.preprocess import INK_THRESHOLD, preprocess
from app.core.strokes import Strokes, render
from model.pen import GAPS, centre_lines, compose, paint, pen_strokes, write
from tests.drawing import draw, encode


@pytest.fixture(scope="module")
def strokes() -> dict[int, tuple[np.ndarray, float]]:
    """Centre lines of drawn digits as MNIST shows them (uint8 28x28, white on black)."""
    return {d: centre_lines(np.round(preprocess(encode(draw(d))) * 255).astype(np.uint8)) for d in (0, 1, 7)}


def components(coverage: np.ndarray) -> np.ndarray:
    """Boxes (x, y, w, h) of the ink's connected pieces, left to right."""
    _, _, stats, _ = cv2.connectedComponentsWithStats((coverage > INK_THRESHOLD).view(np.uint8), connectivity=8)
    return stats[1:, :4][np.argsort(stats[1:, 0])]


def test_centre_lines_span_the_digit_in_units_of_its_height(strokes):
    for segments, aspect in strokes.values():
        assert segments.ndim == 3 and segments.shape[1:] == (2, 2)
        # The centre line runs inside the ink's box, half a stroke in from its edges.
        assert 0 <= segments[..., 1].min() < 0.2 and 0.8 < segments[..., 1].max() <= 1
        assert 0 <= segments[..., 0].min() and segments[..., 0].max() <= aspect
    assert strokes[1][1] < 0.6 < strokes[0][1]  # a 1 is narrow, a 0 is not


def test_paint_draws_a_stroke_as_wide_as_the_brush(strokes):
    segments, aspect = strokes[1]
    for brush in (4, 12):
        coverage = np.zeros((200, 200), np.float32)
        paint(coverage, segments, aspect, 50, 40, 100, brush, 0.0)
        across = (coverage[90] > 0.5).sum()  # a row through the middle of the 1's stroke
        assert brush - 2 <= across <= brush + 3
        assert coverage.max() == pytest.approx(1) and coverage.min() == 0


@pytest.mark.parametrize("gap", list(GAPS))
def test_digits_meet_their_neighbours_as_the_gap_says(strokes, gap):
    for seed in range(5):
        coverage = compose([strokes[7], strokes[0], strokes[1]], [gap, gap], random.Random(seed))
        boxes = components(coverage)
        height = boxes[:, 3].max()
        if gap == "touching":
            assert len(boxes) == 1  # slid in until the inks meet, and no further than that
        elif gap == "wide":
            assert len(boxes) == 3
            gaps = boxes[1:, 0] - (boxes[:-1, 0] + boxes[:-1, 2])
            assert (gaps > 0.15 * height).all()
        elif gap == "tight":
            assert len(boxes) in (2, 3)  # a tilted 7 may reach over to the 0
        else:
            assert len(boxes) <= 2


def test_composing_is_deterministic_for_a_seed(strokes):
    items = [strokes[1], strokes[7], strokes[0]]
    a = compose(items, ["tight", "touching"], random.Random(9))
    b = compose(items, ["tight", "touching"], random.Random(9))
    c = compose(items, ["tight", "touching"], random.Random(10))
    assert np.array_equal(a, b) and not (a.shape == c.shape and np.array_equal(a, c))
    assert a.dtype == np.float32 and a.max() <= 1 and a.min() >= 0


def test_a_centre_line_is_drawn_in_strokes_that_go_straight_on_at_a_crossing():
    across = [((x / 10, 0.5), ((x + 1) / 10, 0.5)) for x in range(10)]
    down = [((0.5, y / 10), (0.5, (y + 1) / 10)) for y in range(10)]
    strokes = pen_strokes(np.array(across + down))
    assert len(strokes) == 2
    first, second = strokes
    assert np.allclose(first[:, 1], 0.5) and first[0, 0] == 0 and first[-1, 0] == 1  # left to right, through
    assert np.allclose(second[:, 0], 0.5) and {second[0, 1], second[-1, 1]} == {0, 1}


def test_a_written_number_comes_with_the_strokes_that_drew_it(strokes):
    written = write([strokes[7], strokes[0], strokes[1]], ["touching", "wide"], random.Random(3))
    assert len(written.strokes) == 3 and all(written.strokes)  # each digit's own strokes, left to right
    centres = [np.concatenate(digit)[:, 0].mean() for digit in written.strokes]
    assert centres == sorted(centres)
    height, width = written.coverage.shape
    drawn, _, _ = render(Strokes(width, height, written.brush, written.paths), (height, width))
    drawn, painted = drawn > INK_THRESHOLD, written.coverage > INK_THRESHOLD
    assert (drawn & painted).sum() / (drawn | painted).sum() > 0.9  # the page would draw the same ink
    assert np.array_equal(written.coverage, compose([strokes[7], strokes[0], strokes[1]], ["touching", "wide"],
                                                    random.Random(3)))


def test_digits_differ_in_size_and_baseline_as_much_as_asked_and_stay_on_the_canvas(strokes):
    items = [strokes[7], strokes[0], strokes[1], strokes[0]]
    spreads = []
    for seed in range(20):
        even = write(items, ["wide"] * 3, random.Random(seed), sizes=0, baselines=0)
        heights = [h for *_, h, _ in even.placed]
        bottoms = [top + h for *_, top, h, _ in even.placed]
        assert max(heights) == min(heights) and max(bottoms) == min(bottoms)
        mixed = write(items, ["touching"] * 3, random.Random(seed), sizes=0.35, baselines=0.12)
        heights = [h for *_, h, _ in mixed.placed]
        spreads.append(max(heights) / min(heights))
        ink = mixed.coverage > 0
        assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any())  # margins all round
    assert 1.15 / 0.85 < max(spreads) <= 1.35 / 0.65  # more than the benches' own numbers differ
    with pytest.raises(ValueError, match="sizes"):
        write(items, ["wide"] * 3, random.Random(0), sizes=0.5)


def test_a_number_is_as_high_and_its_pen_as_wide_as_asked(strokes):
    items = [strokes[7], strokes[0], strokes[1]]
    for heights, brushes in (((20, 20), (0.1, 0.1)), ((200, 200), (0.03, 0.03)), ((80, 80), (0.2, 0.2))):
        written = write(items, ["wide"] * 2, random.Random(1), sizes=0, baselines=0, heights=heights,
                        brushes=brushes)
        assert [h for *_, h, _ in written.placed] == [heights[0]] * 3
        assert written.brush == max(1.5, heights[0] * brushes[0])
