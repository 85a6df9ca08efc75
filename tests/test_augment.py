"""Augmentation: shapes, value range, per-image randomness, determinism, and digits stay digits."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.core.preprocess import preprocess
from model.augment import augment, random_affine, random_contrast, random_stroke_width, restroke, skeletonize
from tests.drawing import draw, encode


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """The ten drawn digits, preprocessed to MNIST style: (10, 1, 28, 28)."""
    return torch.from_numpy(np.stack([preprocess(encode(draw(d))) for d in range(10)])).unsqueeze(1)


@pytest.mark.parametrize("fn", [augment, random_affine, random_stroke_width, random_contrast])
def test_shape_dtype_and_range_are_kept(digits, fn):
    out = fn(digits.repeat(8, 1, 1, 1), torch.Generator().manual_seed(0))
    assert out.shape == (80, 1, 28, 28) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_same_seed_same_batch(digits):
    a = augment(digits, torch.Generator().manual_seed(1))
    b = augment(digits, torch.Generator().manual_seed(1))
    c = augment(digits, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_each_image_gets_its_own_transform(digits):
    out = augment(digits[:1].repeat(16, 1, 1, 1), torch.Generator().manual_seed(0))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 16


def test_stroke_width_goes_both_ways(digits):
    ink = random_stroke_width(digits.repeat(64, 1, 1, 1), torch.Generator().manual_seed(0)).sum((1, 2, 3))
    base = digits.sum((1, 2, 3)).repeat(64)
    assert (ink < base * 0.9).any() and (ink > base * 1.1).any()


def test_augmented_digits_keep_their_labels(app, digits):
    """The shipped model still reads augmented digits as the same digit (labels stay valid)."""
    classifier = app.extensions["digitpad.classifier"]
    batch = digits.repeat(10, 1, 1, 1)
    labels = np.tile(np.arange(10), 10)
    out = augment(batch, torch.Generator().manual_seed(0)).squeeze(1).numpy()
    accuracy = (classifier.probabilities(out).argmax(1) == labels).mean()
    assert accuracy >= 0.95


def test_skeleton_is_thin_connected_and_inside_the_digit(digits):
    ink = (digits * 255).to(torch.uint8)
    skeleton = skeletonize(ink)
    assert skeleton.shape == digits.shape and skeleton.dtype == torch.bool
    assert (skeleton <= (digits > 0.35)).all(), "centre lines stay inside the strokes"
    assert skeleton.sum() < (digits > 0.35).sum() / 2
    # Lines are one pixel wide: hardly any solid 2x2 block survives thinning.
    blocks = F.avg_pool2d(skeleton.float(), 2, stride=1) == 1
    assert blocks.sum() <= 3, blocks.sum()
    # Thinning keeps each digit in one piece (the drawn digits are single connected shapes).
    from scipy import ndimage
    for d in (0, 1, 2, 3, 6, 7, 8, 9):
        assert ndimage.label(skeleton[d, 0].numpy(), structure=np.ones((3, 3)))[1] == 1, d


def test_restroke_draws_every_width_along_the_centre_lines(digits):
    skeleton = skeletonize((digits * 255).to(torch.uint8))
    drawn = restroke(skeleton.repeat(40, 1, 1, 1), torch.Generator().manual_seed(0))
    assert drawn.shape == (400, 1, 28, 28) and drawn.min() >= 0 and drawn.max() <= 1
    ink = drawn.sum((1, 2, 3)).view(40, 10)
    assert len({round(v, 3) for v in ink[:, 0].tolist()}) == 4, "four brush widths"
    assert ((drawn > 0) >= skeleton.repeat(40, 1, 1, 1)).all(), "the brush covers the centre line"
