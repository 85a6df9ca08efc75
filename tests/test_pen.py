"""Digits written with a pen (model/pen.py): what the line reader learns from and the benches draw."""

import random

import cv2
import numpy as np
import pytest

from app.core.preprocess import INK_THRESHOLD, preprocess
from model.pen import GAPS, centre_lines, compose, paint
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
