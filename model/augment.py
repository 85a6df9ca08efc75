"""Batched, on-device augmentation that makes MNIST look like digits drawn on a canvas.

Canvas digits differ from MNIST in pose (tilted, sheared, squashed), in stroke width
(a brush fixed in screen pixels becomes thin or thick once the digit is scaled to
20 px) and in edge softness (hard vector strokes against MNIST's blurred scans).
Each image gets its own random draw of all three, in a handful of tensor ops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=like.device, generator=gen) * (high - low) + low


def random_affine(x: torch.Tensor, gen: torch.Generator | None = None, *, degrees: float = 15.0,
                  scale: tuple[float, float] = (0.85, 1.1), aspect: float = 0.15,
                  shear: float = 0.25, translate: float = 2.0) -> torch.Tensor:
    """Rotate, scale (slightly anisotropically), shear and shift each image of (N, 1, H, W)."""
    n = x.shape[0]
    angle = _uniform(n, -degrees, degrees, x, gen) * (math.pi / 180)
    s = _uniform(n, *scale, x, gen)
    a = torch.exp(_uniform(n, -aspect, aspect, x, gen))
    sh = _uniform(n, -shear, shear, x, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # theta maps output coordinates to input coordinates: (rotation @ shear) / scale.
    sx, sy = 1 / (s * a), a / s
    theta = torch.stack([
        torch.stack([cos * sx, (cos * sh - sin) * sx, _uniform(n, -1, 1, x, gen) * translate * 2 / x.shape[-1]], 1),
        torch.stack([sin * sy, (sin * sh + cos) * sy, _uniform(n, -1, 1, x, gen) * translate * 2 / x.shape[-2]], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_stroke_width(x: torch.Tensor, gen: torch.Generator | None = None, *,
                        thinner: float = 0.6, thicker: float = 1.0) -> torch.Tensor:
    """Blend each image towards its grey-scale erosion (thinner) or dilation (thicker)."""
    t = _uniform(x.shape[0], -thinner, thicker, x, gen).view(-1, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(t > 0, x + t * (dilated - x), x - t * (eroded - x))


def random_contrast(x: torch.Tensor, gen: torch.Generator | None = None, *, max_gain: float = 3.0) -> torch.Tensor:
    """Sharpen soft edges towards black-and-white strokes, by a random gain per image."""
    gain = torch.exp(_uniform(x.shape[0], 0.0, math.log(max_gain), x, gen)).view(-1, 1, 1, 1)
    return ((x - 0.5) * gain + 0.5).clamp(0, 1)


def augment(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Full training augmentation for a float batch (N, 1, 28, 28) with values in [0, 1]."""
    x = random_stroke_width(x, gen)
    x = random_affine(x, gen)
    return random_contrast(x, gen)
