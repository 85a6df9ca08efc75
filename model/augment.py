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


def dilate(x: torch.Tensor, square: bool = True) -> torch.Tensor:
    """Grey-scale dilation by a 3x3 square or a plus-shaped cross.

    The same as max_pool2d(x, 3, 1, 1) for the square, written as shifted maxima, which
    is several times faster on a CPU for single-channel batches.
    """
    p = F.pad(x, (1, 1, 1, 1))
    vertical = torch.maximum(torch.maximum(p[..., :-2, 1:-1], p[..., 2:, 1:-1]), x)
    if not square:
        return torch.maximum(vertical, torch.maximum(p[..., 1:-1, :-2], p[..., 1:-1, 2:]))
    pv = F.pad(vertical, (1, 1, 0, 0))
    return torch.maximum(torch.maximum(pv[..., :-2], pv[..., 2:]), vertical)


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
    dilated = dilate(x)
    eroded = -dilate(-x)
    return torch.where(t > 0, x + t * (dilated - x), x - t * (eroded - x))


def random_contrast(x: torch.Tensor, gen: torch.Generator | None = None, *, max_gain: float = 3.0) -> torch.Tensor:
    """Sharpen soft edges towards black-and-white strokes, by a random gain per image."""
    gain = torch.exp(_uniform(x.shape[0], 0.0, math.log(max_gain), x, gen)).view(-1, 1, 1, 1)
    return ((x - 0.5) * gain + 0.5).clamp(0, 1)


def _neighbours(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 neighbours of every pixel, clockwise from north: N, NE, E, SE, S, SW, W, NW."""
    p = F.pad(x, (1, 1, 1, 1))
    return [p[..., :-2, 1:-1], p[..., :-2, 2:], p[..., 1:-1, 2:], p[..., 2:, 2:],
            p[..., 2:, 1:-1], p[..., 2:, :-2], p[..., 1:-1, :-2], p[..., :-2, :-2]]


@torch.no_grad()
def skeletonize(images: torch.Tensor, threshold: float = 0.35, chunk: int = 10000) -> torch.Tensor:
    """Centre lines of uint8 digits (N, 1, H, W), by Zhang-Suen thinning, as a bool tensor.

    Computed once per training run: the strokes a canvas would draw along them are
    rendered fresh for every batch by `restroke`.
    """
    out = []
    for start in range(0, len(images), chunk):
        x = (images[start:start + chunk] > threshold * 255).to(torch.uint8)
        while True:
            changed = False
            for step in (0, 1):
                p = _neighbours(x)
                count = sum(p)
                crossings = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).to(torch.uint8) for i in range(8))
                n, e, s, w = p[0], p[2], p[4], p[6]
                if step == 0:
                    side = ((n & e & s) == 0) & ((e & s & w) == 0)
                else:
                    side = ((n & e & w) == 0) & ((n & s & w) == 0)
                remove = (x == 1) & (count >= 2) & (count <= 6) & (crossings == 1) & side
                if remove.any():
                    x = x.masked_fill(remove, 0)
                    changed = True
            if not changed:
                break
        out.append(x.bool())
    return torch.cat(out)


def restroke(skeleton: torch.Tensor, gen: torch.Generator | None = None, widths: int = 4) -> torch.Tensor:
    """Draw along centre lines with a round brush of random width, anti-aliased like a canvas.

    Works at twice the resolution, grows the line by alternating cross and square
    dilations (an octagonal brush), then averages back down: strokes of 1 to 4 px.
    """
    x = skeleton.float().repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    layers = [x]
    for i in range(widths - 1):
        x = dilate(x, square=i % 2 == 1)
        layers.append(x)
    choice = torch.randint(0, widths, (len(skeleton),), device=skeleton.device, generator=gen)
    drawn = torch.stack(layers)[choice, torch.arange(len(skeleton), device=skeleton.device)]
    return F.avg_pool2d(drawn, 2)


def augment(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Full training augmentation for a float batch (N, 1, 28, 28) with values in [0, 1]."""
    x = random_stroke_width(x, gen)
    x = random_affine(x, gen)
    return random_contrast(x, gen)


def augment_gently(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Augmentation for people's corrections: pen and position only, hardly any pose.

    A correction's shape is the lesson, and the writer's own variation is already in the set;
    turned or sheared as far as `augment` goes, a continental 1 becomes an MNIST 7.
    """
    x = random_stroke_width(x, gen)
    x = random_affine(x, gen, degrees=3.0, scale=(0.95, 1.05), aspect=0.05, shear=0.05, translate=1.5)
    return random_contrast(x, gen)
